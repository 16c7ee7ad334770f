"""The local stack, started by the project itself (no Docker).

Kafka 4.1.1 (KRaft, from Maven Central jars), Apicurio Registry 3.3.3 (kafkasql storage), PostgreSQL 15
(logical decoding through its built-in pgoutput), and the simulators of external systems.

    python -m infra.stack up [component ...] | down | status | reset-kingdee | upgrade-packages

Everything downloaded or written lives under ``.cache/`` (git-ignored); see docs/stack.md.
"""

from infra.stack.component import ComponentStatus
from infra.stack.errors import StackError
from infra.stack.manager import all_components, down, status, up
from infra.stack.postgres import reset_kingdee_db

__all__ = ["ComponentStatus", "StackError", "all_components", "down", "reset_kingdee_db", "status", "up"]
