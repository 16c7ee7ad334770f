"""下推 (Push): a target bill made from source bills, as K/3 Cloud's conversion rules make it.

One rule is simulated, the one the finance clerk uses for a customer's payment: sales order → 收款单
(``SAL_SaleOrder`` → ``AR_RECEIVEBILL``).  The receipt is saved (status A 创建) with the order's customer and its
whole amount (价税合计) on one row naming the order (销售订单号/内码), and one source entry (源单明细) per order
pushed — which is what makes it a pushed-down receipt rather than one keyed by hand.  The clerk then edits, submits
and audits it as any other bill.  A source bill that is not audited cannot be pushed (MsgCode 12), as in K/3 Cloud.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select

from connectors.kingdee import models as m
from infra.simulators.kingdee import envelope as env
from infra.simulators.kingdee.erp.bill_numbers import next_bill_no
from infra.simulators.kingdee.status_ops import _as_id, targets

RULES = {("SAL_SaleOrder", "AR_RECEIVEBILL"): "AR_SaleOrderToReceiveBill"}


class Pusher:
    def __init__(self, engine: Engine, user_id: int) -> None:
        self.engine = engine
        self.user_id = user_id

    def push(self, source_form: str, data: dict[str, Any]) -> env.Outcome:
        lowered = {str(k).lower(): v for k, v in data.items()}
        target = str(lowered.get("targetformid") or "")
        outcome = env.Outcome()
        if (source_form, target) not in RULES:
            outcome.fail(env.PARAMETER_ERROR, [env.Problem(
                f"未找到从“{source_form}”到“{target or '（空）'}”的单据转换规则", "TargetFormId")])
            return outcome
        numbers, ids = targets(data)
        if not numbers and not ids:
            outcome.fail(env.PARAMETER_ERROR, [env.Problem("参数Numbers和Ids不能同时为空", "Numbers")])
            return outcome
        o, fin = m.T_SAL_ORDER, m.T_SAL_ORDERFIN
        with self.engine.begin() as conn:
            where = o.c.FBILLNO.in_(numbers) if numbers else o.c.FID.in_([_as_id(i) for i in ids])
            orders = conn.execute(select(o.c.FID, o.c.FBILLNO, o.c.FDOCUMENTSTATUS, o.c.FCUSTID, fin.c.FBILLALLAMOUNT)
                                  .join(fin, fin.c.FID == o.c.FID, isouter=True).where(where).order_by(o.c.FID)).all()
            if not orders:
                outcome.fail(env.DATA_NOT_FOUND, [env.Problem("没有可下推的源单", None)])
                return outcome
            for _, number, status, *_ in orders:
                if status != "C":
                    outcome.fail(env.NOT_OPERABLE, [env.Problem(f"销售订单“{number}”未审核，不能下推", None)])
            if outcome.problems or len({row.FCUSTID for row in orders}) > 1:
                if not outcome.problems:
                    outcome.fail(env.NOT_OPERABLE, [env.Problem("不同客户的销售订单不能合并下推一张收款单", None)])
                return outcome
            receipt = m.next_ids(conn, "T_AR_RECEIVEBILL", 1)[0]
            bill_no = next_bill_no(conn, "T_AR_RECEIVEBILL")
            total = sum((Decimal(row.FBILLALLAMOUNT or 0) for row in orders), Decimal(0))
            ts = m.china_now()
            conn.execute(insert(m.T_AR_RECEIVEBILL).values(
                FID=receipt, FBILLNO=bill_no, FDOCUMENTSTATUS="A", FCANCELSTATUS="A", FCONTACTUNITTYPE="BD_Customer",
                FCONTACTUNIT=orders[0].FCUSTID, FRECEIVEAMOUNTFOR=total, FRECEIVEAMOUNT=total,
                FCREATORID=self.user_id, FCREATEDATE=ts, FMODIFIERID=self.user_id, FMODIFYDATE=ts))
            for seq, row in enumerate(orders, start=1):
                amount = Decimal(row.FBILLALLAMOUNT or 0)
                conn.execute(insert(m.T_AR_RECEIVEBILLENTRY).values(
                    FENTRYID=m.next_ids(conn, "T_AR_RECEIVEBILLENTRY", 1)[0], FID=receipt, FSEQ=seq,
                    FREALRECAMOUNTFOR=amount, FREALRECAMOUNT=amount, FSALEORDERNO=row.FBILLNO,
                    FSALEORDERID=row.FID))
                conn.execute(insert(m.T_AR_RECEIVEBILLSRCENTRY).values(
                    FENTRYID=m.next_ids(conn, "T_AR_RECEIVEBILLSRCENTRY", 1)[0], FID=receipt, FSEQ=seq,
                    FSRCBILLTYPEID="SAL_SaleOrder", FSRCBILLNO=row.FBILLNO, FSRCBILLID=row.FID,
                    FORDERBILLNO=row.FBILLNO, FAFTTAXTOTALAMOUNT=amount, FREALRECAMOUNT=amount))
        outcome.successes.append(env.Success(receipt, bill_no, 0))
        return outcome
