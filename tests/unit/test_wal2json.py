from decimal import Decimal

import pytest

from connectors.kingdee.assembly import Transaction
from connectors.kingdee.wal2json import (
    Heartbeat,
    ProtocolError,
    TransactionReader,
    Truncated,
    commit_time_ms,
    format_lsn,
    parse_lsn,
)


def test_lsn_text_round_trip() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("0/1A2B3C")) == "0/1A2B3C"


def test_commit_time_accepts_postgres_offsets() -> None:
    assert commit_time_ms("2024-05-01 00:00:00.5+00") == 1714521600500
    assert commit_time_ms("2024-05-01 08:00:00+08") == 1714521600000


def test_a_transaction_is_returned_whole_at_commit_with_exact_numbers() -> None:
    reader = TransactionReader()
    assert reader.feed('{"action":"B","xid":77}', 100) is None
    assert reader.feed('{"action":"I","schema":"public","table":"T_BD_MATERIAL","columns":['
                       '{"name":"FMATERIALID","value":1},{"name":"FQTY","value":12.3400000000}]}', 110) is None
    assert reader.feed('{"action":"U","table":"T_BD_MATERIAL","columns":[{"name":"FMATERIALID","value":1}],'
                       '"identity":[{"name":"FMATERIALID","value":1},{"name":"FNUMBER","value":"旧"}]}', 120) is None
    assert reader.feed('{"action":"D","table":"T_BD_MATERIAL_L","identity":[{"name":"FPKID","value":9}]}',
                       130) is None
    assert reader.in_transaction
    tx = reader.feed('{"action":"C","xid":77,"timestamp":"2024-05-01 00:00:00+00","lsn":"0/A0","nextlsn":"0/B0"}',
                     140)
    assert isinstance(tx, Transaction)
    assert (tx.xid, tx.commit_lsn, tx.commit_time_ms) == (77, 0xB0, 1714521600000)
    assert [c.op for c in tx.changes] == ["I", "U", "D"]
    assert tx.changes[0].after == {"FMATERIALID": 1, "FQTY": Decimal("12.3400000000")}
    assert tx.changes[1].before == {"FMATERIALID": 1, "FNUMBER": "旧"}
    assert tx.changes[2].after is None and tx.changes[2].before == {"FPKID": 9}
    assert not reader.in_transaction


def test_heartbeats_and_truncates_are_reported() -> None:
    reader = TransactionReader()
    hb = reader.feed('{"action":"M","transactional":false,"prefix":"cdchub.heartbeat","content":"x","lsn":"0/C0"}',
                     5)
    assert hb == Heartbeat(lsn=0xC0, prefix="cdchub.heartbeat", content="x")
    reader.feed('{"action":"B","xid":1}', 6)
    assert reader.feed('{"action":"T","table":"T_BD_MATERIAL"}', 7) == Truncated("T_BD_MATERIAL", 7)


@pytest.mark.parametrize("payload", ["not json", '{"action":"I","table":"X","columns":[]}', '{"action":"C"}',
                                     '{"action":"Q"}'])
def test_malformed_streams_fail_loudly(payload: str) -> None:
    with pytest.raises(ProtocolError):
        TransactionReader().feed(payload, 1)
