"""The command line: grouped help, hidden runtime commands that keep their arguments, flow names as choices, and one
error handler — an expected failure is one line with its cause and a hint, the traceback only with ``-v``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from cdchub.cli.app import run, split_verbose
from cdchub.cli.errors import explain
from cdchub.live_view import Figures, panel
from connectors.settings import get_settings
from core.errors import PermanentError
from flows.dataflows import FLOWS


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps the help at the terminal's width
    monkeypatch.setattr("cdchub.cli.operate.share_org_limits", lambda *_: None)  # no state dir writes
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_the_help_shows_the_operators_commands_in_groups_and_hides_the_runtimes(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    shown = capsys.readouterr().out
    assert "Operate" in shown and "Local stack" in shown
    operate, stack = shown.split("Operate", 1)[1].split("Local stack", 1)
    for command in ("run", "status", "trace", "replay", "reconcile", "dlq", "snapshot", "console", "doctor"):
        assert f"│ {command} " in operate, command
    assert "│ up " in stack and "│ down " in stack
    for hidden in ("capture", "pollers", "poll-zoho", "poll-weaver", "poll-huilianyi", "prepare", "flow", "schemas"):
        assert f"│ {hidden} " not in shown, hidden
    assert run([]) == 0, "no command: the help"


def test_hidden_commands_still_take_the_arguments_the_supervisor_and_the_tests_give(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, Any] = {}
    monkeypatch.setattr("cdchub.capture_modes.capture", lambda _s, **kw: calls.setdefault("capture", kw))
    monkeypatch.setattr("cdchub.runtime.exec_single", lambda name, _s: calls.setdefault("flow", name))
    monkeypatch.setattr("cdchub.kingdee_db.prepare", lambda _s, **kw: calls.setdefault("prepare", kw))
    assert run(["capture", "--until-idle", "--mode", "query", "--documents", "material,customer",
                "--accept-gap", "--resnapshot"]) == 0
    assert calls["capture"] == {"mode": "query", "documents": ["material", "customer"], "until_idle": True,
                                "accept_gap": True, "resnapshot": True}
    assert run(["flow", "materials"]) == 0
    assert calls["flow"] == "materials" and type(calls["flow"]) is str, "a plain name in Bytewax's import string"
    assert run(["prepare", "--materials", "7"]) == 0
    assert calls["prepare"] == {"materials": 7, "customers": 20, "orders": 30}
    for argv in (["pollers", "--help"], ["poll-zoho", "--help"], ["schemas", "--help"], ["capture", "--help"]):
        assert run(argv) == 0, argv


@pytest.mark.parametrize("argv", [["replay", "nosuchflow"], ["reconcile", "nosuchflow"], ["flow", "nosuch"]])
def test_a_wrong_flow_name_is_a_one_line_usage_error_listing_the_flows(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert len(lines(err)) == 1, err
    assert f"cdchub {argv[0]}:" in err and argv[1] in err and all(f in err for f in FLOWS)


def _refused_inside_a_dataflow(*_: Any, **__: Any) -> None:
    """What Bytewax hands back when a sink's close failed: its own error, caused by the connector's."""
    try:
        raise PermanentError("ZOHO token refresh refused: invalid_client", code="invalid_client")
    except PermanentError as exc:
        raise RuntimeError("(src/outputs.rs:484:14): error closing StatelessSinkPartition") from exc


def test_an_expected_failure_is_one_line_with_its_root_cause_and_a_hint(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("cdchub.replay.replay", _refused_inside_a_dataflow)
    assert run(["replay", "materials", "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert lines(captured.err) == [
        "cdchub replay: ZOHO refused the refresh token (invalid_client) — check CDCHUB_ZOHO__CLIENT_ID, "
        "CDCHUB_ZOHO__CLIENT_SECRET and CDCHUB_ZOHO__REFRESH_TOKEN (or .cache/secrets/zoho_*), or run "
        "`cdchub doctor`"]


def test_verbose_anywhere_on_the_line_adds_the_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("cdchub.replay.replay", _refused_inside_a_dataflow)
    assert run(["replay", "materials", "--dry-run", "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "PermanentError" in err
    assert lines(err)[-1].startswith("cdchub replay: ZOHO refused the refresh token (invalid_client)")
    assert split_verbose(["-v", "trace", "x", "--", "-v"]) == (["trace", "x", "--", "-v"], True)
    assert split_verbose(["trace", "x"]) == (["trace", "x"], False)


def test_a_bad_setting_names_its_environment_variable_without_its_value(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CDCHUB_ZOHO__DAILY_CREDITS", "many-secret-credits")
    assert run(["trace", "1.01.0001"]) == 2
    (line,) = lines(capsys.readouterr().err)
    assert line.startswith("cdchub trace: bad setting CDCHUB_ZOHO__DAILY_CREDITS: ")
    assert "many-secret-credits" not in line


def test_an_interrupt_and_a_bug(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("cdchub.replay.replay", interrupted)
    assert run(["replay", "materials"]) == 130
    assert lines(capsys.readouterr().err) == ["cdchub replay: interrupted"]

    def bug(*_: Any, **__: Any) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("cdchub.replay.replay", bug)
    assert run(["replay", "materials"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err, "a bug is reported with its traceback"
    assert lines(err)[-1].startswith("cdchub replay: unexpected error: ZeroDivisionError: division by zero")


def test_failures_of_the_installation_are_recognised_by_their_cause() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from cdchub.replay import ReplayRefused

    kafka = explain(KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata")))
    assert kafka is not None and kafka.message.startswith("Kafka at ") and "cdchub up" in kafka.hint
    refused = explain(ReplayRefused("flow 'x' cannot be replayed"))
    assert refused is not None and refused.exit_code == 2
    assert explain(ValueError("a bug")) is None


def test_the_live_view_shows_figures_and_every_process() -> None:
    console = Console(record=True, width=120)
    console.print(panel(Figures(captured=3, snapshot=338, written=289, dead_letters=1, latencies_ms=[10, 20]),
                        [("capture", 101, "running", 0), ("to_crm", 102, "exited 1, restart in 4s", 2)]))
    text = console.export_text()
    assert "289" in text and "338" in text and "exited 1, restart in 4s" in text and "to_crm" in text


def test_status_of_an_installation_on_a_remote_cluster_checks_it_instead_of_the_local_stack(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CDCHUB_KAFKA__BOOTSTRAP_SERVERS", "kafka-1.cdchub.invalid:9093")
    monkeypatch.setenv("CDCHUB_REGISTRY__URL", "http://registry.cdchub.invalid:8081/apis/ccompat/v7")
    monkeypatch.setattr("infra.stack.manager.status", lambda *_: pytest.fail("the local stack was looked at"))
    assert run(["status"]) == 1
    out = lines(capsys.readouterr().out)
    assert out[0].startswith("✗ kafka") and "kafka-1.cdchub.invalid:9093" in out[0]
    assert out[1].startswith(("✗ registry", "– registry")) and "cannot be reached" in out[-1]


@pytest.mark.parametrize(("addresses", "local"), [
    ("127.0.0.1:19092", True), ("localhost:9092,127.0.0.1:9093", True), ("[::1]:9092", True), ("127.0.0.1", True),
    ("kafka-1:9092", False), ("127.0.0.1:19092,kafka-2:9092", False), ("db.example.cn", False)])
def test_the_local_stack_is_what_is_on_the_loopback_interface(addresses: str, local: bool) -> None:
    from cdchub.cli.common import on_this_host

    assert on_this_host(addresses) is local


def test_run_on_a_remote_cluster_starts_no_local_stack_and_prepares_nothing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CDCHUB_KAFKA__BOOTSTRAP_SERVERS", "kafka-1.cdchub.invalid:9093")
    started: list[list[str]] = []

    def start(argv: list[str], **_: object) -> None:
        started.append(argv)
        pytest.fail(f"ran {argv}")

    monkeypatch.setattr("subprocess.run", start)

    def acquire(self: object) -> None:
        from cdchub.supervisor import AlreadyRunning

        raise AlreadyRunning("stopped here, before any process is spawned")

    monkeypatch.setattr("cdchub.supervisor.Supervisor.acquire", acquire)
    assert run(["run"]) == 2
    assert started == []
    assert "no local stack, no demo database" in capsys.readouterr().out


def test_every_error_class_the_handler_names_exists() -> None:
    """The handler matches classes by name: a renamed or moved error class would silently become a "bug" report."""
    import builtins
    import importlib
    import pkgutil

    from cdchub.cli.errors import RULES

    defined = {name for name in dir(builtins) if isinstance(getattr(builtins, name), type)}
    for package in ("core", "connectors", "flows", "cdchub"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            defined |= {name for name, value in vars(module).items() if isinstance(value, type)}
    for library in ("pydantic", "sqlalchemy.exc", "httpx", "confluent_kafka", "confluent_kafka.schema_registry"):
        defined |= {name for name, value in vars(importlib.import_module(library)).items() if isinstance(value, type)}
    assert [name for name, _ in RULES if name not in defined] == []
