"""The demo company's fixed ids: its one organisation, its users, salesmen, departments, and the preset bill types.

Ids of things that have no table here (organisation, users, departments, currency) are plain numbers. Every ERP
write of the simulator and of the seed uses them, so they are code, not catalogue data.
"""

from __future__ import annotations

from decimal import Decimal

ORG_ID = 1
"""The one organisation (创建组织 = 使用组织 = 销售组织 = 库存组织)."""
DEMO_USER_ID = 100010
"""The user the helpers write as (FCREATORID, FMODIFIERID, FAPPROVERID)."""
API_USER_ID = 100099
"""The user WebAPI writes are made as (the Kingdee WebAPI simulator's default ``--api-user-id``)."""
#: The users of the demo company (T_SEC_USER): whoever creates, modifies or audits a bill is one of them.
USERS = {DEMO_USER_ID: ("王静", "wangjing"), API_USER_ID: ("集成接口", "cdchub_api")}
SALESMEN = (100101, 100102, 100103, 100104, 100105, 100106)
SALES_DEPT_ID = 100201
LOGISTICS_DEPT_ID = 100202
CURRENCY_CNY = 1
STOCK_STATUS_AVAILABLE = 10000
SETTLE_TYPE_WIRE = 4  # 结算方式 电汇 (demo id)
PURPOSE_SALES = 20010  # 收款用途 销售收款 (demo id)
VAT_RATE = Decimal(13)
# Preset bill types (标准销售订单 XSDD01_SYS, 标准销售出库单 XSCKD01_SYS, 销售收款单 SKDLX01_SYS). The ids are
# recalled from K/3 Cloud installations [L]; nothing depends on them, they are opaque strings.
BILL_TYPE_SALES_ORDER = "eacb50844fc84a10b03d7b841f3a6278"
BILL_TYPE_OUTSTOCK = "ad0779a4685a43a08f08d2e42d7bf3e9"
BILL_TYPE_RECEIPT = "36cf265bd8c3452194ed9c83ec5e73d2"
CUSTOMER_TYPE_LIST_ID = "CUSTOMER_TYPE"  # the 辅助资料 list 客户类别 (FID of its entries)
