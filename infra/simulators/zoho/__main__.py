"""``python -m infra.simulators.zoho``: run the ZOHO CRM simulator under uvicorn."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from infra.simulators.common.server import common_settings, positive_int, serve_from_args, simulator_parser
from infra.simulators.zoho.app import create_app
from infra.simulators.zoho.config import SECRET_SPECS, ZohoSimConfig, resolve_credentials
from infra.simulators.zoho.scopes import FULL_ACCESS, parse_scopes
from infra.simulators.zoho.timefmt import parse_offset

DEFAULT_PORT = 18090


def _offset(text: str) -> str:
    try:
        parse_offset(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _scopes(text: str) -> tuple[str, ...]:
    try:
        return parse_scopes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = simulator_parser(
        "zoho",
        description=__doc__,
        default_port=DEFAULT_PORT,
        secret_files=[spec.filename for spec in SECRET_SPECS.values()],
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
    parser.add_argument("--token-ttl", type=positive_int, default=3600, help="access token lifetime, s (3600)")
    parser.add_argument("--tokens-per-window", type=positive_int, default=10, help="token mints per window (10)")
    parser.add_argument("--token-window", type=positive_int, default=600, help="mint-limit window, s (600)")
    parser.add_argument("--max-concurrency", type=positive_int, default=5, help="in-flight calls per client (5)")
    parser.add_argument(
        "--daily-credits", type=positive_int, default=50_000, help="API credits per 24 h (50000)"
    )
    parser.add_argument("--utc-offset", type=_offset, default="+08:00", help="org time zone offset (+08:00)")
    parser.add_argument("--public-url", help="api_domain handed out with tokens (default: the URL called)")
    parser.add_argument(
        "--integration-user", default="CDC Hub Integration", help="name of the client's CRM user"
    )
    parser.add_argument(
        "--scopes", type=_scopes, default=FULL_ACCESS,
        help="scopes of the client's grant, comma- or space-separated (default: all, e.g. ZohoCRM.modules.ALL)",
    )  # fmt: skip
    parser.add_argument(
        "--search-lag", type=_seconds, default=0.0, help="seconds /search trails writes (0: at once)"
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
        token_ttl_s=args.token_ttl,
        public_url=args.public_url.rstrip("/") if args.public_url else None,
        utc_offset=args.utc_offset,
        max_concurrency=args.max_concurrency,
        daily_credits=args.daily_credits,
        tokens_per_window=args.tokens_per_window,
        token_window_s=args.token_window,
        integration_user=args.integration_user,
        scopes=args.scopes,
        search_lag_s=args.search_lag,
        **common_settings(args),
    )
    serve_from_args(create_app(config), args)


if __name__ == "__main__":
    main()
