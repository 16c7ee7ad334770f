"""The runtime's own processes and set-up steps, hidden from ``--help``: ``cdchub run``'s supervisor, the tests and
the benchmarks start them (``python -m cdchub.cli capture`` …) with the same arguments as before the CLI moved to
typer.  They stay usable by hand for debugging (``cdchub flow materials``)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer

from cdchub.cli.common import FLOW_NAMES, FlowName, share_org_limits
from connectors.settings import get_settings

log = logging.getLogger("cdchub")

Once = Annotated[bool, typer.Option("--once", help="one pass, then stop")]


def prepare(materials: int = 50, customers: int = 20, orders: int = 30) -> int:
    """Create the Kingdee tables and the capture's publication; seed demo data if the database is empty."""
    from cdchub.kingdee_db import prepare as prepare_database

    print(prepare_database(get_settings(), materials=materials, customers=customers, orders=orders))
    return 0


def capture(
    mode: Annotated[Literal["log", "query", "webapi"] | None, typer.Option(
        help="log: PostgreSQL's write-ahead log; query: any database by FMODIFYDATE (SQLAlchemy); webapi: Kingdee's "
             "WebAPI (Kingdee Cloud). Default: CDCHUB_CAPTURE__MODE, else log", show_default=False)] = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="stop when the stream has no more data")] = False,
    resnapshot: Annotated[bool, typer.Option("--resnapshot", help="forget the position and take a new snapshot")
                          ] = False,
    accept_gap: Annotated[bool, typer.Option(
        "--accept-gap", help="start even though the slot moved ahead of the capture's position (changes in between "
                             "are lost; recorded in capture-gaps.json, the metrics and status)")] = False,
    documents: Annotated[str | None, typer.Option(help="comma-separated document names (default: all declared)",
                                                  show_default=False)] = None,
) -> int:
    """Capture Kingdee documents into Kafka: from the database's log, by polling the database, or the WebAPI."""
    from cdchub.capture_modes import capture as run_capture

    stats = run_capture(get_settings(), mode=mode, documents=documents.split(",") if documents else None,
                        until_idle=until_idle, accept_gap=accept_gap, resnapshot=resnapshot)
    log.info("capture stopped: %s", stats)
    return 0


def _poll(system: str, role: str, run_poller: Callable[..., Any], once: bool) -> int:
    """Run one system's change poller in this process (sharing the org's limits) until stopped."""
    share_org_limits(get_settings(), role)
    poller = run_poller(get_settings(), once=once)
    log.info("%s poller stopped after %d events", system, poller.events)
    return 0


def poll_zoho(once: Once = False) -> int:
    """Poll ZOHO CRM for changes into zoho.<module> topics."""
    from connectors.zoho.source import run_poller

    return _poll("ZOHO", "poll-zoho", run_poller, once)


def poll_weaver(once: Once = False) -> int:
    """Follow Weaver OA approval requests into the weaver.requests topic."""
    from connectors.weaver.source import run_poller

    return _poll("Weaver", "poll-weaver", run_poller, once)


def poll_huilianyi(once: Once = False) -> int:
    """Poll Huilianyi expense reports into the huilianyi.expense_reports topic."""
    from connectors.huilianyi.source import run_poller

    return _poll("Huilianyi", "poll-huilianyi", run_poller, once)


def pollers(only: Annotated[str | None, typer.Option(
        help="comma-separated: zoho, weaver, huilianyi (default: all)", show_default=False)] = None) -> int:
    """The ZOHO, Weaver and Huilianyi pollers as threads of one process (what `run` starts, docs/runtime.md)."""
    import threading

    from connectors.huilianyi.source import ExpenseReportPoller
    from connectors.weaver.source import WeaverRequestPoller
    from connectors.zoho.source import ZohoChangePoller

    settings = get_settings()
    kinds: dict[str, Any] = {"zoho": ZohoChangePoller, "weaver": WeaverRequestPoller,
                             "huilianyi": ExpenseReportPoller}
    chosen = [k.strip() for k in only.split(",")] if only else list(kinds)
    unknown = [k for k in chosen if k not in kinds]
    if unknown:
        raise typer.BadParameter(f"no poller {', '.join(unknown)}; pollers: {', '.join(kinds)}", param_hint="--only")
    share_org_limits(settings, "pollers")
    running = [kinds[k](settings) for k in chosen]
    failed: list[str] = []

    def run(name: str, poller: Any) -> None:
        try:
            poller.run()
        except Exception:  # a bug: stop the process loudly, the supervisor restarts it
            log.exception("the %s poller failed", name)
            failed.append(name)
            for other in running:
                other.stop()

    threads = [threading.Thread(target=run, args=(k, p), name=f"poll-{k}")
               for k, p in zip(chosen, running, strict=True)]

    def stop(*_: object) -> None:
        for poller in running:
            poller.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for thread in threads:
        thread.start()
    log.info("pollers running: %s", ", ".join(chosen))
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(0.5)  # short joins keep the main thread free to take signals
    return 1 if failed else 0


def flow_alone(flow: Annotated[FlowName, typer.Argument(metavar="FLOW", show_choices=False, show_default=False,
                                                        help=f"one of {FLOW_NAMES}")]) -> int:
    """Run one flow alone with recovery, through `python -m bytewax.run` (debugging; `run` runs them all)."""
    from cdchub.runtime import exec_single

    exec_single(str(flow), get_settings())  # this process becomes the flow
    return 0


def schemas(action: Annotated[Literal["check"], typer.Argument(help="check: every schema file against its subject")]
            ) -> int:
    """Schema subjects, versions, compatibility; whether each schema file would be accepted as the next version."""
    import httpx

    from connectors.common.avro import SCHEMAS_DIR

    settings = get_settings()
    base = settings.registry.url
    refused = 0
    with httpx.Client(**settings.registry.httpx_options()) as http:
        print(f"registry {base}: global compatibility {http.get('/config').json().get('compatibilityLevel')}")
        for path in sorted(SCHEMAS_DIR.glob("*.avsc")):
            subject = f"{settings.kafka.topic(path.stem)}-value"
            versions = http.get(f"/subjects/{subject}/versions")
            if versions.status_code != 200:
                print(f"{subject:<45} not registered yet")
                continue
            check = http.post(f"/compatibility/subjects/{subject}/versions/latest",
                              json={"schema": path.read_text(encoding="utf-8"), "schemaType": "AVRO"})
            ok = check.status_code == 200 and check.json().get("is_compatible")
            refused += 0 if ok else 1
            print(f"{subject:<45} versions {versions.json()}  file {'compatible' if ok else 'REFUSED: ' + check.text}")
    return 1 if refused else 0


def register(app: typer.Typer) -> None:
    for command, name in ((prepare, "prepare"), (capture, "capture"), (pollers, "pollers"),
                          (poll_zoho, "poll-zoho"), (poll_weaver, "poll-weaver"),
                          (poll_huilianyi, "poll-huilianyi"), (flow_alone, "flow"), (schemas, "schemas")):
        app.command(name, hidden=True)(command)


