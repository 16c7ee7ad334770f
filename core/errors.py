"""One error taxonomy for the whole hub: every connector, flow and the mapping language raise these.

``TransientError`` — worth retrying (429, 5xx, timeouts, lost sessions, malformed responses from a struggling server).
``PermanentError`` — retrying cannot help (validation, unknown code, missing reference, a permission the credentials
lack: ``MissingScope``); the record goes to the dead-letter topic with the reason.  Unknown exceptions count as
transient (dlt's rule): a bug shows up as retries in the log, not as silently dead-lettered data.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose (connectors, flows, the mapping language)."""


class TransientError(HubError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(HubError):
    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class MissingScope(PermanentError):
    """The target refused a call because the OAuth grant lacks a scope: nothing but a new grant helps, so it is not
    retried (and no new token is minted for it)."""

    def __init__(self, message: str, *, scope: str, url: str) -> None:
        super().__init__(message, code="OAUTH_SCOPE_MISMATCH")
        self.scope = scope
        self.url = url


class RateLimited(TransientError):
    """The target said 429: back off (honouring ``retry_after`` when given)."""


def is_transient(exc: BaseException) -> bool:
    return not isinstance(exc, PermanentError)
