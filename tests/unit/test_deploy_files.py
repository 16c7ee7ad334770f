"""The deployment files and guide name only what exists: every ``CDCHUB_…`` variable is a setting (a field path of
``Settings``), every ``cdchub <command> [--option]`` is one of the CLI's (asked of ``cdchub <command> --help``),
every dataflow is one of ``flows/dataflows.py``, the grants name exactly the captured tables, and the image, units
and chart values keep their promises (no secret baked in, a non-root user, restarts, a sandbox).

No image is built here (no Docker engine) and no chart rendered (no Kubernetes): these checks keep the files true
to the code that they deploy.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from cdchub.runtime import EPOCH_S, RECOVERY_PARTITIONS
from connectors.common.delivery import SHARDS_FILE, shards_for, store_shards
from connectors.kingdee.documents import DocumentCatalog
from connectors.settings import Settings
from core.settings import PROJECT_ROOT
from flows.dataflows import DATAFLOWS

DEPLOY = PROJECT_ROOT / "infra" / "deploy"
GUIDE = PROJECT_ROOT / "docs" / "deploy.md"
CLI = Path(sys.executable).with_name("cdchub")
#: The CLI's commands (issue 17); each mentioned one must also answer ``cdchub <command> --help``.
COMMANDS = ["up", "down", "status", "trace", "replay", "reconcile", "dlq", "snapshot", "console", "doctor", "run",
            "capture", "flow", "pollers", "metrics", "prepare", "schemas"]
#: An environment variable of a setting, wherever it is written.
SETTING = re.compile(r"(?<![A-Za-z0-9_])CDCHUB_[A-Z0-9_]*[A-Z0-9]")


def deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def documents() -> Iterator[tuple[Path, str]]:
    yield GUIDE, GUIDE.read_text(encoding="utf-8")
    for path in deploy_files():
        yield path, path.read_text(encoding="utf-8")


def resolve(name: str) -> Any:
    """The ``Settings`` field an environment variable sets, walking ``__``-nested models; raises KeyError."""
    model: type[BaseModel] = Settings
    parts = name.removeprefix("CDCHUB_").split("__")
    field: Any = None
    for i, part in enumerate(parts):
        fields = model.model_fields
        if part.lower() not in fields:
            raise KeyError(f"{name}: {model.__name__} has no field {part.lower()!r}")
        field = fields[part.lower()]
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif i != len(parts) - 1:
            raise KeyError(f"{name}: {part.lower()!r} is not a section")
    return field


def test_every_setting_named_is_a_field_of_settings() -> None:
    unknown: list[str] = []
    named = 0
    for path, text in documents():
        for name in set(SETTING.findall(text)):
            named += 1
            try:
                resolve(name)
            except KeyError as exc:
                unknown.append(f"{path.relative_to(PROJECT_ROOT)}: {exc}")
    assert named > 80
    assert not unknown, "\n".join(sorted(unknown))


def test_the_guide_lists_every_secret() -> None:
    """Every ``SecretStr`` setting is in the guide's secrets table (a new secret must be documented)."""
    guide = GUIDE.read_text(encoding="utf-8")
    table = guide[guide.index("These are secret:"):guide.index("Where they live:")]
    missing = sorted(s for s in _secret_settings() if s not in table)
    assert not missing, f"secrets missing from docs/deploy.md's table: {missing}"


# --- commands ---------------------------------------------------------------------------------------------------

#: `cdchub <command> [options]` where a command is written: code spans and blocks, unit command lines, the image.
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
_INVOCATION = re.compile(r"(?<![\w./-])(?<!-[nug] )cdchub (?=([a-z][a-z-]*)((?:[ \t]+[^\s`;|&)'\"]+)*))")


def invocations() -> dict[str, set[str]]:
    """Every command mentioned in the guide and the files, with the options given to it."""
    found: dict[str, set[str]] = {}
    for path, text in documents():
        chunks = [m.group(0) for m in _CODE.finditer(text)]
        if path != GUIDE:
            chunks += [line for line in text.splitlines() if re.match(r"\s*(ExecStart|ENTRYPOINT|CMD)", line)]
            chunks += [f"cdchub {m}" for m in re.findall(r"args: \[([a-z][a-z-]*)", text)]
        for chunk in chunks:
            for command, rest in _INVOCATION.findall(chunk):
                if command == "cdchub":
                    continue
                found.setdefault(command, set()).update(re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest))
    return found


@cache
def help_of(command: str | None) -> tuple[int, str]:
    argv = [str(CLI), *([command] if command else []), "--help"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    return done.returncode, done.stdout + done.stderr


def test_every_command_and_option_exists() -> None:
    mentioned = invocations()
    assert {"capture", "pollers", "doctor", "console", "metrics"} <= set(mentioned)
    code, top = help_of(None)
    assert code == 0, top
    wrong = []
    for command, options in sorted(mentioned.items()):
        assert command in COMMANDS, f"`cdchub {command}` is not one of the CLI's commands"
        code, text = help_of(command)
        if code != 0:
            wrong.append(f"cdchub {command}: --help exits {code}")
            continue
        wrong += [f"cdchub {command} {o}" for o in sorted(options) if o not in text and o not in top]
    assert not wrong, "\n".join(wrong)


def test_dataflows_named_exist() -> None:
    named = set()
    for _, text in documents():
        named |= set(re.findall(r"dataflow\('(\w+)'\)", text)) | set(re.findall(r"cdchub-dataflow@(\w+)", text))
        named |= set(re.findall(r"helm/(to_\w+)\.yaml", text))
    named.discard("")
    assert named == set(DATAFLOWS), named ^ set(DATAFLOWS)
    for name in DATAFLOWS:
        override = (DEPLOY / "helm" / f"{name}.yaml").read_text(encoding="utf-8")
        assert f"pythonFileName: \"flows.dataflows:dataflow('{name}')\"" in override


def test_the_grants_name_exactly_the_captured_tables() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    tables = list(DocumentCatalog().by_table)
    for statement in ("GRANT SELECT ON", "CREATE PUBLICATION cdchub_kingdee FOR TABLE"):
        start = guide.index(statement)
        listed = re.findall(r'"(T_[A-Z0-9_]+)"', guide[start:guide.index(";", start)])
        assert listed == tables, statement
    assert f"captured tables — every table of `connectors/kingdee/documents.py` ({len(tables)};" in guide
    forms = [spec.form_id for spec in DocumentCatalog().specs]
    section = guide[guide.index("### 3c."):guide.index("## 4.")]
    assert re.findall(r"`([A-Za-z_]+)`", section.split("forms", 1)[1])[:len(forms)] == forms


# --- the image ----------------------------------------------------------------------------------------------------

def _secret_settings() -> set[str]:
    names = {"CDCHUB_LEDGER_URL"}
    for section, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= {f"CDCHUB_{section.upper()}__{n.upper()}" for n, f in annotation.model_fields.items()
                      if "SecretStr" in str(f.annotation)}
    return names


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(re.search(r"pip install (-e )?\.", line) for line in lines)
    user = next(line.split()[1] for line in lines if line.startswith("USER "))
    assert user.split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["cdchub"]' in lines
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (PROJECT_ROOT / source).exists(), f"COPY {source}: not in the repository"
    baked = [name for line in lines if line.startswith(("ENV", "ARG")) for name in SETTING.findall(line)]
    assert baked and not set(baked) & _secret_settings(), f"secrets in the image: {set(baked) & _secret_settings()}"
    for script in ("entrypoint.sh", "entrypoint-recovery.sh"):
        assert f"infra/deploy/helm/{script}" in text and os.access(DEPLOY / "helm" / script, os.X_OK)
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert {".cache", ".git", ".venv"} <= set(ignored)


# --- systemd ------------------------------------------------------------------------------------------------------

def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file as sections of (key, value), keys repeated as written."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        sections[current].append((key, value))
    return sections


def values(sections: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in sections.get(section, []) if k == key]


SANDBOX = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
           "CapabilityBoundingSet": "", "SystemCallFilter": "@system-service", "UMask": "0077"}


@pytest.mark.parametrize("path", sorted((DEPLOY / "systemd").glob("*.service")), ids=lambda p: p.name)
def test_service_units(path: Path) -> None:
    u = unit(path)
    assert values(u, "Service", "User") == ["cdchub"]
    assert values(u, "Service", "EnvironmentFile") == ["/etc/cdchub/cdchub.env"]
    assert values(u, "Service", "StateDirectory") == ["cdchub"]
    for key, value in SANDBOX.items():
        assert values(u, "Service", key) == [value], key
    oneshot = values(u, "Service", "Type") == ["oneshot"]
    if not oneshot:
        assert values(u, "Service", "Restart") == ["on-failure"]
        assert values(u, "Unit", "StartLimitIntervalSec") == ["0"]
    for credential in values(u, "Service", "LoadCredential"):
        name, _, source = credential.partition(":")
        assert source == f"/etc/cdchub/credentials/{name}"
        resolve(name)  # a setting (ids of apps and clients are kept with the secrets too)
    (start,) = values(u, "Service", "ExecStart")
    wrapper, program = start.split()[:2]
    assert wrapper == "/opt/cdchub/infra/deploy/systemd/with-credentials"
    assert os.access(DEPLOY / "systemd" / "with-credentials", os.X_OK)
    assert program.startswith("/opt/cdchub/.venv/bin/")
    assert "CDCHUB_STATE_DIR=%S/cdchub" in " ".join(values(u, "Service", "Environment"))


def test_the_target_wants_every_runtime_process() -> None:
    t = unit(DEPLOY / "systemd" / "cdchub.target")
    wanted = " ".join(values(t, "Unit", "Wants")).split()
    expected = ["cdchub-capture.service", "cdchub-pollers.service",
                *(f"cdchub-dataflow@{d}.service" for d in DATAFLOWS)]
    assert wanted == expected
    for name in wanted:
        file = re.sub(r"@\w+\.", "@.", name)
        assert values(unit(DEPLOY / "systemd" / file), "Install", "WantedBy") == ["cdchub.target"]


def test_the_dataflow_unit_starts_bytewax_as_the_runtime_does() -> None:
    u = unit(DEPLOY / "systemd" / "cdchub-dataflow@.service")
    env = " ".join(values(u, "Service", "Environment"))
    assert f"BYTEWAX_SNAPSHOT_INTERVAL={EPOCH_S}" in env and "BYTEWAX_RECOVERY_BACKUP_INTERVAL=0" in env
    assert "BYTEWAX_RECOVERY_DIRECTORY=%S/cdchub/recovery/%i" in env  # cdchub.runtime.recovery_dir's layout
    (pre,) = values(u, "Service", "ExecStartPre")
    assert f'-m bytewax.recovery "$${{BYTEWAX_RECOVERY_DIRECTORY}}" {RECOVERY_PARTITIONS}' in pre


@pytest.mark.parametrize(("workers", "shards"), [("1", 1), ("2", 4), ("3", 6)])
def test_the_dataflow_unit_makes_a_store_with_the_shards_cdchub_run_would(tmp_path: Path, workers: str,
                                                                           shards: int) -> None:
    """The unit's ExecStartPre, run as systemd runs it: a new store, its delivery shards, and nothing redone on
    the next start."""
    (pre,) = values(unit(DEPLOY / "systemd" / "cdchub-dataflow@.service"), "Service", "ExecStartPre")
    command = pre.replace("$$", "$").replace("/opt/cdchub/.venv/bin/python", sys.executable)
    assert shards == shards_for(int(workers)), "the unit's rule is cdchub run's"
    store = tmp_path / "recovery" / "to_crm"
    env = {**os.environ, "BYTEWAX_RECOVERY_DIRECTORY": str(store), "BYTEWAX_WORKERS_PER_PROCESS": workers}
    argv = shlex.split(command)
    subprocess.run(argv, env=env, check=True, timeout=60)
    assert (store / "part-0.sqlite3").exists() and store_shards(store) == shards
    (store / SHARDS_FILE).write_text("7\n")
    subprocess.run(argv, env=env, check=True, timeout=60)
    assert store_shards(store) == 7, "a store that exists is left as it is"


def test_the_credentials_wrapper_exports_credentials(tmp_path: Path) -> None:
    (tmp_path / "CDCHUB_KINGDEE_DB__PASSWORD").write_text("pa ss\n")
    (tmp_path / "CDCHUB_LEDGER_URL").write_text("")
    (tmp_path / "OTHER").write_text("x")
    done = subprocess.run([str(DEPLOY / "systemd" / "with-credentials"), "sh", "-c",
                           'printf "%s|%s|%s" "$CDCHUB_KINGDEE_DB__PASSWORD" "${CDCHUB_LEDGER_URL-unset}" '
                           '"${OTHER-unset}"'],
                          capture_output=True, text=True, env={"CREDENTIALS_DIRECTORY": str(tmp_path), "PATH":
                                                               os.environ["PATH"]}, check=True)
    assert done.stdout == "pa ss||unset"


# --- Bytewax's Helm chart and the Kubernetes objects ------------------------------------------------------------

#: The top-level and ``configuration`` keys of Bytewax's chart 0.8.x (``charts/bytewax/values.yaml``).
CHART_KEYS = {"image", "imagePullSecrets", "serviceAccount", "extraLabels", "podLabels", "podAnnotations",
              "podSecurityContext", "containerName", "securityContext", "service", "api", "resources",
              "nodeSelector", "tolerations", "affinity", "env", "envValueFrom", "envFromSecret", "envRenderSecret",
              "envFromSecrets", "extraSecretMounts", "extraVolumeMounts", "configuration", "customOtlpUrl",
              "opentelemetry-collector", "jaeger", "kubePrometheusStack", "podMonitor"}
CHART_CONFIGURATION_KEYS = {"pythonFileName", "processesCount", "workersPerProcess", "keepAlive", "jobMode",
                            "configMap", "recovery"}


def _block(text: str, key: str) -> str:
    """The lines of a top-level YAML block."""
    match = re.search(rf"^{re.escape(key)}:\n((?:[ #].*\n|\n)*)", text, re.M)
    assert match, key
    return match.group(1)


def test_helm_values_use_the_charts_keys() -> None:
    text = (DEPLOY / "helm" / "values.yaml").read_text(encoding="utf-8")
    top = set(re.findall(r"^([A-Za-z][\w-]*):", text, re.M))
    assert top <= CHART_KEYS, top - CHART_KEYS
    configuration = _block(text, "configuration")
    assert set(re.findall(r"^  (\w+):", configuration, re.M)) <= CHART_CONFIGURATION_KEYS
    assert re.search(rf"^    partsCount: {RECOVERY_PARTITIONS}$", configuration, re.M)
    assert re.search(rf"^    snapshotInterval: {EPOCH_S}$", configuration, re.M)
    assert re.search(r"^    enabled: true$", configuration, re.M)  # recovery
    for name, value in re.findall(r"^  ([A-Z]\w+): (.*)$", _block(text, "env"), re.M):
        assert '"' not in value, f"{name}: the chart writes env values into double quotes"
    secrets = re.findall(r"- name: ([\w-]+)", _block(text, "envFromSecrets"))
    assert secrets == ["cdchub-config", "cdchub-secrets"]


def test_kubernetes_objects() -> None:
    text = (DEPLOY / "kubernetes" / "cdchub.yaml").read_text(encoding="utf-8")
    config = re.findall(r"^  (CDCHUB_\w+):", text, re.M)
    assert config and not set(config) & _secret_settings()
    assert re.findall(r"args: \[([a-z]+)", text) == ["capture", "pollers", "console"]
    assert text.count("strategy: {type: Recreate}") == 2  # never two captures, never two pollers
    assert "runAsUser: 10001" in text and "readOnlyRootFilesystem: true" in text
