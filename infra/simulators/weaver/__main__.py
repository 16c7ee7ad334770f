"""``python -m infra.simulators.weaver``: run the Weaver e-cology 9 OA simulator under uvicorn."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from infra.simulators.common.server import (
    common_settings,
    non_negative_float,
    positive_int,
    serve_from_args,
    simulator_parser,
)
from infra.simulators.weaver.app import create_app
from infra.simulators.weaver.config import APP_ID_FILE, DriverSettings, WeaverSimConfig, resolve_app_ids

DEFAULT_PORT = 18092


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be within [0, 1]")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = simulator_parser("weaver", description=__doc__, default_port=DEFAULT_PORT, secret_files=[APP_ID_FILE])
    parser.add_argument(
        "--app-id",
        action="append",
        help="accepted app id, repeatable (else WEAVER_SIM_APP_IDS, else the file)",
    )
    parser.add_argument("--token-ttl", type=positive_int, default=1800, help="default token lifetime, s (1800)")
    parser.add_argument(
        "--max-token-ttl", type=positive_int, default=86_400, help="cap on the `time` header (86400)"
    )
    parser.add_argument(
        "--utc-offset-hours", type=int, default=8, help="OA time zone for dates and times (8)"
    )
    parser.add_argument(
        "--driver-interval", type=non_negative_float, default=5.0, help="approval driver period, s; 0 = off (5)"
    )
    parser.add_argument(
        "--approval-delay",
        type=non_negative_float,
        default=60.0,
        help="approver acts this long after arrival, s (60)",
    )
    parser.add_argument(
        "--outcomes", choices=["approve", "random"], default="approve", help="unscripted outcome (approve)"
    )
    parser.add_argument("--reject-rate", type=_rate, default=0.15, help="random mode: reject chance (0.15)")
    parser.add_argument("--forward-rate", type=_rate, default=0.1, help="random mode: forward chance (0.1)")
    parser.add_argument(
        "--driver-seed", type=int, default=None, help="seed of the random outcomes and opinions"
    )
    parser.add_argument(
        "--no-auto-resubmit",
        action="store_true",
        help="driver-created requests stay rejected with their creator",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = WeaverSimConfig(
        app_ids=resolve_app_ids(args.secrets_dir.resolve(), args.app_id),
        token_ttl_s=args.token_ttl,
        max_token_ttl_s=args.max_token_ttl,
        utc_offset_h=args.utc_offset_hours,
        driver=DriverSettings(
            interval_s=args.driver_interval,
            delay_s=args.approval_delay,
            outcomes=args.outcomes,
            reject_rate=args.reject_rate,
            forward_rate=args.forward_rate,
            seed=args.driver_seed,
            auto_resubmit=not args.no_auto_resubmit,
        ),
        **common_settings(args),
    )
    serve_from_args(create_app(config), args)


if __name__ == "__main__":
    main()
