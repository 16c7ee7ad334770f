"""``cdchub doctor``: check a configured installation end to end and say what is wrong and how to fix it.

One line per check — ✓ passed, ⚠ works but look (a slot nobody reads yet, subjects not registered yet, a clock
2 s off), ✗ broken (with the fix), – not checked because a check it needs failed.  ``main`` returns 0 when nothing
is ✗, 1 otherwise, so it can gate a deployment or run from a timer.

What is checked follows the capture mode (``CDCHUB_CAPTURE__MODE``, docs/capture-modes.md):

- always: the state dir, Kafka (metadata with the installation's client security settings), the topics and their
  partitions, the schema registry and its compatibility level, ZOHO (token, scopes, and the fields the mappings
  write), the Kingdee WebAPI, Weaver OA
  and Huilianyi;
- ``log``: the Kingdee database (connect, ``wal_level``, replication connection, slot, publication, SELECT grants,
  clock);  ``query``: the database URL, that every captured table can be read, clock;  ``webapi``: every form the
  capture reads answers ``ExecuteBillQuery``.

It changes nothing anywhere, with two exceptions that the running installation would make anyway: an access token
is minted when the installation's token store (``<state dir>/tokens``) has no valid one — a cached one is reused,
so ZOHO's 10 refreshes per 10 minutes are not spent — and Weaver registers cdchub's RSA key once if the state dir
has no registration.  Run it as the user the services run as (it shares their state dir).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from pydantic import ValidationError

from cdchub.doctor import kafka_checks, kingdee_checks, target_checks
from cdchub.doctor.base import Context, Finding, Skipped, describe, fail, ok, warn
from connectors.settings import Settings, get_settings

__all__ = ["Context", "Finding", "checks_for", "main", "reachability", "run"]

Check = Callable[[Context], Finding]

#: The longest any one check may take (each call in it has its own, shorter timeout).
CHECK_DEADLINE_S = 30.0


def check_state_dir(ctx: Context) -> Finding:
    """The state dir is where every process of the installation shares its tokens, limits and positions: the doctor
    shares it too, as the same user — else it would leave files the services cannot write."""
    state = ctx.settings.state_dir
    if not state.exists():
        ctx.token_store = "own"
        return warn("state-dir", f"{state} does not exist yet (tokens are minted for this run only)",
                    "it is made by the first process (systemd: StateDirectory=cdchub); set CDCHUB_STATE_DIR to the "
                    "services' state dir if it is elsewhere")
    owner = state.stat().st_uid
    if owner != os.geteuid() or not os.access(state, os.W_OK | os.X_OK):
        ctx.token_store = "none"
        return fail("state-dir", f"{state} belongs to uid {owner}, this doctor runs as uid {os.geteuid()}",
                    "run the doctor as the services' user (sudo -u cdchub cdchub doctor, or systemctl start "
                    "cdchub-doctor) so it shares their token store and leaves no file they cannot write")
    ctx.token_store = "shared"
    return ok("state-dir", f"{state} (shared with the installation's processes: tokens, limits, positions)")


def _needs_token_store(check: Check) -> Check:
    def guarded(ctx: Context) -> Finding:
        if ctx.token_store == "none":
            raise Skipped("not checked: outside the installation's token store a token would be minted for this "
                          "run alone (ZOHO allows 10 per 10 minutes per org); see state-dir above")
        return check(ctx)
    guarded.__name__ = check.__name__
    return guarded


def checks_for(settings: Settings) -> list[tuple[str, Check]]:
    """The checks of this installation, in order, by name."""
    k, kd, t = kafka_checks, kingdee_checks, target_checks
    database: list[tuple[str, Check]]
    if settings.capture.mode == "log":
        database = [("kingdee-db", kd.check_kingdee_db), ("wal_level", kd.check_wal_level),
                    ("replication", kd.check_replication), ("slot", kd.check_slot),
                    ("publication", kd.check_publication), ("grants", kd.check_grants),
                    ("clock", kd.check_clock_pg)]
    elif settings.capture.mode == "query":
        database = [("kingdee-db", kd.check_query_db), ("grants", kd.check_query_grants),
                    ("clock", kd.check_clock_query)]
    else:
        database = []  # webapi: the forms are checked with the WebAPI below
    return [("state-dir", check_state_dir), ("kafka", k.check_kafka), ("topics", k.check_topics),
            ("registry", k.check_registry), *database,
            ("zoho-token", _needs_token_store(t.check_zoho_token)),
            ("zoho-scopes", _needs_token_store(t.check_zoho_scopes)),
            ("zoho-fields", _needs_token_store(t.check_zoho_fields)),
            ("kingdee-webapi", t.check_kingdee_webapi), ("weaver", t.check_weaver),
            ("huilianyi", t.check_huilianyi)]


def _bounded(name: str, check: Check, ctx: Context) -> Finding:
    """Run one check; whatever it raises becomes its ✗ line, and a check stuck past the deadline is abandoned."""
    result: list[Finding] = []

    def target() -> None:
        try:
            result.append(check(ctx))
        except Skipped as exc:
            result.append(Finding(name, "skip", str(exc)))
        except Exception as exc:  # a check's own failure is a finding, never a crash of the doctor
            result.append(fail(name, f"the check failed: {describe(exc)}",
                               "see `cdchub doctor --verbose`; the message names what was refused"))

    worker = threading.Thread(target=target, name=f"doctor-{name}", daemon=True)
    worker.start()
    worker.join(CHECK_DEADLINE_S)
    if not result:
        return fail(name, f"no answer within {CHECK_DEADLINE_S:.0f} s", "something in between holds connections "
                                                                        "open without answering (firewall, proxy)")
    return result[0]


def run(settings: Settings, *, verbose: bool = False, out: TextIO | None = None) -> list[Finding]:
    """Every check of ``settings``, printed one line each as it completes; returns the findings."""
    from connectors.common import shared_state
    from connectors.zoho import budget

    out = out or sys.stdout
    ctx = Context(settings)
    shared_before = shared_state.directory()
    quiet = [logging.getLogger(n) for n in ("connectors", "cdchub", "httpx", "httpcore")]
    levels = [lg.level for lg in quiet]
    if not verbose:
        for lg in quiet:
            lg.setLevel(logging.ERROR)  # the findings say it; clients' info lines would only repeat it
    findings: list[Finding] = []
    try:
        for name, check in checks_for(settings):
            finding = _bounded(name, check, ctx)
            ctx.found[name] = finding
            findings.append(finding)
            print(finding.line(), file=out, flush=True)
            if verbose:
                for detail in finding.details:
                    print(f"    · {detail}", file=out, flush=True)
            if name == "state-dir" and ctx.token_store == "shared":
                shared_state.share(settings.state_dir)
                budget.enable(settings.state_dir, "doctor")  # ZOHO calls count into the installation's meter
    finally:
        ctx.close()
        budget.METER.flush()
        if shared_before is None:
            shared_state.unshare()
        else:
            shared_state.share(shared_before)
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
    count = {s: sum(f.status == s for f in findings) for s in ("ok", "warn", "fail", "skip")}
    print(f"{len(findings)} checks: {count['ok']} passed, {count['warn']} to look at, {count['fail']} failed"
          + (f", {count['skip']} not checked" if count["skip"] else ""), file=out, flush=True)
    return findings


def reachability(settings: Settings) -> list[Finding]:
    """Kafka and the schema registry, checked as the doctor does (bounded): what ``cdchub status`` shows of an
    installation that does not run on the local stack."""
    ctx = Context(settings)
    try:
        return [_bounded(name, check, ctx) for name, check in
                (("kafka", kafka_checks.check_kafka), ("registry", kafka_checks.check_registry))]
    finally:
        ctx.close()


def main(verbose: bool = False) -> int:
    """``cdchub doctor [--verbose]``: 0 when no check failed, 1 otherwise."""
    try:
        settings = get_settings()
    except ValidationError as exc:  # a wrong setting: name its variable
        wrong = "; ".join(f"CDCHUB_{'__'.join(str(p).upper() for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        print(fail("settings", f"the settings do not validate: {wrong}",
                   "fix those variables (docs/deploy.md lists every setting)").line())
        return 1
    findings = run(settings, verbose=verbose)
    return 1 if any(f.status == "fail" for f in findings) else 0
