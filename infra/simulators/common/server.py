"""Command-line plumbing shared by the simulators: the common flags and running an app under uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp


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


def serve(app: ASGIApp, *, host: str, port: int, log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Short graceful shutdown: injected timeouts hold responses for seconds and must not stall a restart.
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, timeout_graceful_shutdown=2)
