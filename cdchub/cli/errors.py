"""The command line's one error handler: an expected failure is one line — its cause and what to do — and a
non-zero exit; the traceback only with ``-v``.

Expected are failures of the installation, not of the code: a service down (Kafka, the registry, PostgreSQL, a
simulator), credentials a system refuses, a wrong setting, a refused request (``ReplayRefused``, another ``run``),
an interrupt.  They are recognised anywhere in an exception's chain (``raise … from``), so a failure inside a
Bytewax run — which reaches us as a ``BytewaxRuntimeError`` caused by the step's exception — is reported by its root
cause.  Anything else is a bug and is reported as one, traceback included.

Exit codes: 1 a failure, 2 a usage error, a bad setting or a refusal to start, 130 an interrupt.

Classes are matched by name along their MRO, so the handler imports no connector (the CLI starts without loading
them) — a renamed error class must be renamed here too (``tests/unit/test_cli.py`` checks the known ones).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

#: Display names of the systems, by their package under ``connectors/``.
SYSTEMS = {"zoho": "ZOHO", "kingdee": "Kingdee", "weaver": "Weaver OA", "huilianyi": "Huilianyi"}
#: What to check when a system refuses the credentials.
CREDENTIALS = {
    "zoho": "CDCHUB_ZOHO__CLIENT_ID, CDCHUB_ZOHO__CLIENT_SECRET and CDCHUB_ZOHO__REFRESH_TOKEN (or "
            ".cache/secrets/zoho_*)",
    "kingdee": "CDCHUB_KINGDEE_API__ACCT_ID, __USER, __APP_ID and __APP_SECRET",
    "weaver": "CDCHUB_WEAVER__APP_ID and the OA's registered key (CDCHUB_WEAVER__*)",
    "huilianyi": "CDCHUB_HUILIANYI__APP_ID and CDCHUB_HUILIANYI__APP_SECRET",
}
DOCTOR = "run `cdchub doctor`"
STACK_HINT = "is it running? `cdchub status` shows the local stack, `cdchub up` starts it"
_CREDENTIAL_WORDS = re.compile(r"token|refresh|credential|login|password|secret|unauthori[sz]ed|signature|app.?id|"
                               r"invalid_client|invalid_code|auth", re.IGNORECASE)
_MAX_LINE = 400

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Failure:
    """An expected failure: what happened, what to do about it, the exit code."""

    message: str
    hint: str = ""
    exit_code: int = EXIT_FAILURE

    def line(self, command: str = "") -> str:
        text = one_line(self.message)
        if self.hint and self.hint not in text:
            text = f"{text} — {self.hint}"
        return f"cdchub {command}: {text}" if command else f"cdchub: {text}"


def one_line(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_LINE else flat[:_MAX_LINE - 1] + "…"


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _module(exc: BaseException) -> str:
    return type(exc).__module__ or ""


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what caused it (``__cause__``, else ``__context__``), outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def system_of(exc: BaseException) -> str | None:
    """The system (``zoho`` …) whose connector raised ``exc``: the deepest frame under ``connectors/<system>/``,
    else the system the message names."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        match = re.search(r"[/\\]connectors[/\\](\w+)[/\\]", tb.tb_frame.f_code.co_filename)
        if match and match.group(1) in SYSTEMS:
            found = match.group(1)
        tb = tb.tb_next
    if found:
        return found
    text = str(exc).lower()
    return next((s for s, name in SYSTEMS.items() if s in text or name.lower() in text), None)


def _settings_error(exc: BaseException) -> Failure:
    errors: list[dict[str, Any]] = exc.errors()  # type: ignore[attr-defined]
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    loc = [str(p) for p in first.get("loc", ())]
    title = str(getattr(exc, "title", ""))
    where = ("CDCHUB_" + "__".join(loc).upper()) if title == "Settings" and loc else ".".join(loc) or title
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    # the value is not shown: it may be a secret
    return Failure(f"bad setting {where}: {first.get('msg')}{more}",
                   "fix the environment variable (or .env); `cdchub doctor` checks every setting", EXIT_USAGE)


def _refused(exc: BaseException) -> Failure:
    system = system_of(exc)
    name = SYSTEMS.get(system or "", "the target system")
    message = str(exc)
    code = getattr(exc, "code", None)
    if _CREDENTIAL_WORDS.search(message) or _CREDENTIAL_WORDS.search(str(code or "")):
        refresh = re.search(r"token refresh refused: (\S+)", message)
        what = (f"{name} refused the refresh token ({refresh.group(1)})" if refresh
                else f"{name} refused the credentials: {message}")
        check = CREDENTIALS.get(system or "")
        return Failure(what, f"check {check}, or {DOCTOR}" if check else DOCTOR)
    return Failure(f"{name} refused: {message}", f"{DOCTOR} to check the connections")


def _url_of(exc: BaseException) -> str:
    try:
        return str(exc.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when the error has no request
        return ""


def _kafka_exception(exc: BaseException) -> Failure:
    error: Any = exc.args[0] if exc.args else None
    reason = error.str() if hasattr(error, "str") else str(exc)
    try:
        from connectors.settings import get_settings

        where = f" at {get_settings().kafka.bootstrap_servers}"
    except Exception:  # settings that do not even load were reported before this could happen
        where = ""
    return Failure(f"Kafka{where}: {reason}", STACK_HINT)


#: (class name in the exception's MRO, how to explain it), tried in order on each exception of the chain.
RULES: list[tuple[str, Callable[[BaseException], Failure]]] = [
    ("KeyboardInterrupt", lambda e: Failure("interrupted", exit_code=EXIT_INTERRUPTED)),
    ("ValidationError", _settings_error),
    ("AlreadyRunning", lambda e: Failure(str(e), exit_code=EXIT_USAGE)),
    ("ReplayRefused", lambda e: Failure(str(e), exit_code=EXIT_USAGE)),
    # the capture's position and the database's slot disagree: the message says what to do (docs/capture.md)
    ("SlotInvalid", lambda e: Failure(f"SlotInvalid: {e}")),
    ("SlotLost", lambda e: Failure(f"SlotLost: {e}")),
    ("SlotAhead", lambda e: Failure(f"SlotAhead: {e}")),
    ("PublicationError", lambda e: Failure(f"PublicationError: {e}")),
    ("KafkaConnectionError", lambda e: Failure(str(e), STACK_HINT if "—" not in str(e) else "")),
    ("KafkaException", _kafka_exception),
    ("SchemaRegistryError", lambda e: Failure(f"schema registry: {e}", STACK_HINT)),
    ("TokenUnavailable", lambda e: Failure(str(e), f"check {CREDENTIALS.get(system_of(e) or '', 'the credentials')}"
                                                   f", or {DOCTOR}")),
    ("MissingScope", lambda e: Failure(str(e), "the OAuth grant needs a new consent with the scopes cdchub asks "
                                               "for (connectors/zoho/scopes.py)")),
    ("SpecError", lambda e: Failure(str(e), "fix the file named above", EXIT_USAGE)),
    ("MappingError", lambda e: Failure(str(e), "fix the mapping named above", EXIT_USAGE)),
    ("GaveUp", lambda e: Failure(f"gave up: {e}", "`cdchub status` shows what is down")),
    ("PermanentError", _refused),
    ("TransientError", lambda e: Failure(f"{SYSTEMS.get(system_of(e) or '', 'a target system')} is not available "
                                         f"now: {e}", "try again later; `cdchub status` shows what is down")),
    ("OperationalError", lambda e: Failure(f"database: {str(getattr(e, 'orig', None) or e).splitlines()[0]}",
                                           "`cdchub up` starts the local PostgreSQL; check CDCHUB_KINGDEE_DB__* "
                                           "and CDCHUB_LEDGER_URL")),
    ("TransportError", lambda e: Failure(f"cannot reach {_url_of(e) or 'a service'}: {e or type(e).__name__}",
                                         STACK_HINT)),
    ("ConnectionError", lambda e: Failure(f"connection failed: {e}", STACK_HINT)),
    ("TimeoutError", lambda e: Failure(f"timed out: {e}", STACK_HINT)),
]
#: Rules that hold only for classes of these modules (a ``ValidationError`` of pydantic, an ``OperationalError``
#: of SQLAlchemy or the database driver, a ``TransportError`` of httpx).
MODULES = {"ValidationError": ("pydantic",), "OperationalError": ("sqlalchemy", "psycopg"),
           "TransportError": ("httpx",), "KafkaException": ("confluent_kafka", "cimpl")}


def explain(exc: BaseException) -> Failure | None:
    """The expected failure behind ``exc``, or None for a bug."""
    for link in chain(exc):
        names = _names(link)
        for name, describe in RULES:
            if name in names and _module(link).startswith(MODULES.get(name, ("",))):
                return describe(link)
    return None


def report(exc: BaseException, command: str, *, verbose: bool, write: Callable[[str], None]) -> int:
    """Report ``exc`` through ``write`` (one line, or the traceback first) and return the exit code."""
    failure = explain(exc)
    if failure is None:
        # a bug: loud, with everything needed to find it
        write("".join(traceback.format_exception(exc)).rstrip("\n"))
        write(Failure(f"unexpected error: {type(exc).__name__}: {exc} (the traceback is above; a bug — please "
                      "report it)").line(command))
        return EXIT_FAILURE
    if verbose:
        write("".join(traceback.format_exception(exc)).rstrip("\n"))
    write(failure.line(command))
    return failure.exit_code
