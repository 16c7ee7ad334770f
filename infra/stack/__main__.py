"""``python -m infra.stack up [component ...] | down | status | reset-kingdee | upgrade-packages``.

``upgrade-packages`` brings every Debian package the project installs to the newest version the machine's package
sources serve (``infra/stack/debian.py``); CI runs it before the tests.

Exit status: 0 ok, 1 a StackError (message on stderr), 3 ``status`` found a component down.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from connectors.settings import Settings
from infra.stack import StackError, debian, down, reset_kingdee_db, status, up
from infra.stack.component import ComponentStatus


def _print(rows: list[ComponentStatus]) -> None:
    for name, running, detail in rows:
        print(f"{name:<10} {'up' if running else 'down':<5} {detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "reset-kingdee", "upgrade-packages"])
    parser.add_argument("components", nargs="*", help="for up: postgres kafka registry sim-zoho simulators")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness poll otherwise
    settings = Settings()
    t0 = time.monotonic()
    try:
        if args.command == "up":
            up(settings, args.components or None)
            print(f"stack up in {time.monotonic() - t0:.1f}s")
            _print(status(settings))
        elif args.command == "down":
            down(settings)
            print(f"stack down in {time.monotonic() - t0:.1f}s")
        elif args.command == "status":
            rows = status(settings)
            _print(rows)
            return 0 if all(r.running for r in rows) else 3
        elif args.command == "upgrade-packages":
            for line in debian.upgrade():
                print(line)
        else:
            reset_kingdee_db(settings)
            print("kingdee database recreated, replication slots dropped")
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
