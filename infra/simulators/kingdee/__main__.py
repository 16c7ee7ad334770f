"""``python -m infra.simulators.kingdee``: run the Kingdee K/3 Cloud WebAPI simulator under uvicorn."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from infra.simulators.common.paths import SECRETS_DIR, SIMULATOR_STATE_DIR
from infra.simulators.common.server import add_common_args, serve

DEFAULT_PORT = 18091


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.simulators.kingdee", description=__doc__)
    add_common_args(parser, default_port=DEFAULT_PORT, default_state_dir=SIMULATOR_STATE_DIR / "kingdee")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("KINGDEE_SIM_DATABASE_URL") or None,
        help="SQLAlchemy URL of the Kingdee database (default: cdchub settings' kingdee_db)",
    )
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=Path(os.environ.get("KINGDEE_SIM_SECRETS_DIR") or SECRETS_DIR),
        help=f"folder with kingdee_acct_id, kingdee_user, kingdee_password, kingdee_app_id, kingdee_app_secret "
        f"(default {SECRETS_DIR})",
    )
    parser.add_argument("--acct-id", help="accepted data centre id (else KINGDEE_SIM_ACCT_ID, else file)")
    parser.add_argument("--user", help="accepted user name (else KINGDEE_SIM_USER, else file)")
    parser.add_argument("--password", help="ValidateUser password (else KINGDEE_SIM_PASSWORD, else file)")
    parser.add_argument("--app-id", help="accepted app id (else KINGDEE_SIM_APP_ID, else file)")
    parser.add_argument("--app-secret", help="accepted app secret (else KINGDEE_SIM_APP_SECRET, else file)")
    parser.add_argument("--session-ttl", type=_positive, default=1200, help="idle session lifetime, s (1200)")
    parser.add_argument("--sign-window", type=_positive, default=900, help="accepted timestamp skew, s (900)")
    parser.add_argument("--api-user-id", type=int, default=100099, help="FCREATORID/FMODIFIERID of API writes (100099)")
    parser.add_argument("--query-limit", type=_positive, default=2000, help="max ExecuteBillQuery Limit (2000)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from infra.simulators.kingdee.app import create_app
    from infra.simulators.kingdee.config import KingdeeSimConfig, resolve_credentials

    database_url = args.database_url
    if not database_url:
        from cdchub.settings import get_settings

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
        state_dir=None if args.in_memory else args.state_dir.resolve(),
        session_ttl_s=args.session_ttl,
        sign_window_s=args.sign_window,
        api_user_id=args.api_user_id,
        max_query_limit=args.query_limit,
        admin_token=args.admin_token,
        fault_seed=args.fault_seed,
    )
    serve(create_app(config), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
