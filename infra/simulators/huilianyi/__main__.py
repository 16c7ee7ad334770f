"""``python -m infra.simulators.huilianyi``: run the Huilianyi (汇联易) simulator under uvicorn."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from infra.simulators.common.paths import SECRETS_DIR, SIMULATOR_STATE_DIR
from infra.simulators.common.server import add_common_args, serve
from infra.simulators.huilianyi.app import create_app
from infra.simulators.huilianyi.config import DEFAULT_CAMPAIGN_IDS, HuilianyiSimConfig, resolve_credentials

DEFAULT_PORT = 18093


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.simulators.huilianyi", description=__doc__)
    add_common_args(parser, default_port=DEFAULT_PORT, default_state_dir=SIMULATOR_STATE_DIR / "huilianyi")
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=Path(os.environ.get("HUILIANYI_SIM_SECRETS_DIR") or SECRETS_DIR),
        help=f"folder with huilianyi_app_id, huilianyi_app_secret (default {SECRETS_DIR})",
    )
    parser.add_argument("--app-id", help="accepted app id (else HUILIANYI_SIM_APP_ID, else the secrets file)")
    parser.add_argument(
        "--app-secret", help="accepted app secret (else HUILIANYI_SIM_APP_SECRET, else the secrets file)"
    )
    parser.add_argument("--token-ttl", type=_positive, default=7200, help="access token lifetime, s (7200)")
    parser.add_argument("--company-code", default="HQ01", help="the tenant's company code (HQ01)")
    parser.add_argument(
        "--driver-interval",
        type=_seconds,
        default=_seconds(os.environ.get("HUILIANYI_SIM_DRIVER_INTERVAL") or "0"),
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
        state_dir=None if args.in_memory else args.state_dir.resolve(),
        token_ttl_s=args.token_ttl,
        company_code=args.company_code,
        driver_interval_s=args.driver_interval,
        driver_seed=args.driver_seed,
        campaign_ids=tuple(c.strip() for c in args.campaign_ids.split(",") if c.strip()),
        admin_token=args.admin_token,
        fault_seed=args.fault_seed,
    )
    serve(create_app(config), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
