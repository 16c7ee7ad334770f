"""Settings of the Kingdee connector: its database (``CDCHUB_KINGDEE_DB__*``), its WebAPI
(``CDCHUB_KINGDEE_API__*``) and how changes are captured (``CDCHUB_CAPTURE__*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from core.settings import read_secret


def _conninfo_value(value: str) -> str:
    """A libpq connection-string value, quoted when it has to be (spaces, quotes, backslashes, empty)."""
    if value and not any(c in value for c in " '\\\t\n"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class KingdeeDbSettings(BaseModel):
    """The Kingdee database (PostgreSQL with logical decoding).  Every connection — the capture's replication
    connection, its snapshots, SQLAlchemy engines — is made from :meth:`dsn` or :meth:`sqlalchemy_url`, so the TLS
    settings reach all of them."""

    host: str = "127.0.0.1"
    port: int = 15432
    database: str = "kingdee"
    user: str = "cdchub"
    password: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("pg_password")))
    #: libpq's ``sslmode`` (``require``, ``verify-full`` … ; unset: libpq's default, ``prefer``) and the CA file
    #: ``verify-ca``/``verify-full`` check the server against.
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    sslrootcert: str = ""
    slot: str = "cdchub_kingdee"
    #: The publication the capture's slot reads (pgoutput).  With ``publication_autocreate`` the capture creates it
    #: (or adds missing tables) when its role owns the tables; otherwise it stops and prints the DBA's statements.
    publication: str = "cdchub_kingdee"
    publication_autocreate: bool = True

    def _ssl(self) -> dict[str, str]:
        return {k: v for k, v in (("sslmode", self.sslmode or ""), ("sslrootcert", self.sslrootcert)) if v}

    def sqlalchemy_url(self) -> str:
        from sqlalchemy.engine import URL  # only where an engine is made

        url = URL.create("postgresql+psycopg2", username=self.user, password=self.password.get_secret_value(),
                         host=self.host, port=self.port, database=self.database, query=self._ssl())
        return url.render_as_string(hide_password=False)

    def dsn(self) -> str:
        """A libpq connection string (psycopg2, replication connections included)."""
        parts = {"host": self.host, "port": str(self.port), "dbname": self.database, "user": self.user,
                 "password": self.password.get_secret_value(), **self._ssl()}
        return " ".join(f"{k}={_conninfo_value(v)}" for k, v in parts.items())


class KingdeeApiSettings(BaseModel):
    """Kingdee K/3 Cloud WebAPI (the simulator locally): where edits from the CRM are saved."""

    base_url: str = "http://127.0.0.1:18091/K3Cloud"
    acct_id: str = Field(default_factory=lambda: read_secret("kingdee_acct_id"))
    user: str = Field(default_factory=lambda: read_secret("kingdee_user"))
    app_id: str = Field(default_factory=lambda: read_secret("kingdee_app_id"))
    app_secret: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("kingdee_app_secret")))
    timeout_s: float = 30.0


class CaptureSettings(BaseModel):
    """How Kingdee changes are captured (``docs/capture-modes.md``): ``log`` reads PostgreSQL's write-ahead log
    (sub-second, every version, before-images); ``query`` polls any database SQLAlchemy reaches (SQL Server, Oracle
    …) by ``FMODIFYDATE``; ``webapi`` polls Kingdee's WebAPI (Kingdee Cloud, no database access)."""

    mode: Literal["log", "query", "webapi"] = "log"
    #: Seconds between polls (``query``: 1, ``webapi``: 5 when unset).
    interval_s: float | None = Field(default=None, gt=0)
    #: How far behind the newest modified time each poll looks again (commit lag, application servers' clocks).
    margin_s: float = Field(default=10.0, ge=0)
    #: The modified time's resolution: a document read at the newest time is read again until the source's clock
    #: passed it by this much (two saves within one tick show the same time).
    resolution_s: float = Field(default=1.0, ge=0)
    #: Seconds between key-set comparisons (how soon a deletion is seen).
    keyset_interval_s: float = Field(default=30.0, gt=0)
    #: Seconds between full comparisons (changes that did not move the modified time); 0: never.
    full_compare_interval_s: float = Field(default=3600.0, ge=0)
    #: Keys per bucket of the key-set summary.
    bucket_size: int = Field(default=1024, ge=1)
    #: ``query`` mode: the Kingdee database as a SQLAlchemy URL (``mssql+pyodbc://…``, ``oracle+oracledb://…``);
    #: unset: the ``kingdee_db`` settings (PostgreSQL).
    query_url: SecretStr | None = None
    #: ``query`` mode: the schema of Kingdee's tables (SQL Server: ``dbo``), unset: the connection's default.
    query_schema: str | None = None

    def poll_interval_s(self) -> float:
        return self.interval_s or (5.0 if self.mode == "webapi" else 1.0)
