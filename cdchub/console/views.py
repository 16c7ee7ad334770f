"""What the console's pages show, gathered from the same code as ``cdchub trace``, ``cdchub dlq`` and ``cdchub
status`` (nothing here reads Kafka or the ledger on its own).  Every call blocks (Kafka, the ledger database): the
app runs them in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine, make_url

from cdchub import dead_letter_admin as dlq
from cdchub.dashboard import Snapshot, take
from cdchub.flow_status import FlowStatus, flow_statuses
from cdchub.settings import Settings
from cdchub.trace import Trace, trace


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
    flows: list[FlowStatus]
    capture: Snapshot | None
    problem: str = ""  # why the figures are not available (no ledger or broker yet)
    #: Every flow of every dataflow: (dataflow, flow, the running process's report of it or None, process report).
    runtime: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = field(default_factory=list)


def runtime_view(settings: Settings) -> list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]]:
    """Every flow of every dataflow with what its running process (if any) reports of it."""
    from connectors.common.health import read_reports
    from flows.dataflows import DATAFLOWS

    reports = read_reports(settings.state_dir)
    rows: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = []
    for dataflow, members in DATAFLOWS.items():
        for flow in members:
            found = next(((r, r["flows"][flow]) for r in reports if flow in (r.get("flows") or {}) and r["alive"]),
                         None) or next(((r, r["flows"][flow]) for r in reports if flow in (r.get("flows") or {})),
                                       None)
            rows.append((dataflow, flow, found[1] if found else None, found[0] if found else None))
    return rows


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
        return dlq.replay(self.settings, self.engine, chosen)

    def replay_flow(self, flow: str) -> list[tuple[dlq.Letter, str]]:
        """Replay every letter of a flow not replayed before."""
        return dlq.replay(self.settings, self.engine, dlq.letters(self.settings, flow))

    def health(self) -> Health:
        runtime = runtime_view(self.settings)
        try:
            return Health(flow_statuses(self.settings, self.engine), take(self.settings, []), runtime=runtime)
        except Exception as exc:  # no ledger, broker or topics yet: say so instead of failing the page
            return Health([], None, f"{type(exc).__name__}: {str(exc)[:200]}", runtime)

    def installation(self) -> list[tuple[str, str]]:
        """Where this installation's data lives; no secret (passwords in URLs are masked)."""
        s = self.settings
        ledger = make_url(s.ledger_database_url()).render_as_string(hide_password=True)
        return [("Kafka", s.kafka.bootstrap_servers), ("topic prefix", s.kafka.topic_prefix or "(none)"),
                ("schema registry", s.registry.url), ("ledger", ledger), ("state folder", str(s.state_dir)),
                ("Kingdee database", f"{s.kingdee_db.host}:{s.kingdee_db.port}/{s.kingdee_db.database}"),
                ("ZOHO CRM", s.zoho.api_domain)]
