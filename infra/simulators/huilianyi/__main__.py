"""``python -m infra.simulators.huilianyi``: run the Huilianyi (汇联易) simulator under uvicorn."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from infra.simulators.common.server import (
    common_settings,
    non_negative_float,
    positive_int,
    serve_from_args,
    simulator_parser,
)
from infra.simulators.huilianyi.app import create_app
from infra.simulators.huilianyi.config import (
    DEFAULT_CAMPAIGN_IDS,
    SECRET_SPECS,
    HuilianyiSimConfig,
    resolve_credentials,
)

DEFAULT_PORT = 18093


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = simulator_parser(
        "huilianyi",
        description=__doc__,
        default_port=DEFAULT_PORT,
        secret_files=[spec.filename for spec in SECRET_SPECS.values()],
    )
    parser.add_argument("--app-id", help="accepted app id (else HUILIANYI_SIM_APP_ID, else the secrets file)")
    parser.add_argument(
        "--app-secret", help="accepted app secret (else HUILIANYI_SIM_APP_SECRET, else the secrets file)"
    )
    parser.add_argument("--token-ttl", type=positive_int, default=7200, help="access token lifetime, s (7200)")
    parser.add_argument("--company-code", default="HQ01", help="the tenant's company code (HQ01)")
    parser.add_argument(
        "--driver-interval",
        type=non_negative_float,
        default=non_negative_float(os.environ.get("HUILIANYI_SIM_DRIVER_INTERVAL") or "0"),
        help="seconds between driver rounds; 0 = off (default 0, or HUILIANYI_SIM_DRIVER_INTERVAL)",
    )
    parser.add_argument("--driver-seed", type=int, default=None, help="seed of the background driver")
    parser.add_argument(
        "--campaign-ids",
        default=",".join(DEFAULT_CAMPAIGN_IDS),
        help="comma-separated CRM campaign ids the driver links reports to",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = HuilianyiSimConfig(
        credentials=resolve_credentials(args.secrets_dir.resolve(), app_id=args.app_id, app_secret=args.app_secret),
        token_ttl_s=args.token_ttl,
        company_code=args.company_code,
        driver_interval_s=args.driver_interval,
        driver_seed=args.driver_seed,
        campaign_ids=tuple(c.strip() for c in args.campaign_ids.split(",") if c.strip()),
        **common_settings(args),
    )
    serve_from_args(create_app(config), args)


if __name__ == "__main__":
    main()
