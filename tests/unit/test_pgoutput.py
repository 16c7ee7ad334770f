"""The pgoutput decoder on messages built byte by byte as the protocol documents them (protocol version 1).

The same decoder reads the real server's stream in every capture integration test; these pin the edge cases.
"""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest

from connectors.kingdee.assembly import UNCHANGED, Transaction
from connectors.kingdee.pgoutput import (
    Heartbeat,
    ProtocolError,
    TransactionReader,
    Truncated,
    format_lsn,
    parse_lsn,
)

PG_EPOCH_US = 946_684_800_000_000
INT8, NUMERIC, TEXT, BOOL, TIMESTAMP = 20, 1700, 25, 16, 1114


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def relation(oid: int, table: str, columns: list[tuple[str, int]]) -> bytes:
    body = struct.pack("!I", oid) + cstr("public") + cstr(table) + b"f" + struct.pack("!h", len(columns))
    for name, type_oid in columns:
        body += b"\x00" + cstr(name) + struct.pack("!Ii", type_oid, -1)
    return b"R" + body


def tuple_data(values: list[str | None | type[Ellipsis]]) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is Ellipsis:
            out += b"u"
        else:
            raw = value.encode()
            out += b"t" + struct.pack("!i", len(raw)) + raw
    return out


def begin(xid: int) -> bytes:
    return b"B" + struct.pack("!Qqi", 0x90, 0, xid)


def commit(end_lsn: int, unix_ms: int) -> bytes:
    return b"C" + struct.pack("!BQQq", 0, end_lsn - 8, end_lsn, unix_ms * 1000 - PG_EPOCH_US)


MATERIAL = relation(16400, "T_BD_MATERIAL", [("FMATERIALID", INT8), ("FNUMBER", TEXT), ("FQTY", NUMERIC),
                                             ("FFORBID", BOOL), ("FMODIFYDATE", TIMESTAMP)])


def test_lsn_text_round_trip() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("0/1A2B3C")) == "0/1A2B3C"


def test_a_transaction_is_returned_whole_at_commit_with_typed_exact_values() -> None:
    reader = TransactionReader()
    assert reader.feed(begin(77), 100) is None
    assert reader.feed(MATERIAL, 101) is None
    assert reader.feed(b"I" + struct.pack("!I", 16400) + b"N" + tuple_data(
        ["1", "1.01.001 一次性麻醉面罩", "12.3400000000", "t", "2026-12-01 10:00:00.5"]), 110) is None
    old = tuple_data(["1", "旧", "1.0000000000", "f", None])
    new = tuple_data(["1", "新", "2.0000000000", "f", None])
    assert reader.feed(b"U" + struct.pack("!I", 16400) + b"O" + old + b"N" + new, 120) is None
    assert reader.feed(b"D" + struct.pack("!I", 16400) + b"O" + old, 130) is None
    assert reader.in_transaction
    tx = reader.feed(commit(0xB0, 1714521600000), 140)
    assert isinstance(tx, Transaction)
    assert (tx.xid, tx.commit_lsn, tx.commit_time_ms) == (77, 0xB0, 1714521600000)
    assert [(c.table, c.op) for c in tx.changes] == [("T_BD_MATERIAL", "I"), ("T_BD_MATERIAL", "U"),
                                                   ("T_BD_MATERIAL", "D")]
    assert tx.changes[0].after == {"FMATERIALID": 1, "FNUMBER": "1.01.001 一次性麻醉面罩",
                                   "FQTY": Decimal("12.3400000000"), "FFORBID": True,
                                   "FMODIFYDATE": "2026-12-01 10:00:00.5"}
    assert tx.changes[1].before is not None and tx.changes[1].before["FNUMBER"] == "旧"
    assert tx.changes[1].after is not None and tx.changes[1].after["FQTY"] == Decimal("2.0000000000")
    assert tx.changes[2].after is None and tx.changes[2].before == tx.changes[1].before
    assert not reader.in_transaction


def test_an_unchanged_toasted_value_comes_from_the_old_row_or_is_marked() -> None:
    reader = TransactionReader()
    reader.feed(MATERIAL, 1)
    reader.feed(begin(5), 2)
    long_text = "呼吸回路" * 5000
    old = tuple_data(["1", long_text, "1", "f", None])
    reader.feed(b"U" + struct.pack("!I", 16400) + b"O" + old + b"N" + tuple_data(["1", ..., "2", "f", None]), 3)
    reader.feed(b"U" + struct.pack("!I", 16400) + b"N" + tuple_data(["1", ..., "3", "f", None]), 4)
    tx = reader.feed(commit(0x20, 0), 5)
    assert isinstance(tx, Transaction)
    assert tx.changes[0].after is not None and tx.changes[0].after["FNUMBER"] == long_text
    assert tx.changes[1].after is not None and tx.changes[1].after["FNUMBER"] is UNCHANGED


def test_messages_and_truncates_are_reported() -> None:
    reader = TransactionReader()
    content = b'{"id": "abc", "documents": ["material"]}'
    msg = b"M" + struct.pack("!BQ", 0, 0xC0) + cstr("cdchub.snapshot") + struct.pack("!I", len(content)) + content
    assert reader.feed(msg, 5) == Heartbeat(lsn=0xC0, prefix="cdchub.snapshot", content=content.decode())
    reader.feed(MATERIAL, 6)
    reader.feed(relation(16401, "T_BD_MATERIAL_L", [("FPKID", INT8)]), 7)
    reader.feed(begin(1), 8)
    truncate = b"T" + struct.pack("!IB", 2, 0) + struct.pack("!II", 16400, 16401)
    assert reader.feed(truncate, 9) == Truncated(("T_BD_MATERIAL", "T_BD_MATERIAL_L"), 9)


def test_a_changed_relation_is_read_with_its_new_columns() -> None:
    reader = TransactionReader()
    reader.feed(relation(1, "T_X", [("FID", INT8)]), 1)
    reader.feed(relation(1, "T_X", [("FID", INT8), ("FNEW", NUMERIC)]), 2)
    reader.feed(begin(1), 3)
    reader.feed(b"I" + struct.pack("!I", 1) + b"N" + tuple_data(["1", "5.5"]), 4)
    tx = reader.feed(commit(0x10, 0), 5)
    assert isinstance(tx, Transaction) and tx.changes[0].after == {"FID": 1, "FNEW": Decimal("5.5")}


@pytest.mark.parametrize("payload", [
    b"",                                                   # nothing
    b"I" + struct.pack("!I", 16400) + b"N",                # a row outside a transaction
    commit(0x10, 0),                                       # commit without begin
    b"Q",                                                  # an unknown message
    b"R\x00\x00",                                          # a truncated relation
])
def test_malformed_streams_fail_loudly(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        TransactionReader().feed(payload, 1)


def test_rows_of_an_unknown_relation_or_with_the_wrong_width_fail_loudly() -> None:
    reader = TransactionReader()
    reader.feed(begin(1), 1)
    with pytest.raises(ProtocolError, match="before its Relation"):
        reader.feed(b"I" + struct.pack("!I", 99) + b"N" + tuple_data(["1"]), 2)
    reader.feed(MATERIAL, 3)
    with pytest.raises(ProtocolError, match="5"):
        reader.feed(b"I" + struct.pack("!I", 16400) + b"N" + tuple_data(["1"]), 4)


def test_an_old_row_is_decoded_only_in_the_columns_asked_for() -> None:
    reader = TransactionReader({"T_BD_MATERIAL": {"FMATERIALID"}})
    reader.feed(begin(78), 100)
    reader.feed(MATERIAL, 101)
    old = tuple_data(["1", "旧", "1.0000000000", "f", None])
    new = tuple_data(["1", "新", "2.0000000000", "f", None])
    reader.feed(b"U" + struct.pack("!I", 16400) + b"O" + old + b"N" + new, 120)
    reader.feed(b"D" + struct.pack("!I", 16400) + b"O" + old, 130)
    tx = reader.feed(commit(0xB1, 1714521600000), 140)
    assert isinstance(tx, Transaction)
    update, delete = tx.changes
    assert update.before == {"FMATERIALID": 1} and delete.before == {"FMATERIALID": 1}
    assert update.after is not None and update.after["FNUMBER"] == "新" and len(update.after) == 5, "new rows whole"
