"""The ``cdchub`` command: stack up/down/status, capture, flows, and ``run`` (everything, with a live view)."""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from cdchub.settings import PROJECT_ROOT, Settings, get_settings

if TYPE_CHECKING:
    from infra.stack.component import ComponentStatus

log = logging.getLogger("cdchub")
def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_up(args: argparse.Namespace) -> int:
    rows, _ = _start_local_stack(args.components or None)
    for row in rows:
        print(f"{row.name:<12} {'up' if row.running else 'DOWN':<5} {row.detail}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from infra.stack.manager import down

    for row in down(get_settings()):
        print(f"{row.name:<12} {'up' if row.running else 'down':<5} {row.detail}")
    return 0


def _flow_report(settings: Settings) -> list[str]:
    from cdchub.dashboard import capture_stats, line, take
    from cdchub.flow_status import capture_mode_line, flow_statuses, runtime_lines, token_line
    from cdchub.ledger import open_engine
    from connectors.kingdee.source import accepted_gaps
    from connectors.zoho.budget import usage

    try:
        ledger = {s.flow: s for s in flow_statuses(settings, open_engine(settings.ledger_database_url()))}
        tokens = token_line(settings)
        gaps = accepted_gaps(settings.state_dir)
        gap_lines = [f"capture: {len(gaps)} slot gap(s) accepted, the last {gaps[-1]['from_lsn']} → "
                     f"{gaps[-1]['to_lsn']} (changes skipped; `cdchub capture --resnapshot` re-sends everything)"
                     ] if gaps else []
        polled = capture_mode_line(capture_stats(settings.state_dir))
        return ["capture: " + line(take(settings, [])).split("  synced")[0], *([polled] if polled else []),
                *gap_lines,
                *runtime_lines(settings, ledger),
                "flows (from the ledger):", *[s.line() for s in ledger.values()],
                usage(settings.state_dir).line(settings.zoho.daily_credits, settings.zoho.max_concurrency),
                *([tokens] if tokens else [])]
    except Exception as exc:  # no ledger or topics yet
        return [f"flows: not available ({type(exc).__name__}: {exc})"]


def cmd_status(args: argparse.Namespace) -> int:
    from infra.stack.manager import status

    settings = get_settings()
    while True:
        rows = status(settings)
        report = [f"{row.name:<14} {'up' if row.running else 'DOWN':<5} {row.detail}" for row in rows]
        if not all(r.running for r in rows if r.name in ("kafka", "registry")):
            # asking a broker that is down floods the terminal with client connection errors
            report.append("flows: not available while Kafka or the registry is down (start them: `cdchub up`)")
        else:
            report += _flow_report(settings)
        if args.watch:
            sys.stdout.write("\033[2J\033[H" + time.strftime("%H:%M:%S\n") + "\n".join(report) + "\n")
            sys.stdout.flush()
            time.sleep(args.interval)  # refresh period of a live view, not a wait for a condition
            continue
        print("\n".join(report))
        return 0 if all(r.running for r in rows) else 1


def _fresh_settings() -> Settings:
    """Settings re-read after ``up`` may have written the local secrets."""
    get_settings.cache_clear()
    return get_settings()


def _start_local_stack(components: list[str] | None = None) -> tuple[list[ComponentStatus], Settings]:
    """Start the local stack; returns its rows and settings read after it wrote every local secret.

    Settings read secret files when they are built, so the stack's own secrets are generated before any settings
    exist, and settings are read again after the simulators wrote their credentials while starting."""
    from infra.stack.local_secrets import ensure_secrets
    from infra.stack.manager import up

    ensure_secrets()
    rows = up(_fresh_settings(), components)
    return rows, _fresh_settings()


def _share_org_limits(settings: Settings, process: str) -> None:
    """Every process that calls a target system counts its ZOHO credits and shares access tokens with the others
    through the state dir: limits belong to the org, not to the process."""
    from connectors.common import shared_state
    from connectors.zoho import budget

    shared_state.share(settings.state_dir)
    budget.enable(settings.state_dir, process)


def cmd_prepare(args: argparse.Namespace) -> int:
    from cdchub.kingdee_db import prepare

    print(prepare(get_settings(), materials=args.materials, customers=args.customers, orders=args.orders))
    return 0


def cmd_capture(args: argparse.Namespace) -> int:
    from cdchub.capture_modes import capture

    stats = capture(get_settings(), mode=args.mode, documents=args.documents.split(",") if args.documents else None,
                    until_idle=args.until_idle, accept_gap=args.accept_gap, resnapshot=args.resnapshot)
    log.info("capture stopped: %s", stats)
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    from cdchub.snapshot_command import run_snapshot

    return run_snapshot(get_settings(), args.names, wait_s=args.wait)


def cmd_poll_zoho(args: argparse.Namespace) -> int:
    from connectors.zoho.source import run_poller

    _share_org_limits(get_settings(), "poll-zoho")
    poller = run_poller(get_settings(), once=args.once)
    log.info("ZOHO poller stopped after %d events", poller.events)
    return 0


def cmd_poll_weaver(args: argparse.Namespace) -> int:
    from connectors.weaver.source import run_poller

    _share_org_limits(get_settings(), "poll-weaver")
    poller = run_poller(get_settings(), once=args.once)
    log.info("Weaver poller stopped after %d events", poller.events)
    return 0


def cmd_poll_huilianyi(args: argparse.Namespace) -> int:
    from connectors.huilianyi.source import run_poller

    _share_org_limits(get_settings(), "poll-huilianyi")
    poller = run_poller(get_settings(), once=args.once)
    log.info("Huilianyi poller stopped after %d events", poller.events)
    return 0


def cmd_pollers(args: argparse.Namespace) -> int:
    """The ZOHO, Weaver and Huilianyi pollers as threads of one process (``docs/runtime.md``)."""
    import threading

    from connectors.huilianyi.source import ExpenseReportPoller
    from connectors.weaver.source import WeaverRequestPoller
    from connectors.zoho.source import ZohoChangePoller

    settings = get_settings()
    _share_org_limits(settings, "pollers")
    kinds = {"zoho": ZohoChangePoller, "weaver": WeaverRequestPoller, "huilianyi": ExpenseReportPoller}
    chosen = [k.strip() for k in args.only.split(",")] if args.only else list(kinds)
    pollers = [kinds[k](settings) for k in chosen]
    failed: list[str] = []

    def run(name: str, poller: Any) -> None:
        try:
            poller.run()
        except Exception:  # a bug: stop the process loudly, the supervisor restarts it
            log.exception("the %s poller failed", name)
            failed.append(name)
            for other in pollers:
                other.stop()

    threads = [threading.Thread(target=run, args=(k, p), name=f"poll-{k}") for k, p in zip(chosen, pollers,
                                                                                          strict=True)]

    def stop(*_: object) -> None:
        for poller in pollers:
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


def cmd_dlq(args: argparse.Namespace) -> int:
    import json

    from cdchub import dead_letter_admin as dlq
    from cdchub.ledger import open_engine

    settings = get_settings()
    _share_org_limits(settings, "dlq")
    engine = open_engine(settings.ledger_database_url())
    chosen = dlq.letters(settings, args.flow, args.reason)
    if args.action == "list":
        done = dlq.replayed(engine)
        for letter in chosen:
            mark = done.get((letter.dlq_topic, letter.dlq_offset), "")
            print(letter.summary() + (f"  [{mark}]" if mark else ""))
        print(f"{len(chosen)} dead letters")
    elif args.action == "show":
        wanted = [x for x in chosen if args.offset is None or x.dlq_offset == args.offset]
        print(json.dumps([x.body for x in wanted], ensure_ascii=False, indent=2))
    else:
        results = dlq.replay(settings, engine, chosen, dry_run=args.dry_run, again=args.again)
        for letter, outcome in results:
            print(f"{letter.flow:<22} offset {letter.dlq_offset:>6} key={letter.source.get('key')}: {outcome}")
        print(f"{sum(1 for _, o in results if o == 'replayed')} replayed of {len(results)}")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from cdchub.ledger import open_engine
    from cdchub.trace import trace

    settings = get_settings()
    found = trace(settings, open_engine(settings.ledger_database_url()), args.term)
    print(found.to_json() if args.json else found.timeline())
    return 0 if found.documents or found.hops else 1


def cmd_metrics(args: argparse.Namespace) -> int:
    from cdchub.ledger import open_engine
    from cdchub.metrics import exposition, serve

    settings = get_settings()
    engine = open_engine(settings.ledger_database_url())
    if args.once:
        sys.stdout.write(exposition(settings, engine).decode())
        return 0
    log.info("Prometheus metrics on http://127.0.0.1:%d/metrics", args.port)
    serve(settings, engine, args.port)
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from cdchub.console.app import serve

    settings = get_settings()
    _share_org_limits(settings, "console")
    serve(settings, args.host or settings.console.host, args.port or settings.console.port)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from cdchub.replay import Bound, ReplayRefused, replay, report
    from connectors.common.replay_mode import ReplaySession

    _share_org_limits(get_settings(), "replay")
    try:
        session = replay(get_settings(), args.flow, ReplaySession(dry_run=args.dry_run),
                         Bound.parse(args.start), Bound.parse(args.end), progress=None if args.quiet else sys.stderr)
    except ReplayRefused as exc:
        print(f"cdchub replay: {exc}", file=sys.stderr)
        return 2
    print(report(session, args.flow, as_json=args.json))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    import json

    from cdchub.replay import ReplayRefused, reconcile, report

    _share_org_limits(get_settings(), "reconcile")
    try:
        session, counts = reconcile(get_settings(), args.flow, sample_percent=args.sample, fix=args.fix,
                                    progress=None if args.quiet else sys.stderr)
    except ReplayRefused as exc:
        print(f"cdchub reconcile: {exc}", file=sys.stderr)
        return 2
    if args.json:
        body = json.loads(report(session, args.flow, as_json=True))
        print(json.dumps({**body, "counts": [c.to_json() for c in counts]}, ensure_ascii=False, indent=2))
    else:
        print(report(session, args.flow))
        for c in counts:
            print(f"  {c.system} {c.module}: {c.source} source records, {c.target} in the target"
                  + (f", {len(c.orphans)} only in the target ({c.key_field}: {', '.join(c.orphans[:10])})"
                     if c.orphans else ""))
    return 1 if (session.drifts and not args.fix) or any(c.orphans for c in counts) else 0


def cmd_schemas(args: argparse.Namespace) -> int:
    """Subjects, versions and compatibility; and whether each schema file would be accepted as the next version."""
    import httpx

    from connectors.common.avro import SCHEMAS_DIR

    settings = get_settings()
    base = settings.registry.url
    refused = 0
    with httpx.Client(base_url=base, timeout=10) as http:
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


def cmd_flow(args: argparse.Namespace) -> int:
    """One flow alone, through ``python -m bytewax.run`` like the runtime's dataflows (this process becomes it)."""
    from cdchub.runtime import exec_single

    exec_single(args.name, get_settings())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Set up everything that is missing, start capture, pollers and the dataflows, and show live what happens.

    The set-up (``up``, ``prepare``) runs in child processes, so this supervisor stays small: it only starts,
    watches and stops processes and reads their health reports for the live view."""
    from cdchub.live_view import watch
    from cdchub.runtime import dataflow_commands
    from cdchub.supervisor import AlreadyRunning, Supervisor, silence_stdout, stop_on_hangup
    from flows.dataflows import DATAFLOWS, FLOWS

    stop_on_hangup()
    stopping = False
    supervisor: Supervisor | None = None
    cli = [sys.executable, "-m", "cdchub.cli"]
    try:
        chosen = [d.strip() for d in args.dataflows.split(",") if d.strip()]
        unknown = [d for d in chosen if d not in DATAFLOWS]
        if unknown:
            print(f"cdchub run: no dataflow {', '.join(unknown)}; dataflows: {', '.join(DATAFLOWS)}", file=sys.stderr)
            return 2
        print("starting the local stack (first start downloads Kafka and the registry; later starts are quick)…",
              flush=True)
        for step in (["up"], ["prepare", "--materials", str(args.materials)]):
            done = subprocess.run([*cli, *step], cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                print(f"cdchub run: `cdchub {' '.join(step)}` failed (exit {done.returncode}); see above",
                      file=sys.stderr)
                return done.returncode
        settings = _fresh_settings()  # read after `up` generated the local secrets
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
                print(f"\n{name} exited with code {code}; restarted in {delay:.0f}s "
                      f"(see {settings.run_log_dir / name}.log)")
            return True

        watch(settings.state_dir, [f for f in FLOWS if any(f in DATAFLOWS[d] for d in chosen)], alive)
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


def _flow_names() -> list[str]:
    from flows.dataflows import FLOWS

    return list(FLOWS)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cdchub", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("up", help="start the local stack (idempotent)")
    s.add_argument("components", nargs="*", help="postgres, kafka, registry, zoho-sim … (default: all)")
    s.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop the local stack").set_defaults(fn=cmd_down)
    s = sub.add_parser("status", help="stack, capture and per-flow status (synced, failed, rate, lag, dead letters)")
    s.add_argument("--watch", action="store_true", help="live-update until Ctrl-C")
    s.add_argument("--interval", type=float, default=2.0)
    s.set_defaults(fn=cmd_status)
    s = sub.add_parser("prepare", help="create the Kingdee tables and seed demo data if empty")
    s.add_argument("--materials", type=int, default=50)
    s.add_argument("--customers", type=int, default=20)
    s.add_argument("--orders", type=int, default=30)
    s.set_defaults(fn=cmd_prepare)
    s = sub.add_parser("capture", help="capture of Kingdee documents into Kafka: from the database's log, by "
                                       "polling the database, or by polling the WebAPI")
    s.add_argument("--mode", choices=("log", "query", "webapi"),
                   help="log: PostgreSQL's write-ahead log; query: any database by FMODIFYDATE (SQLAlchemy); "
                        "webapi: Kingdee's WebAPI (Kingdee Cloud). Default: CDCHUB_CAPTURE__MODE, else log")
    s.add_argument("--until-idle", action="store_true", help="stop when the stream has no more data")
    s.add_argument("--resnapshot", action="store_true", help="forget the position and take a new snapshot")
    s.add_argument("--accept-gap", action="store_true",
                   help="start even though the slot moved ahead of the capture's position (changes in between are "
                        "lost; recorded in capture-gaps.json, the metrics and status)")
    s.add_argument("--documents", help="comma-separated document names (default: all declared)")
    s.set_defaults(fn=cmd_capture)
    s = sub.add_parser("snapshot", help="re-snapshot Kingdee documents (or tables) while streaming continues, "
                                        "with progress")
    s.add_argument("names", nargs="+", help="documents (material, sales_order …) or their tables (T_BD_MATERIAL …)")
    s.add_argument("--wait", type=float, default=600.0, help="seconds to follow the progress (0: just request)")
    s.set_defaults(fn=cmd_snapshot)
    s = sub.add_parser("poll-zoho", help="poll ZOHO CRM for changes into zoho.<module> topics")
    s.add_argument("--once", action="store_true", help="one pass over the modules, then stop")
    s.set_defaults(fn=cmd_poll_zoho)
    s = sub.add_parser("poll-weaver", help="follow Weaver OA approval requests into the weaver.requests topic")
    s.add_argument("--once", action="store_true", help="one pass, then stop")
    s.set_defaults(fn=cmd_poll_weaver)
    s = sub.add_parser("pollers", help="the ZOHO, Weaver and Huilianyi pollers in one process (what `run` starts)")
    s.add_argument("--only", help="comma-separated: zoho, weaver, huilianyi (default: all)")
    s.set_defaults(fn=cmd_pollers)
    s = sub.add_parser("poll-huilianyi", help="poll Huilianyi expense reports into the huilianyi.expense_reports topic")
    s.add_argument("--once", action="store_true", help="one pass, then stop")
    s.set_defaults(fn=cmd_poll_huilianyi)
    s = sub.add_parser("trace", help="a document's journey: captured versions, writes, latency, dead letters")
    s.add_argument("term", help="a business number (material code, bill number), a source id or a target id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_trace)
    s = sub.add_parser("schemas", help="schema subjects, versions, compatibility; check the schema files")
    s.add_argument("action", choices=["check"])
    s.set_defaults(fn=cmd_schemas)
    s = sub.add_parser("metrics", help="serve Prometheus metrics (capture, sinks, latency, dead letters)")
    s.add_argument("--port", type=int, default=9464)
    s.add_argument("--once", action="store_true", help="print the exposition once and stop")
    s.set_defaults(fn=cmd_metrics)
    s = sub.add_parser("console", help="the web console: trace a document, replay dead letters, flow health")
    s.add_argument("--host", help="address to listen on (default: CDCHUB_CONSOLE__HOST, 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default: CDCHUB_CONSOLE__PORT, 18100)")
    s.set_defaults(fn=cmd_console)
    s = sub.add_parser("replay", help="re-run a flow over retained topic data; writes only what differs in the "
                                      "target (--dry-run: prints the diff)")
    s.add_argument("flow")
    s.add_argument("--from", dest="start", default="beginning",
                   help="beginning (default), an offset (on every partition) or a time, e.g. 2026-11-30T10:00:00+08:00")
    s.add_argument("--to", dest="end", default=None, help="an offset (inclusive) or a time; default: the end now")
    s.add_argument("--dry-run", action="store_true", help="compare and print what would change; write nothing")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_replay)
    s = sub.add_parser("reconcile", help="compare a flow's source records with its target: counts and per-record "
                                         "drift (exit 1 on drift); --fix re-syncs the drifted records")
    s.add_argument("flow")
    s.add_argument("--sample", type=int, default=100, help="compare this percentage of the records (default 100)")
    s.add_argument("--fix", action="store_true", help="write the differing fields")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_reconcile)
    s = sub.add_parser("dlq", help="dead letters: list, show, replay after a fix")
    s.add_argument("action", choices=["list", "show", "replay"])
    s.add_argument("--flow", help="only this flow's dead letters")
    s.add_argument("--reason", help="only letters whose error contains this text")
    s.add_argument("--offset", type=int, help="show: only the letter at this offset")
    s.add_argument("--dry-run", action="store_true", help="replay: say what would be replayed")
    s.add_argument("--again", action="store_true", help="replay: also letters replayed before")
    s.set_defaults(fn=cmd_dlq)
    s = sub.add_parser("flow", help="run one flow alone with recovery (debugging; `run` runs them all)")
    s.add_argument("name", choices=_flow_names(), metavar="name", help="one of: " + ", ".join(_flow_names()))
    s.set_defaults(fn=cmd_flow)
    s = sub.add_parser("run", help="set up everything and run capture, the pollers and the dataflows with a live view")
    s.add_argument("--dataflows", default="to_crm,to_kingdee,to_oa", help="comma-separated dataflows to run "
                   "(docs/runtime.md)")
    s.add_argument("--materials", type=int, default=50)
    s.set_defaults(fn=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    from cdchub.supervisor import guard_child

    guard_child()
    args = parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.fn(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
