"""What the console's pages show, gathered from the same code as ``cdchub trace``, ``cdchub dlq`` and ``cdchub
status`` (nothing here reads Kafka or the ledger on its own).  Every call blocks (Kafka, the ledger database): the
app runs them in a worker thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine, make_url

from cdchub import dead_letter_admin as dlq
from cdchub.console.pictures import Sparkline, sparkline
from cdchub.console.replay_preview import dry_run
from cdchub.dashboard import Snapshot, rate_history, take
from cdchub.flow_status import FlowRow, RuntimeStatus, lag_history, runtime_status
from cdchub.trace import Trace, trace
from connectors.settings import Settings

#: A dead-letter replay and a preview at a time (a preview must not see letters half replayed).
_REPLAYS = threading.Lock()


@dataclass(frozen=True)
class LetterRow:
    letter: dlq.Letter
    mark: str  # "" or the recorded replay outcome

    def as_json(self) -> dict[str, Any]:
        body = self.letter.body
        return {"dlq_topic": self.letter.dlq_topic, "dlq_offset": self.letter.dlq_offset, "flow": self.letter.flow,
                "stage": body.get("stage"), "key": self.letter.source.get("key"),
                "error_class": body.get("error_class"), "error": str(body.get("error"))[:500],
                "time_ms": body.get("time_ms"), "replayed": self.mark or None}


@dataclass(frozen=True)
class Health:
    status: RuntimeStatus | None
    capture: Snapshot | None
    problem: str = ""  # why some figures are not available (no ledger or broker yet)
    #: Per flow: writes per minute and lag over the last hour.
    rates: dict[str, Sparkline] = field(default_factory=dict)
    lags: dict[str, Sparkline] = field(default_factory=dict)

    @property
    def flows(self) -> list[FlowRow]:
        return self.status.flows if self.status is not None else []

    def as_json(self) -> dict[str, Any]:
        body = self.status.to_json() if self.status is not None else {"flows": []}
        return {**body, "problem": self.problem or None,
                "history": {flow: {"writes_per_minute_max": self.rates[flow].top if flow in self.rates else None,
                                   "lag_last": self.lags[flow].last if flow in self.lags else None}
                            for flow in (r.flow for r in self.flows)}}


@dataclass(frozen=True)
class ReplayPreview:
    """What "Replay all of <flow>" would do (``replay_preview.py``); the confirmation replays exactly ``offsets``."""

    flow: str
    letters: list[tuple[dlq.Letter, str]]
    dry_run: dict[str, Any]

    @property
    def offsets(self) -> list[int]:
        return [x.dlq_offset for x, outcome in self.letters if outcome.startswith("would replay")]

    def count(self, prefix: str) -> int:
        return sum(1 for _, outcome in self.letters if outcome.startswith(prefix))


@dataclass
class ConsoleData:
    settings: Settings
    engine: Engine

    def trace(self, term: str) -> Trace:
        return trace(self.settings, self.engine, term)

    def dead_letters(self, flow: str | None = None, reason: str | None = None) -> list[LetterRow]:
        marks = dlq.replayed(self.engine)
        return [LetterRow(x, marks.get((x.dlq_topic, x.dlq_offset), ""))
                for x in dlq.letters(self.settings, flow or None, reason or None)]

    def replay_letter(self, dlq_topic: str, dlq_offset: int) -> list[tuple[dlq.Letter, str]]:
        """Replay one letter, named by its dead-letter topic and offset (only topics of this installation)."""
        chosen = [x for x in dlq.letters(self.settings) if (x.dlq_topic, x.dlq_offset) == (dlq_topic, dlq_offset)]
        with _REPLAYS:
            return dlq.replay(self.settings, self.engine, chosen)

    def preview_flow(self, flow: str) -> ReplayPreview:
        """What replaying every letter of a flow would do, writing nothing: the dead-letter replay's dry run, and
        for flows that can compare with their target, the replay's dry run over exactly the letters' messages."""
        with _REPLAYS:
            outcomes = dlq.replay(self.settings, self.engine, dlq.letters(self.settings, flow), dry_run=True)
        chosen = [x for x, outcome in outcomes if outcome.startswith("would replay")]
        positions = [(str(x.source["topic"]), int(x.source.get("partition") or 0), int(x.source["offset"]))
                     for x in chosen]
        return ReplayPreview(flow, outcomes, dry_run(flow, positions, {str(x.source.get("key")) for x in chosen}))

    def replay_flow(self, flow: str, offsets: list[int] | None = None) -> list[tuple[dlq.Letter, str]]:
        """Replay the letters of a flow not replayed before — those at ``offsets`` of its dead-letter topic when
        given (the ones a preview showed), else all."""
        chosen = [x for x in dlq.letters(self.settings, flow) if offsets is None or x.dlq_offset in offsets]
        with _REPLAYS:
            return dlq.replay(self.settings, self.engine, chosen)

    def health(self) -> Health:
        """Every flow's status (and this minute's lag sample), with the last hour's writes and lag as sparklines."""
        status = runtime_status(self.settings, self.engine)
        problem = status.problem
        capture = None
        rates: dict[str, list[int]] = {}
        try:
            capture = take(self.settings, [])
            rates = rate_history(self.engine)
        except Exception as exc:  # no ledger yet: say so instead of failing the page
            problem = problem or f"{type(exc).__name__}: {str(exc)[:200]}"
        lags = lag_history(self.settings.state_dir)
        flows = [r.flow for r in status.flows]
        return Health(status, capture, problem,
                      {f: sparkline(rates.get(f) or [0] * 60) for f in flows},
                      {f: sparkline(lags[f]) for f in flows if f in lags})

    def sample(self) -> None:
        """This minute's lag sample of every flow (the console's sampler thread)."""
        runtime_status(self.settings, self.engine)

    def installation(self) -> list[tuple[str, str]]:
        """Where this installation's data lives; no secret (passwords in URLs are masked)."""
        s = self.settings
        ledger = make_url(s.ledger_database_url()).render_as_string(hide_password=True)
        return [("Kafka", s.kafka.bootstrap_servers), ("topic prefix", s.kafka.topic_prefix or "(none)"),
                ("schema registry", s.registry.url), ("ledger", ledger), ("state folder", str(s.state_dir)),
                ("Kingdee database", f"{s.kingdee_db.host}:{s.kingdee_db.port}/{s.kingdee_db.database}"),
                ("ZOHO CRM", s.zoho.api_domain)]
