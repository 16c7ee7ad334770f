"""What the command groups share: help panels, the flow names as choices, settings read after ``up``, the org's
limits shared by every process that calls a target system, and the command line's ``-v``."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.settings import Settings, get_settings
from flows.dataflows import DATAFLOWS, FLOWS

if TYPE_CHECKING:
    from infra.stack.component import ComponentStatus

log = logging.getLogger("cdchub")

OPERATE = "Operate"
FLOW_NAMES = ", ".join(FLOWS)
STACK = "Local stack"

if TYPE_CHECKING:
    FlowName = str
    DataflowName = str
else:
    #: The flows of ``flows/dataflows.py`` as choices: a wrong name is a usage error listing the valid ones.
    FlowName = enum.StrEnum("FlowName", [(f, f) for f in FLOWS])
    DataflowName = enum.StrEnum("DataflowName", [(d, d) for d in DATAFLOWS])


@dataclass
class Invocation:
    """The command line as a whole: ``-v`` (anywhere on it) and the command it runs."""

    verbose: bool = False
    command: str = ""


INVOCATION = Invocation()


def fresh_settings() -> Settings:
    """Settings re-read after ``up`` may have written the local secrets."""
    get_settings.cache_clear()
    return get_settings()


def start_local_stack(components: list[str] | None = None) -> tuple[list[ComponentStatus], Settings]:
    """Start the local stack; returns its rows and settings read after it wrote every local secret.

    Settings read secret files when they are built, so the stack's own secrets are generated before any settings
    exist, and settings are read again after the simulators wrote their credentials while starting."""
    from infra.stack.local_secrets import ensure_secrets
    from infra.stack.manager import up

    ensure_secrets()
    rows = up(fresh_settings(), components)
    return rows, fresh_settings()


def share_org_limits(settings: Settings, process: str) -> None:
    """Every process that calls a target system counts its ZOHO credits and shares access tokens with the others
    through the state dir: limits belong to the org, not to the process."""
    from connectors.common import shared_state
    from connectors.zoho import budget

    shared_state.share(settings.state_dir)
    budget.enable(settings.state_dir, process)


def on_this_host(addresses: str) -> bool:
    """Whether every ``host[:port]`` of ``addresses`` (comma-separated) is on the loopback interface: the local
    stack's Kafka or database, not a real installation's."""
    hosts = [a.strip().rsplit(":", 1)[0].strip("[]") if a.count(":") == 1 or "]" in a else a.strip()
             for a in addresses.split(",") if a.strip()]
    return all(h in ("127.0.0.1", "localhost", "::1") for h in hosts)
