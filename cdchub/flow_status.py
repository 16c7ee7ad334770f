"""What ``cdchub status`` and the console's flow health show: every flow of the runtime, the process running it and
whether it lives, what it applied, how far behind its topics it is, what it is retrying, the access tokens and the
ZOHO API budget.

Sources, all of them written by the runtime anyway (nothing here asks a running process):

- **processes**: the supervisor's ``<state dir>/run.pids`` (``cdchub run``: the supervisor and each child's pid)
  and the processes' health reports (``<state dir>/runtime/<role>-<pid>.json``, ``connectors/common/health.py``).
  A flow's liveness is its process's: ``alive`` (a fresh report, or a running child that writes none),
  ``not responding`` (its pid runs but its report went stale), ``starting`` (a child started but not reporting
  yet), ``restarting`` (the child exited and the supervisor, alive, starts it again after its backoff) or
  ``stopped`` (no supervisor and no process reports it);
- **read, written, retrying since, last error**: the health reports of the live processes (``retrying since`` is
  when the oldest command the flow's sink still retries first failed; commands that only wait for an access token
  are counted apart);
- **synced, failed, rate, lag**: the sync ledger and the topics (below); **dead letters**: the dead-letter topic's
  end offsets; the last error falls back to the ledger's last failure when no process reports one;
- **access tokens**: the installation's token records (``connectors/common/token_cache.py``): minted in the last
  10 minutes, refreshes the server refused (how many, the last one's time and reason) and how long no token is to
  be had; **ZOHO API budget**: the installation's credit meter (``connectors/zoho/budget.py``).

Lag is the number of messages on the flow's source topics after the last one it applied or dead-lettered (from the
ledger's Kafka positions on every topic the flow wrote from, the dead letters' source positions and the topics' end
offsets).  Messages it skipped as duplicates or that are not its business (drafts, tombstones) count too, so a lag
that stays put while nothing changes is normal; one that grows is not.  A flow that has written nothing yet has no
known topic, hence no lag ("-").

Every computation of lag is kept as a sample of its minute (``<state dir>/history/flow-lag.json``, the last hour),
which the console draws as sparklines next to the writes per minute from the ledger's history
(:func:`cdchub.dashboard.rate_history`); the console takes a sample a minute while it runs, and so do ``cdchub
status --watch`` and every metrics scrape.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from cdchub.dead_letter_admin import letters
from connectors.common.kafka import consumer as kafka_consumer
from connectors.settings import Settings
from core.ledger import sync_ledger
from core.process import pid_alive

HISTORY = "history"
LAG_SAMPLES = "flow-lag.json"
HISTORY_MINUTES = 60
#: Liveness, best first: a flow run by several processes (or by an old and a new one) shows the best.
LIVENESS = ("alive", "not responding", "starting", "restarting", "stopped")


def _clock(ms: int | float | None) -> str:
    return "-" if not ms else time.strftime("%H:%M:%S", time.localtime(ms / 1000))


@dataclass
class FlowStatus:
    """A flow's figures from the ledger and its topics."""

    flow: str
    topic: str | None
    synced: int
    failed: int
    per_minute: int
    last_applied_ms: int | None
    lag: int | None
    dead_letters: int
    #: Every topic the ledger holds positions of for this flow.
    topics: list[str] = field(default_factory=list)
    #: The ledger's last failure (when no process reports an error).
    last_failure: str | None = None
    last_failure_ms: int | None = None

    def line(self) -> str:
        lag = "-" if self.lag is None else str(self.lag)
        return (f"{self.flow:<24} synced {self.synced:>6}  failed {self.failed:>4}  last "
                f"{_clock(self.last_applied_ms):<8}  {self.per_minute:>5}/min  lag {lag:>6}  "
                f"dead letters {self.dead_letters}")


@dataclass
class ProcessStatus:
    """One process of the runtime: a child of ``cdchub run``, or a process that reports flows on its own."""

    name: str
    pid: int | None
    liveness: str
    flows: list[str] = field(default_factory=list)
    started_ms: int | None = None

    def line(self) -> str:
        up = ""
        if self.started_ms and self.liveness == "alive":
            up_s = max(0, int(time.time() - self.started_ms / 1000))
            up = f", up {up_s // 60}m{up_s % 60:02d}s"
        return f"  {self.name:<14} pid {self.pid or '-':<8} {self.liveness}{up}"


@dataclass
class FlowRow:
    """Everything status shows of one flow."""

    flow: str
    dataflow: str
    process: str | None
    pid: int | None
    liveness: str
    synced: int = 0
    failed: int = 0
    per_minute: int = 0
    last_applied_ms: int | None = None
    lag: int | None = None
    dead_letters: int = 0
    read: int | None = None
    written: int | None = None
    retrying: int = 0
    retrying_since_ms: int | None = None
    waiting_for_token: int = 0
    last_error: str | None = None
    last_error_ms: int | None = None

    def line(self) -> str:
        lag = "-" if self.lag is None else str(self.lag)
        process = f"{self.dataflow:<10} pid {self.pid or '-':<7} {self.liveness:<10}"
        text = (f"{self.flow:<22} {process}  synced {self.synced:>6}  failed {self.failed:>4}  last "
                f"{_clock(self.last_applied_ms):<8}  {self.per_minute:>5}/min  lag {lag:>6}  "
                f"dead letters {self.dead_letters}")
        if self.retrying:
            text += f"  retrying {self.retrying} since {_clock(self.retrying_since_ms)}"
            if self.waiting_for_token:
                text += f" ({self.waiting_for_token} waiting for an access token)"
        if self.last_error:
            text += f"  last error {_clock(self.last_error_ms)}: {self.last_error[:100]}"
        return text


@dataclass
class TokenStatus:
    """One credential's shared access token: mints, refusals, wait."""

    credential: str
    system: str
    minted_10_min: int
    refusals: int
    last_refusal_ms: int | None
    last_refusal: str | None
    waiting_s: float

    def text(self) -> str:
        last = (f" (last {_clock(self.last_refusal_ms)}: {(self.last_refusal or '')[:80]})"
                if self.last_refusal_ms else "")
        waiting = f", no token for {self.waiting_s:.0f}s more" if self.waiting_s > 0 else ""
        return f"{self.system}: {self.minted_10_min} minted in the last 10 min, {self.refusals} refused{last}{waiting}"


@dataclass
class BudgetStatus:
    """The ZOHO API credits of the org over ZOHO's rolling 24 hours."""

    credits_24h: int
    daily: int
    throttled_24h: int
    remaining: int | None
    concurrency: int
    token_refusals: int
    last_token_refusal_ms: int | None

    @property
    def share(self) -> float:
        return self.credits_24h / self.daily if self.daily else 0.0

    def line(self) -> str:
        said = f", ZOHO says {self.remaining:,} left" if self.remaining is not None else ""
        refused = (f", {self.token_refusals} token refreshes refused (last {_clock(self.last_token_refusal_ms)})"
                   if self.token_refusals else ", 0 token refreshes refused")
        return (f"ZOHO API (24 h): {self.credits_24h:,} credits of {self.daily:,} ({self.share:.1%}){said}, "
                f"{self.throttled_24h} throttled (429){refused}, at most {self.concurrency} calls at once for the org")


@dataclass
class RuntimeStatus:
    processes: list[ProcessStatus]
    flows: list[FlowRow]
    tokens: list[TokenStatus]
    budget: BudgetStatus | None
    #: Why some figures are missing (the ledger or Kafka not reachable), else "".
    problem: str = ""

    def runtime_lines(self) -> list[str]:
        """The processes and the flows."""
        out = ["processes:" if self.processes else "processes: none (`cdchub run` starts them)"]
        out += [p.line() for p in self.processes]
        out.append(f"flows ({len(self.flows)}, every flow of the runtime):")
        out += [f.line() for f in self.flows]
        if self.problem:
            out.append(f"figures not available: {self.problem}")
        return out

    def lines(self) -> list[str]:
        out = self.runtime_lines()
        if self.budget is not None:
            out.append(self.budget.line())
        if self.tokens:
            out.append("access tokens: " + "; ".join(t.text() for t in self.tokens))
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def capture_mode_line(stats: dict[str, Any]) -> str | None:
    """What a polled capture costs its source (``cdchub status``); nothing for the log capture."""
    mode = stats.get("mode") or "log"
    if mode == "log":
        return None
    unit = "statements" if mode == "query" else "API calls"
    up_s = max(1.0, time.time() - int(stats.get("started_ms") or 0) / 1000)
    return (f"capture mode {mode}: {stats.get('polls', 0)} polls, {stats.get('source_calls', 0)} {unit} "
            f"({stats.get('source_calls', 0) / up_s * 60:.0f}/min since the start), {stats.get('source_rows', 0)} "
            f"rows and {stats.get('documents_read', 0)} documents read")


# --- processes -------------------------------------------------------------------------------------------------


def _run_pids(state_dir: Path) -> dict[str, Any]:
    try:
        body = json.loads((state_dir / "run.pids").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _dataflow_flows(name: str) -> list[str]:
    """The flows a child of ``cdchub run`` runs (``to_crm``, ``to_crm-1`` …; none for capture and pollers)."""
    from flows.dataflows import DATAFLOWS

    base = name.rsplit("-", 1)[0] if name not in DATAFLOWS and name.rsplit("-", 1)[-1].isdigit() else name
    return list(DATAFLOWS.get(base, ()))


def processes(state_dir: Path, reports: list[dict[str, Any]] | None = None) -> list[ProcessStatus]:
    """Every process of the runtime with its liveness (see the module doc)."""
    from connectors.common.health import read_reports

    reports = read_reports(state_dir) if reports is None else reports
    by_pid = {int(r.get("pid") or 0): r for r in reports}
    recorded = _run_pids(state_dir)
    out: list[ProcessStatus] = []
    seen: set[int] = set()
    supervisor = int(recorded.get("supervisor") or 0) or None
    if supervisor:
        supervised = pid_alive(supervisor)
        out.append(ProcessStatus("supervisor", supervisor, "alive" if supervised else "stopped"))
        for name, pid in (recorded.get("children") or {}).items():
            pid = int(pid or 0) or None
            report = by_pid.get(pid or 0)
            flows = _dataflow_flows(name)
            if not supervised:
                liveness = "stopped"
            elif not pid_alive(pid):
                liveness = "restarting"
            elif report is not None:
                liveness = "alive" if report["alive"] else "not responding"
            else:  # capture and pollers write no report; a dataflow writes its first one once it is set up
                liveness = "starting" if flows else "alive"
            seen.add(pid or 0)
            out.append(ProcessStatus(name, pid, liveness, flows,
                                     int(report["started_ms"]) if report and report.get("started_ms") else None))
    for report in reports:  # processes nobody supervises (``cdchub flow <name>``), or left by an earlier run
        pid = int(report.get("pid") or 0)
        if pid in seen:
            continue
        liveness = "alive" if report["alive"] else ("not responding" if pid_alive(pid) else "stopped")
        out.append(ProcessStatus(str(report.get("role")), pid, liveness, sorted(report.get("flows") or {}),
                                 int(report.get("started_ms") or 0) or None))
    return out


# --- flows from the ledger and Kafka -----------------------------------------------------------------------------


def _end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return {}
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}


def flow_statuses(settings: Settings, engine: Engine, flows: list[str] | None = None) -> list[FlowStatus]:
    """The ledger's and the topics' figures of every flow with ledger rows, and of ``flows`` (all of them: those
    that wrote nothing yet too)."""
    t = sync_ledger.c
    since = int(time.time() * 1000) - 60_000
    with engine.connect() as conn:
        counted = conn.execute(select(
            t.flow, func.sum((t.status == "synced").cast(sync_ledger.c.attempts.type)),
            func.sum((t.status == "failed").cast(sync_ledger.c.attempts.type)),
            func.sum((t.applied_at_ms >= since).cast(sync_ledger.c.attempts.type)), func.max(t.applied_at_ms),
        ).group_by(t.flow)).all()
        positions = conn.execute(select(t.flow, t.kafka_topic, t.kafka_partition, func.max(t.kafka_offset))
                                 .where(t.kafka_topic.is_not(None))
                                 .group_by(t.flow, t.kafka_topic, t.kafka_partition)).all()
        failures = {r.flow: r for r in conn.execute(
            select(t.flow, t.last_error, func.max(t.updated_at_ms).label("at"))
            .where(t.status == "failed").group_by(t.flow))}
    figures = {str(flow): (int(s or 0), int(f or 0), int(recent or 0), last) for flow, s, f, recent, last in counted}
    names = sorted(set(figures) | set(flows or []))
    consumer = kafka_consumer(settings.kafka, "cdchub-status")
    out = []
    try:
        for flow in names:
            synced, failed, recent, last = figures.get(flow, (0, 0, 0, None))
            topics = sorted({str(tp) for f, tp, _, _ in positions if f == flow})
            lag = None
            if topics:
                done = {(tp, int(p or 0)): int(o) for f, tp, p, o in positions if f == flow}
                for letter in letters(settings, flow) if synced or failed else []:  # dead-lettered: handled too
                    src = letter.source
                    if src.get("topic") in topics and src.get("offset") is not None:
                        where = (str(src["topic"]), int(src.get("partition") or 0))
                        done[where] = max(done.get(where, -1), int(src["offset"]))
                lag = sum(max(0, end - (done.get((topic, p), -1) + 1))
                          for topic in topics for p, end in _end_offsets(consumer, topic).items())
            dlq = _end_offsets(consumer, settings.kafka.topic(f"cdchub.dlq.{flow}"))
            failure = failures.get(flow)
            out.append(FlowStatus(flow, topics[0] if topics else None, synced, failed, recent, last, lag,
                                  sum(dlq.values()), topics, failure.last_error if failure else None,
                                  failure.at if failure else None))
    finally:
        consumer.close()
    return out


# --- lag samples (the sparklines' history) -------------------------------------------------------------------------


def record_lag(state_dir: Path, lags: dict[str, int | None], now: float | None = None) -> None:
    """Keep this minute's lag of each flow (the last hour is kept)."""
    minute = int((now or time.time()) // 60)
    where = state_dir / HISTORY
    where.mkdir(parents=True, exist_ok=True)
    path = where / LAG_SAMPLES
    with (where / f"{LAG_SAMPLES}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            samples = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except ValueError:
            samples = {}
        for flow, lag in lags.items():
            if lag is None:
                continue
            kept = {m: v for m, v in (samples.get(flow) or {}).items() if int(m) > minute - HISTORY_MINUTES}
            kept[str(minute)] = int(lag)
            samples[flow] = kept
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(samples), encoding="utf-8")
        os.replace(tmp, path)


def lag_history(state_dir: Path, minutes: int = HISTORY_MINUTES, now: float | None = None
                ) -> dict[str, list[int | None]]:
    """Per flow, the lag of each of the last ``minutes`` minutes, oldest first (None: no sample that minute)."""
    minute = int((now or time.time()) // 60)
    try:
        samples = json.loads((state_dir / HISTORY / LAG_SAMPLES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {flow: [by_minute.get(str(m)) for m in range(minute - minutes + 1, minute + 1)]
            for flow, by_minute in samples.items()}


# --- tokens and budget -----------------------------------------------------------------------------------------------


def token_statuses(state_dir: Path, now: float | None = None) -> list[TokenStatus]:
    from connectors.common.token_cache import token_stats

    now = now or time.time()
    out = []
    for name, stats in token_stats(state_dir).items():
        last_at = float(stats.get("last_refusal_at") or 0)
        out.append(TokenStatus(
            name, name.split("-", 1)[0], len([t for t in stats.get("mints") or [] if now - float(t) < 600]),
            int(stats.get("refusals") or 0), int(last_at * 1000) or None, stats.get("last_refusal"),
            max(0.0, float(stats.get("not_before") or 0) - now)))
    return out


def token_line(settings: Settings) -> str | None:
    tokens = token_statuses(settings.state_dir)
    return "access tokens: " + "; ".join(t.text() for t in tokens) if tokens else None


def budget_status(settings: Settings, tokens: list[TokenStatus]) -> BudgetStatus:
    from connectors.zoho.budget import usage

    spent = usage(settings.state_dir)
    zoho = [t for t in tokens if t.system == "zoho"]
    return BudgetStatus(spent.credits_24h, settings.zoho.daily_credits, spent.throttled_24h, spent.remaining,
                        settings.zoho.max_concurrency, sum(t.refusals for t in zoho),
                        max((t.last_refusal_ms for t in zoho if t.last_refusal_ms), default=None))


# --- everything together ---------------------------------------------------------------------------------------------


def _from_reports(row: FlowRow, reports: list[dict[str, Any]]) -> None:
    """What the live processes report of the flow (several processes of one dataflow add up)."""
    live = [r["flows"][row.flow] for r in reports if r["alive"] and row.flow in (r.get("flows") or {})]
    if not live:
        return
    row.read = sum(int(h.get("read") or 0) for h in live)
    row.written = sum(int(h.get("written") or 0) for h in live)
    row.retrying = sum(int(h.get("retrying") or 0) for h in live)
    row.waiting_for_token = sum(int(h.get("waiting_for_token") or 0) for h in live)
    row.retrying_since_ms = min((int(h["retrying_since_ms"]) for h in live if h.get("retrying_since_ms")),
                                default=None)
    errors = sorted((int(h.get("last_error_ms") or 0), str(h["last_error"])) for h in live if h.get("last_error"))
    if errors:
        row.last_error_ms, row.last_error = errors[-1]


def runtime_status(settings: Settings, engine: Engine | None, *, record: bool = True) -> RuntimeStatus:
    """Every flow of the runtime (``flows/dataflows.py``) with its process, liveness and figures; the tokens and
    the ZOHO budget.  Without ``engine`` (or when the ledger or Kafka cannot be read) the ledger's figures are
    missing and ``problem`` says why; the rest is still shown.  ``record`` keeps the lags as this minute's
    sample."""
    from connectors.common.health import read_reports
    from flows.dataflows import DATAFLOWS, FLOWS

    reports = read_reports(settings.state_dir)
    procs = processes(settings.state_dir, reports)
    problem = ""
    ledger: dict[str, FlowStatus] = {}
    if engine is not None:
        try:
            ledger = {s.flow: s for s in flow_statuses(settings, engine, list(FLOWS))}
        except Exception as exc:  # no ledger, broker or topics yet: show what the processes say
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
    rows = []
    for dataflow, members in DATAFLOWS.items():
        for flow in members:
            running = sorted((p for p in procs if flow in p.flows), key=lambda p: LIVENESS.index(p.liveness))
            best = running[0] if running else None
            row = FlowRow(flow, dataflow, best.name if best else None, best.pid if best else None,
                          best.liveness if best else "stopped")
            figures = ledger.get(flow)
            if figures is not None:
                row.synced, row.failed, row.per_minute = figures.synced, figures.failed, figures.per_minute
                row.last_applied_ms, row.lag, row.dead_letters = figures.last_applied_ms, figures.lag, \
                    figures.dead_letters
                row.last_error, row.last_error_ms = figures.last_failure, figures.last_failure_ms
            _from_reports(row, reports)
            rows.append(row)
    if record and ledger:
        with contextlib.suppress(OSError):  # a read-only state dir costs the history, not the status
            record_lag(settings.state_dir, {r.flow: r.lag for r in rows})
    tokens = token_statuses(settings.state_dir)
    return RuntimeStatus(procs, rows, tokens, budget_status(settings, tokens), problem)


def runtime_lines(settings: Settings, by_flow: dict[str, FlowStatus] | None = None) -> list[str]:
    """The processes and every flow (without the ledger's figures unless given): kept for callers of the earlier
    status; :func:`status_report` is the whole report."""
    status = runtime_status(settings, None, record=False)
    for row in status.flows:
        figures = (by_flow or {}).get(row.flow)
        if figures is not None:
            row.synced, row.failed, row.per_minute, row.lag = (figures.synced, figures.failed, figures.per_minute,
                                                               figures.lag)
            row.dead_letters, row.last_applied_ms = figures.dead_letters, figures.last_applied_ms
    return status.runtime_lines()


def status_report(settings: Settings) -> list[str]:
    """The flows part of ``cdchub status`` (below the stack's components): the capture, every process and every
    flow, the ZOHO budget and the access tokens."""
    from cdchub.dashboard import capture_stats, line, take
    from connectors.kingdee.source import accepted_gaps
    from core.ledger import open_engine

    out: list[str] = []
    try:
        engine: Engine | None = open_engine(settings.ledger_database_url())
        out.append("capture: " + line(take(settings, [])).split("  synced")[0])
    except Exception as exc:  # no ledger yet
        engine = None
        out.append(f"capture: figures not available ({type(exc).__name__}: {str(exc)[:120]})")
    polled = capture_mode_line(capture_stats(settings.state_dir))
    out += [polled] if polled else []
    gaps = accepted_gaps(settings.state_dir)
    if gaps:
        out.append(f"capture: {len(gaps)} slot gap(s) accepted, the last {gaps[-1]['from_lsn']} → "
                   f"{gaps[-1]['to_lsn']} (changes skipped; `cdchub capture --resnapshot` re-sends everything)")
    return out + runtime_status(settings, engine).lines()
