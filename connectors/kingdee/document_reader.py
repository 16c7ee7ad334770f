"""What the polled capture modes read from a Kingdee installation: changed document ids, whole documents, key sets.

The log capture reads row changes from the write-ahead log.  Where there is no log to read (Kingdee on SQL Server or
Oracle without CDC rights, Kingdee Cloud), a ``DocumentReader`` answers the polled capture's three questions
(``connectors/kingdee/polled_capture.py``), and the capture turns the answers into the same whole-document events on
the same topics:

- which documents of a kind changed since a modified time (``changed_since``),
- what those documents are now, as rows of their tables (``read``) — the same tables, columns and wire values
  (``assembly.wire_row``) the log capture stores, so one assembler builds the documents of every mode,
- which documents exist (``key_buckets`` / ``keys``), to see deletions.

Two readers: ``QueryReader`` (any database through SQLAlchemy Core, ``query_reader.py``) and ``WebApiReader``
(Kingdee's WebAPI ``ExecuteBillQuery``, ``webapi_reader.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from connectors.kingdee.documents import DocumentSpec

#: Rows of one or more documents, by table name: ``{"T_SAL_ORDER": [row, …], "T_SAL_ORDERENTRY": [row, …], …}``.
#: Every table of the document's spec is present (an empty list when it has no rows).
TableRows = dict[str, list[dict[str, Any]]]


class DocumentReader(Protocol):
    #: Requests made so far (SQL statements or API calls), for the figures and ``cdchub status``.
    calls: int
    #: Rows (or API result rows) read so far.
    rows_read: int

    def changed_since(self, spec: DocumentSpec, since: datetime | None) -> list[tuple[str, datetime]]:
        """``(document id, modified time)`` of the documents of ``spec`` whose header's ``spec.modified_column`` is
        at or after ``since`` (every document when ``None``), oldest first.  Ids are text (``str(FID)``)."""
        ...

    def read(self, spec: DocumentSpec, doc_ids: Sequence[str]) -> TableRows:
        """The documents' rows now, in every table of ``spec`` (header first).  A document that no longer exists
        has no rows.  Values as ``wire_row`` gives them (Decimal → str, datetime → ISO with a space)."""
        ...

    def key_buckets(self, spec: DocumentSpec, bucket_size: int) -> dict[int, tuple[int, int]] | None:
        """A cheap summary of which documents exist: header keys grouped by ``key // bucket_size`` into
        ``{bucket: (count, sum of keys)}``; ``None`` when the reader cannot summarise (text keys, an API without
        aggregates) and ``keys`` must be read whole."""
        ...

    def keys(self, spec: DocumentSpec, bucket_size: int, buckets: Collection[int] | None = None) -> set[str]:
        """The header keys (as text) of the documents in ``buckets`` (every document when ``None``)."""
        ...

    def close(self) -> None:
        ...
