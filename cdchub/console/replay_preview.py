"""What replaying a flow's dead letters would write, before anything is written: the console's preview of "Replay
all of <flow>".

Two parts:

- the dead-letter replay's own dry run (``cdchub.dead_letter_admin.replay(dry_run=True)``): which letters would be
  produced again, which are skipped (replayed before, not replayable) or superseded (their message is gone);
- for the flows ``cdchub replay`` can compare (``cdchub.replay.REPLAYABLE``), the replay's dry run restricted to
  exactly the letters' source messages (:class:`LetterPositions`): the real flow is run over its topics with a
  replay session, only commands built from those messages are compared with the target, and each record's
  differences — what the replayed letters would write — come back as the replay's report.  It runs in a child
  process (``python -m cdchub.console.replay_preview <flow> <positions>``), so the console keeps no Bytewax run nor
  replay session of its own, and a slow target cannot hold the console past :data:`PREVIEW_TIMEOUT_S`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from connectors.common.replay_mode import ReplaySession
from connectors.settings import get_settings
from core.ledger import Position
from core.settings import PROJECT_ROOT

#: The dry run of a flow in the preview's child process: at most this long.
PREVIEW_TIMEOUT_S = 180.0
#: Records whose differences the preview page lists (the counts cover all).
SHOWN_RECORDS = 10


@dataclass
class LetterPositions(ReplaySession):
    """A replay session that compares only the commands made from these source messages (topic, partition,
    offset): the dead letters being replayed."""

    positions: set[tuple[str, int, int]] = field(default_factory=set)

    def in_window(self, position: Position) -> bool:
        if position.topic is None or position.partition is None or position.offset is None:
            return False  # built from state, not from one of the letters' messages
        return (position.topic, position.partition, position.offset) in self.positions


def dry_run(flow: str, positions: list[tuple[str, int, int]], keys: set[str]) -> dict[str, Any]:
    """The replay's dry-run report (``cdchub.replay.report`` as JSON) of ``flow`` over these messages, in a child
    process; ``{"refused": why}`` when it cannot be had."""
    from cdchub.replay import REPLAYABLE

    if flow not in REPLAYABLE:
        return {"refused": f"the {flow} flow's sinks cannot read their target back, so no difference can be shown "
                           f"(comparable: {', '.join(REPLAYABLE)}); the letters are produced again as they are"}
    if not positions:
        return {"refused": "no letter with a source message to replay"}
    try:
        done = subprocess.run([sys.executable, "-m", __name__, flow, json.dumps(sorted(positions))],
                              cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=PREVIEW_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"refused": f"the dry run took more than {PREVIEW_TIMEOUT_S:.0f} s; see `cdchub replay {flow} "
                           "--dry-run`"}
    if done.returncode != 0:
        return {"refused": f"the dry run failed: {done.stderr.strip()[-300:]}"}
    report: dict[str, Any] = json.loads(done.stdout)
    report["dead_letters"] = [d for d in report.get("dead_letters") or [] if str(d.get("key")) in keys]
    report["shown"] = report.get("drift", [])[:SHOWN_RECORDS]
    return report


def main(argv: list[str]) -> int:
    from cdchub.replay import replay, report
    from connectors.common import shared_state
    from connectors.zoho import budget

    flow, positions = argv[0], {(str(t), int(p), int(o)) for t, p, o in json.loads(argv[1])}
    settings = get_settings()
    shared_state.share(settings.state_dir)  # the org's tokens and credits, like every process
    budget.enable(settings.state_dir, "console-preview")
    session = replay(settings, flow, LetterPositions(dry_run=True, positions=positions), progress=None)
    print(report(session, flow, as_json=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
