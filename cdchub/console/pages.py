"""The console's HTML: Jinja2 templates (``templates/*.html``, package data) rendered on the server with
autoescaping on for every template, so a value is text whatever it contains (a document named ``<script>`` shows
as those characters).  Pages are UTF-8; no script runs in them; forms that change something carry the session's
CSRF token; the flow-health page refreshes itself (a ``<meta http-equiv="refresh">``, which the
Content-Security-Policy allows and which needs no script).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined

from cdchub.console.pictures import trace_picture
from cdchub.console.views import Health, LetterRow, ReplayPreview
from cdchub.trace import Trace

NAV = (("/trace", "Trace"), ("/dead-letters", "Dead letters"), ("/flows", "Flow health"))
#: How often the flow-health page reloads itself (s).
HEALTH_REFRESH_S = 15


def when(ms: int | float | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) + f".{int(ms) % 1000:03d}"


def clock(ms: int | float | None) -> str:
    return "-" if not ms else time.strftime("%H:%M:%S", time.localtime(ms / 1000))


def shown(value: Any) -> str:
    """A value of a replay diff, short."""
    if value in (None, ""):
        return "(empty)"
    if isinstance(value, dict) and "id" in value:
        return f"→{value['id']}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


ENV = Environment(loader=PackageLoader("cdchub.console", "templates"), autoescape=True, undefined=StrictUndefined,
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(when=when, clock=clock, shown=shown)
ENV.globals.update(nav=NAV)


def render(template: str, **context: Any) -> str:
    context.setdefault("csrf", None)
    context.setdefault("active", "")
    context.setdefault("refresh_s", None)
    return ENV.get_template(template).render(**context)


def login_page(message: str = "", next_path: str = "/") -> str:
    return render("login.html", title="Sign in", message=message, next_path=next_path)


def trace_page(term: str, found: Trace | None, csrf: str, topic_prefix: str = "") -> str:
    picture = trace_picture(found, topic_prefix) if found is not None else None
    return render("trace.html", title="Trace a document", term=term, found=found, picture=picture, csrf=csrf,
                  active="/trace")


def dead_letters_page(rows: list[LetterRow], flow: str, reason: str, note: str, csrf: str) -> str:
    flows = sorted({r.letter.flow for r in rows if not r.mark})
    return render("dead_letters.html", title="Dead letters", rows=rows, flow=flow, reason=reason, note=note,
                  flows=flows, csrf=csrf, active="/dead-letters")


def dead_letters_location(flow: str, reason: str, note: str) -> str:
    query = {k: v for k, v in (("flow", flow), ("reason", reason), ("note", note)) if v}
    return "/dead-letters" + (f"?{urlencode(query)}" if query else "")


def preview_location(flow: str) -> str:
    return "/dead-letters/preview?" + urlencode({"flow": flow})


def replay_preview_page(preview: ReplayPreview, csrf: str) -> str:
    return render("replay_preview.html", title=f"Replay all of {preview.flow}?", preview=preview,
                  offsets=",".join(str(o) for o in preview.offsets), csrf=csrf, active="/dead-letters")


def flows_page(health: Health, installation: list[tuple[str, str]], csrf: str) -> str:
    return render("flows.html", title="Flow health", health=health, installation=installation, csrf=csrf,
                  active="/flows", refresh_s=HEALTH_REFRESH_S)


def refused_page(message: str) -> str:
    return render("refused.html", title="Refused", message=message)
