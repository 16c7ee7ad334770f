"""Prometheus metrics, computed at scrape time from what cdchub keeps durably: the capture's stats, the sync
ledger and the dead-letter topics.  One endpoint for every process (``cdchub metrics --port 9464``), so a flow
that restarts or runs in several processes needs no port of its own and no counter is lost on a crash.

Metrics: ``cdchub_capture_events_total`` / ``_transactions_total`` / ``_dead_letters_total``,
``cdchub_capture_lag_seconds`` (now − commit time of the last captured transaction; grows while Kingdee writes
and the capture stalls),
``cdchub_sink_records{flow,target,status,action}``, ``cdchub_sink_retries_total{flow}`` (attempts beyond the first),
``cdchub_end_to_end_latency_seconds{flow}`` (histogram, Kingdee/CRM change → applied in the target, last hour),
``cdchub_dead_letters{topic}``; from the runtime's reports (``docs/runtime.md``) ``cdchub_process_up{role,pid}``,
``cdchub_flow_read_total`` / ``_written_total`` / ``cdchub_flow_retrying`` / ``_retrying_seconds`` per flow, and
``cdchub_token_refusals_total{credential}``; from ``cdchub status``'s view of every flow of the runtime
``cdchub_flow_up{flow,dataflow}`` (its process alive), ``cdchub_flow_lag{flow}`` and
``cdchub_token_last_refusal_timestamp_seconds{credential}`` (a scrape also keeps the minute's lag for the console's
sparklines).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors.settings import Settings
from core.ledger import sync_ledger

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
LATENCY_WINDOW_MS = 3600_000


class CdchubCollector:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine

    def _capture(self) -> Iterator[Any]:
        try:
            stats = json.loads((self.settings.state_dir / "capture-stats.json").read_text())
        except (OSError, ValueError):
            return
        for name, key, doc in (("events", "events", "document changes written to Kafka"),
                               ("transactions", "transactions", "committed transactions read from the slot"),
                               ("dead_letters", "dead_letters", "documents the capture could not encode"),
                               ("gaps_accepted", "gaps_accepted",
                                "slot gaps an operator accepted (changes skipped; see capture-gaps.json)")):
            counter = CounterMetricFamily(f"cdchub_capture_{name}", doc)
            counter.add_metric([], float(stats.get(key, 0)))
            yield counter
        lag = GaugeMetricFamily("cdchub_capture_lag_seconds", "now minus the commit time of the last transaction")
        if stats.get("last_commit_ms"):
            lag.add_metric([], max(0.0, time.time() - stats["last_commit_ms"] / 1000))
        yield lag

    def _ledger(self) -> Iterator[Any]:
        t = sync_ledger.c
        records = GaugeMetricFamily("cdchub_sink_records", "ledger rows by outcome",
                                    labels=["flow", "target", "status", "action"])
        retries = CounterMetricFamily("cdchub_sink_retries", "attempts beyond the first", labels=["flow"])
        with self.engine.connect() as conn:
            for flow, target, status, action, n in conn.execute(
                    select(t.flow, t.target_system, t.status, t.action, func.count())
                    .group_by(t.flow, t.target_system, t.status, t.action)):
                records.add_metric([flow, target, status, action or ""], n)
            for flow, extra in conn.execute(select(t.flow, func.sum(t.attempts - 1)).where(t.attempts > 1)
                                            .group_by(t.flow)):
                retries.add_metric([flow], float(extra or 0))
            since = int(time.time() * 1000) - LATENCY_WINDOW_MS
            latencies: dict[str, list[float]] = {}
            for flow, captured, applied in conn.execute(
                    select(t.flow, t.captured_at_ms, t.applied_at_ms).where(
                        t.applied_at_ms >= since, t.captured_at_ms.is_not(None), t.action != "unchanged")):
                latencies.setdefault(flow, []).append(max(0.0, (applied - captured) / 1000))
        yield records
        yield retries
        histogram = HistogramMetricFamily("cdchub_end_to_end_latency_seconds",
                                          "source change to applied in the target, last hour", labels=["flow"])
        for flow, values in latencies.items():
            buckets = [(str(b), float(sum(1 for v in values if v <= b))) for b in LATENCY_BUCKETS]
            buckets.append(("+Inf", float(len(values))))
            histogram.add_metric([flow], buckets, sum(values))
        yield histogram

    def _dead_letters(self) -> Iterator[Any]:
        from cdchub.dead_letter_admin import dlq_topics, topic_size

        gauge = GaugeMetricFamily("cdchub_dead_letters", "messages on each dead-letter topic", labels=["topic"])
        for topic in dlq_topics(self.settings):
            gauge.add_metric([topic], float(topic_size(self.settings, topic)))
        yield gauge

    def _zoho_budget(self) -> Iterator[Any]:
        from connectors.zoho.budget import usage

        spent = usage(self.settings.state_dir)
        yield GaugeMetricFamily("cdchub_zoho_credits_used_last_day", "ZOHO API credits spent over the last 24 hours",
                                value=float(spent.credits_24h))
        yield GaugeMetricFamily("cdchub_zoho_credits_budget", "ZOHO API credits per 24 hours (the org's budget)",
                                value=float(self.settings.zoho.daily_credits))
        yield GaugeMetricFamily("cdchub_zoho_throttled_last_day", "ZOHO 429 answers over the last 24 hours",
                                value=float(spent.throttled_24h))

    def _runtime(self) -> Iterator[Any]:
        from connectors.common.health import read_reports
        from connectors.common.token_cache import token_stats

        up = GaugeMetricFamily("cdchub_process_up", "a runtime process reports and runs", labels=["role", "pid"])
        read = CounterMetricFamily("cdchub_flow_read", "messages a flow read", labels=["role", "flow"])
        written = CounterMetricFamily("cdchub_flow_written", "commands a flow wrote", labels=["role", "flow"])
        retrying = GaugeMetricFamily("cdchub_flow_retrying", "commands retrying from state", labels=["role", "flow"])
        since = GaugeMetricFamily("cdchub_flow_retrying_seconds", "how long the oldest retrying command has failed",
                                  labels=["role", "flow"])
        for report in read_reports(self.settings.state_dir):
            role = str(report.get("role"))
            up.add_metric([role, str(report.get("pid"))], 1.0 if report["alive"] else 0.0)
            for flow, h in (report.get("flows") or {}).items():
                read.add_metric([role, flow], float(h.get("read", 0)))
                written.add_metric([role, flow], float(h.get("written", 0)))
                retrying.add_metric([role, flow], float(h.get("retrying", 0)))
                first = h.get("retrying_since_ms")
                since.add_metric([role, flow], max(0.0, time.time() - first / 1000) if first else 0.0)
        refusals = CounterMetricFamily("cdchub_token_refusals", "token refreshes the server refused",
                                       labels=["credential"])
        for name, stats in token_stats(self.settings.state_dir).items():
            refusals.add_metric([name], float(stats.get("refusals") or 0))
        yield from (up, read, written, retrying, since, refusals)

    def _flows(self) -> Iterator[Any]:
        """Every flow of the runtime: liveness of its process and its lag (also this minute's lag sample)."""
        from cdchub.flow_status import runtime_status

        status = runtime_status(self.settings, self.engine)
        up = GaugeMetricFamily("cdchub_flow_up", "the process running the flow is alive (1) or not (0)",
                               labels=["flow", "dataflow"])
        lag = GaugeMetricFamily("cdchub_flow_lag", "messages on the flow's source topics after the last it handled",
                                labels=["flow"])
        for row in status.flows:
            up.add_metric([row.flow, row.dataflow], 1.0 if row.liveness == "alive" else 0.0)
            if row.lag is not None:
                lag.add_metric([row.flow], float(row.lag))
        refused = GaugeMetricFamily("cdchub_token_last_refusal_timestamp_seconds",
                                    "when the server last refused a token refresh", labels=["credential"])
        for token in status.tokens:
            if token.last_refusal_ms:
                refused.add_metric([token.credential], token.last_refusal_ms / 1000)
        yield from (up, lag, refused)

    def collect(self) -> Iterator[Any]:
        yield from self._capture()
        yield from self._ledger()
        yield from self._dead_letters()
        yield from self._zoho_budget()
        yield from self._runtime()
        yield from self._flows()


def exposition(settings: Settings, engine: Engine) -> bytes:
    registry = CollectorRegistry()
    registry.register(CdchubCollector(settings, engine))
    return generate_latest(registry)


def serve(settings: Settings, engine: Engine, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] != "/metrics":
                self.send_response(404)
                self.end_headers()
                return
            body = exposition(settings, engine)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
