"""The console's HTML, rendered on the server: every value goes through ``esc`` (HTML-escaped), pages are UTF-8.

No script runs in the pages; forms that change something carry the session's CSRF token.
"""

from __future__ import annotations

import html
import time
from typing import Any
from urllib.parse import urlencode

from cdchub.console.views import Health, LetterRow
from cdchub.trace import Trace

NAV = (("/trace", "Trace"), ("/dead-letters", "Dead letters"), ("/flows", "Flow health"))


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(ms: int | float | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) + f".{int(ms) % 1000:03d}"


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(token)}">'


def layout(title: str, body: str, *, csrf: str | None = None, active: str = "") -> str:
    nav = ""
    if csrf is not None:
        links = "".join(f'<a href="{href}"{" class=active" if href == active else ""}>{label}</a>'
                        for href, label in NAV)
        nav = (f'<nav>{links}<form method="post" action="/logout" class="logout">{csrf_field(csrf)}'
               f'<button type="submit">Sign out</button></form></nav>')
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)} · cdchub</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="stylesheet" href="/console.css"></head><body><header><b>cdchub</b> console</header>'
            f'{nav}<main><h1>{esc(title)}</h1>{body}</main></body></html>')


def login_page(message: str = "", next_path: str = "/") -> str:
    note = f'<p class="error" id="login-error">{esc(message)}</p>' if message else ""
    return layout("Sign in", f'{note}<form method="post" action="/login" class="login">'
                             f'<input type="hidden" name="next" value="{esc(next_path)}">'
                             '<label>User <input name="user" id="user" autocomplete="username" required></label>'
                             '<label>Password <input name="password" id="password" type="password" '
                             'autocomplete="current-password" required></label>'
                             '<button type="submit" id="sign-in">Sign in</button></form>')


def _details(detail: dict[str, Any]) -> str:
    shown = [(k, v) for k, v in detail.items() if v not in (None, "")]
    return " ".join(f'<span class="kv" data-key="{esc(k)}"><i>{esc(k)}</i> {esc(v)}</span>' for k, v in shown)


def _documents(found: Trace) -> str:
    if not found.documents:
        return "<p>No target write for it in the ledger.</p>"
    rows = "".join(
        f'<tr class="document"><td>{esc(d.get("flow"))}</td><td>{esc(d.get("source_key"))}</td>'
        f'<td>{esc(d.get("source_number") or "-")}</td><td>{esc(d.get("target_system"))}</td>'
        f'<td class="target-id">{esc(d.get("target_id") or "-")}</td><td>{esc(d.get("status"))}</td>'
        f'<td>{esc(d.get("attempts"))}</td><td>{esc(when(d.get("applied_at_ms")))}</td></tr>'
        for d in found.documents)
    return ('<h2>Documents</h2><table id="documents"><tr><th>flow</th><th>source key</th><th>number</th>'
            f'<th>target</th><th>target id</th><th>status</th><th>attempts</th><th>applied</th></tr>{rows}</table>')


def _timeline(found: Trace) -> str:
    if not found.hops:
        return ""
    items = "".join(
        f'<li class="hop {"dead" if h.what.startswith("dead letter") else ""}" data-what="{esc(h.what)}">'
        f'<time>{esc(when(h.at_ms))}</time> <b class="system">{esc(h.system)}</b> '
        f'<span class="what">{esc(h.what)}</span> {_details(h.detail)}</li>'
        for h in found.hops)
    return f'<h2>Timeline</h2><ol id="timeline">{items}</ol>'


def trace_page(term: str, found: Trace | None, csrf: str) -> str:
    form = ('<form method="get" action="/trace" class="search"><input name="term" id="term" '
            f'value="{esc(term)}" placeholder="material code, bill number, source or target id" autofocus>'
            '<button type="submit" id="search">Search</button></form>')
    if found is None:
        result = ""
    elif not found.documents and not found.hops:
        result = f'<p id="nothing">Nothing found for {esc(term)}.</p>'
    else:
        result = _documents(found) + _timeline(found)
    return layout("Trace a document", form + result, csrf=csrf, active="/trace")


def _letter_row(row: LetterRow, csrf: str) -> str:
    x, body = row.letter, row.letter.body
    if row.mark:
        action = f'<span class="mark">{esc(row.mark)}</span>'
    else:
        action = (f'<form method="post" action="/dead-letters/replay">{csrf_field(csrf)}'
                  f'<input type="hidden" name="topic" value="{esc(x.dlq_topic)}">'
                  f'<input type="hidden" name="offset" value="{esc(x.dlq_offset)}">'
                  f'<button type="submit" class="replay">Replay</button></form>')
    return (f'<tr class="letter" data-flow="{esc(x.flow)}" data-offset="{esc(x.dlq_offset)}">'
            f'<td>{esc(x.dlq_offset)}</td><td>{esc(when(body.get("time_ms")))}</td><td>{esc(x.flow)}</td>'
            f'<td>{esc(body.get("stage"))}</td><td class="key">{esc(x.source.get("key"))}</td>'
            f'<td class="error">{esc(body.get("error_class"))}: {esc(str(body.get("error"))[:300])}</td>'
            f'<td class="action">{action}</td></tr>')


def dead_letters_page(rows: list[LetterRow], flow: str, reason: str, note: str, csrf: str) -> str:
    form = ('<form method="get" action="/dead-letters" class="search">'
            f'<input name="flow" id="flow" value="{esc(flow)}" placeholder="flow">'
            f'<input name="reason" id="reason" value="{esc(reason)}" placeholder="error contains">'
            '<button type="submit">Filter</button></form>')
    notice = f'<p class="notice" id="notice">{esc(note)}</p>' if note else ""
    flows = sorted({r.letter.flow for r in rows if not r.mark})
    per_flow = "".join(
        f'<form method="post" action="/dead-letters/replay" class="inline">{csrf_field(csrf)}'
        f'<input type="hidden" name="flow" value="{esc(f)}"><button type="submit" class="replay-flow">'
        f'Replay all of {esc(f)}</button></form>' for f in flows)
    table = ("<p>No dead letters.</p>" if not rows else
             '<table id="letters"><tr><th>offset</th><th>time</th><th>flow</th><th>stage</th><th>key</th>'
             f'<th>error</th><th></th></tr>{"".join(_letter_row(r, csrf) for r in rows)}</table>')
    return layout("Dead letters", form + notice + per_flow + f"<p>{len(rows)} dead letters</p>" + table,
                  csrf=csrf, active="/dead-letters")


def dead_letters_location(flow: str, reason: str, note: str) -> str:
    query = {k: v for k, v in (("flow", flow), ("reason", reason), ("note", note)) if v}
    return "/dead-letters" + (f"?{urlencode(query)}" if query else "")


def flows_page(health: Health, installation: list[tuple[str, str]], csrf: str) -> str:
    parts = []
    if health.problem:
        parts.append(f'<p class="error">Figures not available: {esc(health.problem)}</p>')
    if health.capture is not None:
        c = health.capture
        parts.append(f'<p id="capture">Capture: {esc(c.captured)} changes (+{esc(c.snapshot)} snapshot), '
                     f'{esc(c.capture_dead)} dead letters.</p>')
    rows = "".join(
        f'<tr class="flow" data-flow="{esc(s.flow)}"><td>{esc(s.flow)}</td><td class="synced">{esc(s.synced)}</td>'
        f'<td class="failed">{esc(s.failed)}</td><td>{esc(s.per_minute)}</td>'
        f'<td>{esc("-" if s.lag is None else s.lag)}</td><td class="dead-letters">{esc(s.dead_letters)}</td>'
        f'<td>{esc(when(s.last_applied_ms))}</td></tr>' for s in health.flows)
    parts.append('<table id="flows"><tr><th>flow</th><th>synced</th><th>failed</th><th>per minute</th><th>lag</th>'
                 f'<th>dead letters</th><th>last event</th></tr>{rows}</table>')
    runtime = "".join(
        f'<tr class="runtime" data-flow="{esc(flow)}"><td>{esc(dataflow)}</td><td>{esc(flow)}</td>'
        f'<td class="process">{esc(proc["pid"]) if proc else "-"}</td>'
        f'<td class="alive">{"alive" if proc and proc["alive"] else ("stale" if proc else "not running")}</td>'
        f'<td>{esc(h["read"]) if h else "-"}</td><td>{esc(h["written"]) if h else "-"}</td>'
        f'<td class="retrying">{esc(h["retrying"]) if h else "-"}'
        f'{" since " + esc(when(h["retrying_since_ms"])) if h and h.get("retrying_since_ms") else ""}</td>'
        f'<td class="last-error">{esc((h or {}).get("last_error") or "")}</td></tr>'
        for dataflow, flow, h, proc in health.runtime)
    parts.append('<h2>Runtime</h2><table id="runtime"><tr><th>dataflow</th><th>flow</th><th>process</th>'
                 '<th>liveness</th><th>read</th><th>written</th><th>retrying</th><th>last error</th></tr>'
                 f'{runtime}</table>')
    parts.append('<h2>Installation</h2><table id="installation">'
                 + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in installation) + "</table>")
    return layout("Flow health", "".join(parts), csrf=csrf, active="/flows")


def refused_page(message: str) -> str:
    return layout("Refused", f'<p class="error">{esc(message)}</p><p><a href="/">Back</a></p>')
