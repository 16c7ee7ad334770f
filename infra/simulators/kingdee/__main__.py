"""``python -m infra.simulators.kingdee``: run the Kingdee K/3 Cloud WebAPI simulator under uvicorn."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from infra.simulators.common.server import common_settings, positive_int, serve_from_args, simulator_parser
from infra.simulators.kingdee.account_forms import PROFILES
from infra.simulators.kingdee.config import SECRET_SPECS, KingdeeSimConfig, resolve_credentials

DEFAULT_PORT = 18091


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = simulator_parser(
        "kingdee",
        description=__doc__,
        default_port=DEFAULT_PORT,
        secret_files=[spec.filename for spec in SECRET_SPECS.values()],
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("KINGDEE_SIM_DATABASE_URL") or None,
        help="SQLAlchemy URL of the Kingdee database (default: cdchub settings' kingdee_db)",
    )
    parser.add_argument("--acct-id", help="accepted data centre id (else KINGDEE_SIM_ACCT_ID, else file)")
    parser.add_argument("--user", help="accepted user name (else KINGDEE_SIM_USER, else file)")
    parser.add_argument("--password", help="ValidateUser password (else KINGDEE_SIM_PASSWORD, else file)")
    parser.add_argument("--app-id", help="accepted app id (else KINGDEE_SIM_APP_ID, else file)")
    parser.add_argument("--app-secret", help="accepted app secret (else KINGDEE_SIM_APP_SECRET, else file)")
    parser.add_argument("--session-ttl", type=positive_int, default=1200, help="idle session lifetime, s (1200)")
    parser.add_argument("--sign-window", type=positive_int, default=900, help="accepted timestamp skew, s (900)")
    parser.add_argument("--api-user-id", type=int, default=100099, help="FCREATORID/FMODIFIERID of API writes (100099)")
    parser.add_argument("--query-limit", type=positive_int, default=2000, help="max ExecuteBillQuery Limit (2000)")
    parser.add_argument("--forms", choices=sorted(PROFILES), default="strict",
                        help="the account's form set-up: strict (required fields, coding rules replace bill "
                             "numbers; default) or lenient")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from infra.simulators.kingdee.app import create_app

    database_url = args.database_url
    if not database_url:
        from connectors.settings import get_settings

        database_url = get_settings().kingdee_db.sqlalchemy_url()
    credentials = resolve_credentials(
        args.secrets_dir.resolve(),
        acct_id=args.acct_id,
        user=args.user,
        password=args.password,
        app_id=args.app_id,
        app_secret=args.app_secret,
    )
    config = KingdeeSimConfig(
        credentials=credentials,
        database_url=database_url,
        session_ttl_s=args.session_ttl,
        sign_window_s=args.sign_window,
        api_user_id=args.api_user_id,
        max_query_limit=args.query_limit,
        forms=PROFILES[args.forms],
        **common_settings(args),
    )
    serve_from_args(create_app(config), args)


if __name__ == "__main__":
    main()
