"""Command-line plumbing shared by the simulators: the common flags, flag value checks, running under uvicorn.

Each ``<name>/__main__.py`` builds its parser with :func:`simulator_parser` (common flags + ``--secrets-dir``),
adds its own flags, passes :func:`common_settings` into its config and starts with :func:`serve_from_args`.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from infra.simulators.common.paths import SECRETS_DIR, SIMULATOR_STATE_DIR


def add_common_args(parser: argparse.ArgumentParser, *, default_port: int, default_state_dir: Path) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port, help=f"port (default {default_port})")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir,
        help=f"folder of the SQLite state file, kept across restarts (default {default_state_dir})",
    )
    parser.add_argument(
        "--in-memory", action="store_true", help="keep state in memory only (lost when the process stops)"
    )
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("SIM_ADMIN_TOKEN") or None,
        help="if set (or SIM_ADMIN_TOKEN), /__sim/ calls must send it as X-Sim-Admin-Token",
    )
    parser.add_argument("--fault-seed", type=int, default=None, help="seed for rate-based fault draws")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])


def simulator_parser(
    name: str, *, description: str | None, default_port: int, secret_files: Sequence[str]
) -> argparse.ArgumentParser:
    """The parser of ``python -m infra.simulators.<name>``: the common flags and ``--secrets-dir``.

    ``--secrets-dir`` defaults to ``<NAME>_SIM_SECRETS_DIR``, else the repo's secrets folder; ``secret_files``
    only names, in the help, the files the simulator reads there.
    """
    parser = argparse.ArgumentParser(prog=f"python -m infra.simulators.{name}", description=description)
    add_common_args(parser, default_port=default_port, default_state_dir=SIMULATOR_STATE_DIR / name)
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=Path(os.environ.get(f"{name.upper()}_SIM_SECRETS_DIR") or SECRETS_DIR),
        help=f"folder with {', '.join(secret_files)} (default {SECRETS_DIR})",
    )
    return parser


def common_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields every simulator takes from the common flags: ``state_dir``, ``admin_token``, ``fault_seed``."""
    return {
        "state_dir": None if args.in_memory else args.state_dir.resolve(),
        "admin_token": args.admin_token,
        "fault_seed": args.fault_seed,
    }


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def serve(app: ASGIApp, *, host: str, port: int, log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Short graceful shutdown: injected timeouts hold responses for seconds and must not stall a restart.
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, timeout_graceful_shutdown=2)


def serve_from_args(app: ASGIApp, args: argparse.Namespace) -> None:
    """:func:`serve` with the common flags ``--host``, ``--port``, ``--log-level``."""
    serve(app, host=args.host, port=args.port, log_level=args.log_level)
