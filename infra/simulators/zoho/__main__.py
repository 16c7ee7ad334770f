"""``python -m infra.simulators.zoho``: run the ZOHO CRM simulator under uvicorn."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from infra.simulators.common.paths import SECRETS_DIR, SIMULATOR_STATE_DIR
from infra.simulators.common.server import add_common_args, serve
from infra.simulators.zoho.app import create_app
from infra.simulators.zoho.config import ZohoSimConfig, resolve_credentials
from infra.simulators.zoho.timefmt import parse_offset

DEFAULT_PORT = 18090


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _offset(text: str) -> str:
    try:
        parse_offset(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.simulators.zoho", description=__doc__)
    add_common_args(parser, default_port=DEFAULT_PORT, default_state_dir=SIMULATOR_STATE_DIR / "zoho")
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=Path(os.environ.get("ZOHO_SIM_SECRETS_DIR") or SECRETS_DIR),
        help=f"folder with zoho_client_id, zoho_client_secret, zoho_refresh_token (default {SECRETS_DIR})",
    )
    parser.add_argument(
        "--client-id", help="accepted client id (else ZOHO_SIM_CLIENT_ID, else the secrets file)"
    )
    parser.add_argument(
        "--client-secret", help="accepted client secret (else ZOHO_SIM_CLIENT_SECRET, else file)"
    )
    parser.add_argument(
        "--refresh-token", help="accepted refresh token (else ZOHO_SIM_REFRESH_TOKEN, else file)"
    )
    parser.add_argument("--token-ttl", type=_positive, default=3600, help="access token lifetime, s (3600)")
    parser.add_argument("--tokens-per-window", type=_positive, default=10, help="token mints per window (10)")
    parser.add_argument("--token-window", type=_positive, default=600, help="mint-limit window, s (600)")
    parser.add_argument("--max-concurrency", type=_positive, default=5, help="in-flight calls per client (5)")
    parser.add_argument(
        "--daily-credits", type=_positive, default=50_000, help="API credits per 24 h (50000)"
    )
    parser.add_argument("--utc-offset", type=_offset, default="+08:00", help="org time zone offset (+08:00)")
    parser.add_argument("--public-url", help="api_domain handed out with tokens (default: the URL called)")
    parser.add_argument(
        "--integration-user", default="CDC Hub Integration", help="name of the client's CRM user"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    credentials = resolve_credentials(
        args.secrets_dir.resolve(),
        client_id=args.client_id,
        client_secret=args.client_secret,
        refresh_token=args.refresh_token,
    )
    config = ZohoSimConfig(
        credentials=credentials,
        state_dir=None if args.in_memory else args.state_dir.resolve(),
        token_ttl_s=args.token_ttl,
        public_url=args.public_url.rstrip("/") if args.public_url else None,
        utc_offset=args.utc_offset,
        max_concurrency=args.max_concurrency,
        daily_credits=args.daily_credits,
        tokens_per_window=args.tokens_per_window,
        token_window_s=args.token_window,
        integration_user=args.integration_user,
        admin_token=args.admin_token,
        fault_seed=args.fault_seed,
    )
    serve(create_app(config), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
