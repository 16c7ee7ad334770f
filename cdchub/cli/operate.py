"""Operating an installation: ``run`` it, see its ``status``, ``trace`` a document, ``replay`` and ``reconcile`` a
flow, handle dead letters (``dlq``), re-``snapshot`` documents, the web ``console``, ``doctor``, ``metrics``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Annotated, Literal

import typer

from cdchub.cli.common import (
    FLOW_NAMES,
    INVOCATION,
    OPERATE,
    FlowName,
    fresh_settings,
    log,
    on_this_host,
    share_org_limits,
)
from connectors.settings import get_settings
from core.settings import PROJECT_ROOT

Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Quiet = Annotated[bool, typer.Option("--quiet", help="no progress bar")]


def run(
    dataflows: Annotated[str, typer.Option(help="comma-separated dataflows to run (docs/runtime.md)")
                         ] = "to_crm,to_kingdee,to_oa",
    materials: Annotated[int, typer.Option(help="demo materials to seed into an empty Kingdee database")] = 50,
) -> int:
    """Set up everything and run it with a live view; Ctrl-C stops.

    Starts what is missing of the local stack (`up`), prepares and seeds the Kingdee database (`prepare`) — both
    only when the installation's Kafka (and its Kingdee database) is on this host — then supervises the capture,
    the pollers and the dataflows (docs/runtime.md), restarting what exits.  The set-up runs in child processes, so
    this supervisor stays small: it only starts, watches and stops processes and reads their health reports for
    the live view."""
    from cdchub.live_view import watch
    from cdchub.runtime import dataflow_commands
    from cdchub.supervisor import AlreadyRunning, Supervisor, silence_stdout, stop_on_hangup
    from flows.dataflows import DATAFLOWS, FLOWS

    chosen = [d.strip() for d in dataflows.split(",") if d.strip()]
    unknown = [d for d in chosen if d not in DATAFLOWS]
    if unknown:
        raise typer.BadParameter(f"no dataflow {', '.join(unknown)}; dataflows: {', '.join(DATAFLOWS)}",
                                 param_hint="--dataflows")
    stop_on_hangup()
    stopping = False
    supervisor: Supervisor | None = None
    cli = [sys.executable, "-m", "cdchub.cli"]
    try:
        settings = get_settings()
        steps = [["up"], ["prepare", "--materials", str(materials)]]
        if not on_this_host(settings.kafka.bootstrap_servers):
            # a real installation: its Kafka, registry and Kingdee database are not ours to start, create or seed
            print("the installation's Kafka is not on this host: running capture, pollers and dataflows only (no local "
                  "stack, no demo database; `cdchub doctor` checks the installation)", flush=True)
            steps = []
        elif not on_this_host(settings.kingdee_db.host):
            print("the Kingdee database is not on this host: it is not prepared or seeded", flush=True)
            steps = [["up"]]
        if steps:
            print("starting the local stack (first start downloads Kafka and the registry; later starts are quick)…",
                  flush=True)
        for step in steps:
            done = subprocess.run([*cli, *step], cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                print(f"cdchub run: `cdchub {' '.join(step)}` failed (exit {done.returncode}); see above",
                      file=sys.stderr)
                return done.returncode
        settings = fresh_settings()  # read after `up` generated the local secrets
        supervisor = Supervisor(settings.state_dir, settings.run_log_dir, PROJECT_ROOT)
        try:
            supervisor.acquire()
        except AlreadyRunning as exc:
            print(f"cdchub run: {exc}", file=sys.stderr)
            return 2
        supervisor.spawn("capture", [*cli, "capture"])
        supervisor.spawn("pollers", [*cli, "pollers"])
        for name in chosen:
            commands = dataflow_commands(name, settings)
            for i, command in enumerate(commands):
                supervisor.spawn(name if len(commands) == 1 else f"{name}-{i}", command)
        print(f"started {', '.join(supervisor.children)} (logs in {settings.run_log_dir}); Ctrl-C stops them, "
              "`make stack-down` stops the stack.")
        print("Try: edit a material in the Kingdee database or a product in the CRM simulator (see README).",
              flush=True)

        def alive() -> bool:
            for name, code, delay in supervisor.restart_exited() if supervisor else []:
                print(f"{name} exited with code {code}; restarted in {delay:.0f}s "
                      f"(see {settings.run_log_dir / name}.log)", flush=True)
            return True

        watch(settings.state_dir, [f for f in FLOWS if any(f in DATAFLOWS[d] for d in chosen)], alive,
              processes=supervisor.rows)
    except KeyboardInterrupt:
        stopping = True
    except BrokenPipeError:  # whoever read our output is gone (`cdchub run | tee` interrupted): stop quietly
        stopping = True
        silence_stdout()
    finally:
        if supervisor is not None and supervisor.children:
            try:
                print("\nstopping capture, pollers and dataflows…", flush=True)
            except BrokenPipeError:
                silence_stdout()
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not leave
                signal.signal(signum, signal.SIG_IGN)                        # children behind
            supervisor.stop()
        elif supervisor is not None:
            supervisor.release()
    return 0 if stopping or supervisor is not None else 1


def _stack_report() -> tuple[list[str], bool]:
    from cdchub.flow_status import status_report
    from infra.stack.manager import status as stack_status

    settings = get_settings()
    if not on_this_host(settings.kafka.bootstrap_servers):
        # a real installation: no local stack to look at; Kafka and the registry as the doctor checks them
        from cdchub.doctor import reachability

        findings = reachability(settings)
        reachable = all(f.status != "fail" for f in findings)
        lines = [f.line() for f in findings]
        if not reachable:
            return [*lines, "flows: not available while Kafka or the registry cannot be reached (`cdchub doctor`)"
                    ], False
        return [*lines, *status_report(settings)], True
    rows = stack_status(settings)
    report = [f"{row.name:<14} {'up' if row.running else 'DOWN':<5} {row.detail}" for row in rows]
    if not all(r.running for r in rows if r.name in ("kafka", "registry")):
        # asking a broker that is down floods the terminal with client connection errors
        report.append("flows: not available while Kafka or the registry is down (start them: `cdchub up`)")
    else:
        report += status_report(settings)
    return report, all(r.running for r in rows)


def status(
    watch: Annotated[bool, typer.Option("--watch", help="live-update until Ctrl-C")] = False,
    interval: Annotated[float, typer.Option(help="seconds between updates with --watch")] = 2.0,
) -> int:
    """The stack, every process and flow, lag, dead letters, ZOHO credits.

    Per flow: read, written, retrying since, last error, lag and dead letters; the ZOHO API budget and the access
    tokens' refusals.  Exit 1 when a component of the stack is down."""
    if not watch:
        report, healthy = _stack_report()
        print("\n".join(report))
        return 0 if healthy else 1
    if not sys.stdout.isatty():
        try:
            while True:
                print(time.strftime("%H:%M:%S\n") + "\n".join(_stack_report()[0]) + "\n", flush=True)
                time.sleep(interval)  # refresh period of a live view, not a wait for a condition
        except KeyboardInterrupt:
            return 0
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

    def view() -> Group:
        return Group(Text(f"cdchub status · {time.strftime('%H:%M:%S')} · every {interval:g}s · Ctrl-C stops",
                          style="dim"),
                     Text("\n".join(_stack_report()[0]), no_wrap=True, overflow="ellipsis"))

    try:
        # the terminal's alternate screen, like watch(1): the report is redrawn whole and gone after Ctrl-C
        with Live(view(), console=Console(), auto_refresh=False, screen=True) as live:
            while True:
                time.sleep(interval)  # refresh period of a live view, not a wait for a condition
                live.update(view(), refresh=True)
    except KeyboardInterrupt:
        return 0


def trace(term: Annotated[str, typer.Argument(
        help="a business number (material code, bill number), a source id or a target id", show_default=False)],
          as_json: Json = False) -> int:
    """A document's journey through the hub.

    Captured versions, every write with its latency, related documents and dead letters.  Exit 1 when nothing is
    found."""
    from cdchub.trace import trace as find
    from core.ledger import open_engine

    settings = get_settings()
    found = find(settings, open_engine(settings.ledger_database_url()), term)
    print(found.to_json() if as_json else found.timeline())
    return 0 if found.documents or found.hops else 1


def replay(
    flow: Annotated[FlowName, typer.Argument(
        metavar="FLOW", show_choices=False, show_default=False,
        help=f"one of {FLOW_NAMES}; those whose sinks can read their target back are replayable")],
    start: Annotated[str, typer.Option("--from", help="beginning, an offset (on every partition) or a time, e.g. "
                                                      "2026-11-30T10:00:00+08:00")] = "beginning",
    end: Annotated[str | None, typer.Option("--to", help="an offset (inclusive) or a time; default: the end now",
                                            show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="compare and print what would change; write nothing")
                       ] = False,
    as_json: Json = False,
    quiet: Quiet = False,
) -> int:
    """Re-run a flow over retained topics; write only what differs.

    `--dry-run` prints the differences and writes nothing.  The running flow is not disturbed (docs/operating.md)."""
    from cdchub.replay import Bound, report
    from cdchub.replay import replay as rerun
    from connectors.common.replay_mode import ReplaySession

    settings = get_settings()
    share_org_limits(settings, "replay")
    session = rerun(settings, str(flow), ReplaySession(dry_run=dry_run), Bound.parse(start), Bound.parse(end),
                    progress=None if quiet else sys.stderr)
    print(report(session, str(flow), as_json=as_json))
    return 0


def reconcile(
    flow: Annotated[FlowName, typer.Argument(
        metavar="FLOW", show_choices=False, show_default=False,
        help=f"one of {FLOW_NAMES}; those whose sinks can read their target back can be reconciled")],
    sample: Annotated[int, typer.Option(help="compare this percentage of the records", min=1, max=100)] = 100,
    fix: Annotated[bool, typer.Option("--fix", help="write the differing fields")] = False,
    as_json: Json = False,
    quiet: Quiet = False,
) -> int:
    """Compare a flow's source with its target: counts and drift.

    Exit 1 on drift or on records only in the target (orphans), so it can run from cron; `--fix` re-syncs the
    drifted records."""
    from cdchub.replay import reconcile as compare
    from cdchub.replay import report

    settings = get_settings()
    share_org_limits(settings, "reconcile")
    session, counts = compare(settings, str(flow), sample_percent=sample, fix=fix,
                              progress=None if quiet else sys.stderr)
    if as_json:
        body = json.loads(report(session, str(flow), as_json=True))
        print(json.dumps({**body, "counts": [c.to_json() for c in counts]}, ensure_ascii=False, indent=2))
    else:
        print(report(session, str(flow)))
        for c in counts:
            print(f"  {c.system} {c.module}: {c.source} source records, {c.target} in the target"
                  + (f", {len(c.orphans)} only in the target ({c.key_field}: {', '.join(c.orphans[:10])})"
                     if c.orphans else ""))
    return 1 if (session.drifts and not fix) or any(c.orphans for c in counts) else 0


def dlq(
    action: Annotated[Literal["list", "show", "replay"], typer.Argument(help="list, show, or replay after a fix")],
    flow: Annotated[str | None, typer.Option(help="only this flow's dead letters (or capture's)",
                                             show_default=False)] = None,
    reason: Annotated[str | None, typer.Option(help="only letters whose error contains this text",
                                               show_default=False)] = None,
    offset: Annotated[int | None, typer.Option(help="show: only the letter at this offset", show_default=False)
                      ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="replay: say what would be replayed")] = False,
    again: Annotated[bool, typer.Option("--again", help="replay: also letters replayed before")] = False,
) -> int:
    """Dead letters: list, show, replay them after a fix."""
    from cdchub import dead_letter_admin as letters_of
    from core.ledger import open_engine

    settings = get_settings()
    share_org_limits(settings, "dlq")
    engine = open_engine(settings.ledger_database_url())
    chosen = letters_of.letters(settings, flow, reason)
    if action == "list":
        done = letters_of.replayed(engine)
        for letter in chosen:
            mark = done.get((letter.dlq_topic, letter.dlq_offset), "")
            print(letter.summary() + (f"  [{mark}]" if mark else ""))
        print(f"{len(chosen)} dead letters")
    elif action == "show":
        wanted = [x for x in chosen if offset is None or x.dlq_offset == offset]
        print(json.dumps([x.body for x in wanted], ensure_ascii=False, indent=2))
    else:
        results = letters_of.replay(settings, engine, chosen, dry_run=dry_run, again=again)
        for letter, outcome in results:
            print(f"{letter.flow:<22} offset {letter.dlq_offset:>6} key={letter.source.get('key')}: {outcome}")
        print(f"{sum(1 for _, o in results if o == 'replayed')} replayed of {len(results)}")
    return 0


def snapshot(
    names: Annotated[list[str], typer.Argument(
        help="documents (material, sales_order …) or their tables (T_BD_MATERIAL …)", show_default=False)],
    wait: Annotated[float, typer.Option(help="seconds to follow the progress (0: just request)")] = 600.0,
) -> int:
    """Re-snapshot Kingdee documents while streaming goes on.

    Names are documents or any of their tables; the request travels through the WAL, so a capture that is not
    running carries it out when it starts.  Exit 3 if no capture picks it up within 30 s."""
    from cdchub.snapshot_command import run_snapshot

    return run_snapshot(get_settings(), names, wait_s=wait)


def console(
    host: Annotated[str | None, typer.Option(help="address to listen on (default: CDCHUB_CONSOLE__HOST, "
                                                  "127.0.0.1)", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(help="port (default: CDCHUB_CONSOLE__PORT, 18100)",
                                             show_default=False)] = None,
) -> int:
    """The web console: traces, dead-letter replay, flow health."""
    from cdchub.console.app import serve

    settings = get_settings()
    share_org_limits(settings, "console")
    serve(settings, host or settings.console.host, port or settings.console.port)
    return 0


def doctor() -> int:
    """Check settings, credentials and every connection.

    Settings, Kafka, the registry, the databases and the target systems' credentials, each with what to do about
    what fails."""
    try:
        from cdchub.doctor import main as check
    except ImportError as exc:
        print(f"cdchub doctor: not available in this installation ({exc})", file=sys.stderr)
        return 2
    return check(verbose=INVOCATION.verbose)


def metrics(
    port: Annotated[int, typer.Option(help="port of the Prometheus endpoint")] = 9464,
    once: Annotated[bool, typer.Option("--once", help="print the exposition once and stop")] = False,
) -> int:
    """Serve Prometheus metrics (Grafana dashboard in infra/grafana)."""
    from cdchub.metrics import exposition, serve
    from core.ledger import open_engine

    settings = get_settings()
    engine = open_engine(settings.ledger_database_url())
    if once:
        sys.stdout.write(exposition(settings, engine).decode())
        return 0
    log.info("Prometheus metrics on http://127.0.0.1:%d/metrics", port)
    serve(settings, engine, port)
    return 0


def register(app: typer.Typer) -> None:
    for command in (run, status, trace, replay, reconcile, dlq, snapshot, console, doctor, metrics):
        app.command(rich_help_panel=OPERATE)(command)
