"""Notes and attachments on a CRM record, each written exactly once, whatever replays and crashes happen.

ZOHO has no idempotency key for notes or attachments: a second POST makes a second one.  So every note and file
carries a key of its source (an OA log entry, an OA file), and:

1. the sync ledger says which keys are already on the record (recorded right after each write);
2. only when some key is missing from the ledger is the record's list read once (``GET …/Notes`` or
   ``…/Attachments``) and each missing item looked for in it — a note by the marker written into its text, a file
   by name and size — which closes the window of a crash between the CRM's write and the ledger's record;
3. what is found is recorded (``found``); what is not is written and recorded (``insert``).

Files are streamed: downloaded to a temporary file (never held in memory) and uploaded from it as a multipart
stream; the temporary file is removed right after.  Two different files with the same name and size on one record
would be taken for one when the ledger has no record of either (only after a crash in that window).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from connectors.zoho.client import ZohoClient
from core.ledger import SYNCED, Position, SyncLedger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NoteToWrite:
    key: str
    marker: str  # text inside the note that identifies it
    title: str
    content: str


@dataclass(frozen=True)
class FileToCopy:
    key: str
    name: str
    size: int | None
    download_url: str


@dataclass(frozen=True)
class LocalFile:
    path: Path
    name: str
    content_type: str


#: Streams a file into a folder and says where it is (``WeaverClient.download`` fits).
Fetch = Callable[[FileToCopy, Path], LocalFile]


@dataclass(frozen=True)
class Origin:
    """Where the items come from, for the ledger's lineage."""

    version: int
    number: str | None
    position: Position
    captured_at_ms: int


class RelatedOnce:
    def __init__(self, crm: ZohoClient, notes_ledger: SyncLedger, files_ledger: SyncLedger, temp_root: Path) -> None:
        self.crm = crm
        self.notes_ledger = notes_ledger
        self.files_ledger = files_ledger
        self.temp_root = temp_root
        #: Items written and found in the CRM (for logs and tests).
        self.written = 0
        self.found = 0

    def _missing(self, ledger: SyncLedger, keys: Sequence[str]) -> set[str]:
        entries = ledger.entries(keys)
        return {k for k in keys if k not in entries or entries[k].status != SYNCED}

    def _record(self, ledger: SyncLedger, key: str, target_id: str, action: str, origin: Origin) -> None:
        ledger.record_applied_many([dict(
            source_key=key, source_version=origin.version, source_number=origin.number, target_id=target_id,
            fingerprint=None, action=action, attempts=1, position=origin.position,
            captured_at_ms=origin.captured_at_ms)])
        if action == "found":
            self.found += 1
        else:
            self.written += 1

    def notes(self, module: str, record_id: str, notes: Sequence[NoteToWrite], origin: Origin) -> int:
        """Write the notes the record does not have yet; returns how many were written."""
        missing = self._missing(self.notes_ledger, [n.key for n in notes])
        if not missing:
            return 0
        existing = [(str(n.get("id")), str(n.get("Note_Content") or "")) for n in self.crm.notes(module, record_id)]
        written = 0
        for note in notes:
            if note.key not in missing:
                continue
            found = next((nid for nid, content in existing if note.marker in content), None)
            if found is not None:
                self._record(self.notes_ledger, note.key, found, "found", origin)
                continue
            note_id = self.crm.add_note(module, record_id, note.title, note.content)
            self._record(self.notes_ledger, note.key, note_id, "insert", origin)
            written += 1
        return written

    def files(self, module: str, record_id: str, files: Sequence[FileToCopy], fetch: Fetch, origin: Origin) -> int:
        """Copy the files the record does not have yet; returns how many were uploaded."""
        missing = self._missing(self.files_ledger, [f.key for f in files])
        if not missing:
            return 0
        existing = [(str(a.get("id")), str(a.get("File_Name") or ""), str(a.get("Size") or ""))
                    for a in self.crm.attachments(module, record_id)]
        copied = 0
        self.temp_root.mkdir(parents=True, exist_ok=True)
        for item in files:
            if item.key not in missing:
                continue
            found = next((aid for aid, name, size in existing
                          if name == item.name and (item.size is None or size == str(item.size))), None)
            if found is not None:
                self._record(self.files_ledger, item.key, found, "found", origin)
                continue
            with tempfile.TemporaryDirectory(dir=self.temp_root, prefix="copy-") as folder:
                local = fetch(item, Path(folder))
                attachment_id = self.crm.upload_attachment(module, record_id, local.path, item.name or local.name,
                                                           local.content_type)
            self._record(self.files_ledger, item.key, attachment_id, "insert", origin)
            log.info("copied %s to %s %s (attachment %s)", item.name, module, record_id, attachment_id)
            copied += 1
        return copied
