"""Stand-ins for the Kafka producer that sinks send dead letters with (unit tests only)."""

from __future__ import annotations


class DeadLetterProducer:
    """Keeps what was produced: (topic, value)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        #: How many were produced when each flush was asked for.
        self.flushed_at: list[int] = []

    def produce(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append((topic, value))

    def flush(self, timeout: float) -> int:
        self.flushed_at.append(len(self.sent))
        return 0

    @property
    def values(self) -> list[bytes]:
        return [value for _, value in self.sent]
