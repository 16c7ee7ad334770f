"""Dead letters: a record that cannot be processed, with the reason, never dropped and never retried endlessly.

A dead letter is a JSON object (readable by any tool, and it must hold records that are not valid Avro):
``flow, stage, error_class, error, attempts, time_ms, source{topic, partition, offset, key}, record`` where ``record``
is the decoded record when there is one, else ``original_b64`` holds the raw bytes; a record bigger than
``MAX_RECORD_JSON_BYTES`` is replaced by ``{omitted_bytes, preview}`` (its source position says where it is whole).
One topic per flow: ``cdchub.dlq.<flow>``; the capture's is ``cdchub.dlq.capture``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.common.health import HEALTH

log = logging.getLogger(__name__)


#: A dead letter carries its record up to this size (JSON); a bigger record is replaced by its size and a preview,
#: so a dead letter always fits its topic (the source position names where the whole record is).
MAX_RECORD_JSON_BYTES = 512 * 1024
PREVIEW_CHARS = 2000


def dlq_topic(flow: str) -> str:
    return f"cdchub.dlq.{flow}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


@dataclass
class DeadLetter:
    flow: str
    stage: str
    error_class: str
    error: str
    record: Any = None
    original: bytes | None = None
    key: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    attempts: int = 1
    time_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @classmethod
    def of(cls, flow: str, stage: str, exc: BaseException, **kw: Any) -> DeadLetter:
        return cls(flow=flow, stage=stage, error_class=type(exc).__name__, error=str(exc), **kw)

    def to_json(self) -> bytes:
        doc = {
            "flow": self.flow,
            "stage": self.stage,
            "error_class": self.error_class,
            "error": self.error,
            "attempts": self.attempts,
            "time_ms": self.time_ms,
            "source": {"topic": self.topic, "partition": self.partition, "offset": self.offset, "key": self.key},
            "record": self.record,
        }
        if self.original is not None:
            doc["original_b64"] = base64.b64encode(self.original).decode()
        body = json.dumps(doc, ensure_ascii=False, default=_jsonable).encode("utf-8")
        if len(body) <= MAX_RECORD_JSON_BYTES:
            return body
        record = json.dumps({"record": self.record, "original_b64": doc.get("original_b64")}, ensure_ascii=False,
                            default=_jsonable)
        doc.pop("original_b64", None)
        doc["record"] = {"omitted_bytes": len(record.encode("utf-8")), "preview": record[:PREVIEW_CHARS]}
        return json.dumps(doc, ensure_ascii=False, default=_jsonable).encode("utf-8")

    def log(self) -> None:
        """The log line naming the record (every dead letter is logged once, where it is made), counted in the
        process's health report."""
        log.error(
            "dead letter flow=%s stage=%s key=%s at %s[%s]@%s: %s: %s",
            self.flow, self.stage, self.key, self.topic, self.partition, self.offset, self.error_class, self.error,
        )
        HEALTH.dead_letter(self.flow, f"{self.error_class}: {self.error}"[:500])
