"""Per-hop latencies of the acceptance scenarios: from a person's action to where it shows in the next system.

A scenario marks an action (``act``) and then waits for each place the change must reach (``reach``): the time from
the action to the moment the condition held is recorded under the scenario's name and printed in the test run's
summary.  Figures, not assertions: the waits have generous timeouts, and a wait that runs out fails the scenario.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tests.integration.harness import wait_for

T = TypeVar("T")


@dataclass
class Hop:
    scenario: str
    action: str
    reached: str
    seconds: float


@dataclass
class Hops:
    hops: list[Hop] = field(default_factory=list)

    def scenario(self, name: str) -> Scenario:
        return Scenario(self, name)

    def table(self) -> str:
        if not self.hops:
            return "no hop measured"
        width = max(len(f"{h.action} → {h.reached}") for h in self.hops)
        lines, current = [], None
        for h in self.hops:
            if h.scenario != current:
                current = h.scenario
                lines.append(current)
            lines.append(f"  {f'{h.action} → {h.reached}':<{width}}  {h.seconds:7.2f} s")
        return "\n".join(lines)


@dataclass
class Scenario:
    hops: Hops
    name: str
    action: str = ""
    at: float = 0.0

    def act(self, what: str, do: Callable[[], T]) -> T:
        """A person's action; the following hops are timed from its end (when the system accepted it)."""
        result = do()
        self.action, self.at = what, time.monotonic()
        return result

    def reach(self, where: str, condition: Callable[[], T], timeout_s: float = 60.0) -> T:
        found = wait_for(condition, timeout_s, f"{self.name}: {self.action} → {where}", 0.05)
        self.hops.hops.append(Hop(self.name, self.action, where, time.monotonic() - self.at))
        return found
