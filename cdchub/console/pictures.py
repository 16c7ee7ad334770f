"""The console's pictures, drawn on the server as SVG (no script, nothing fetched): a traced document's path across
the systems, and sparklines of each flow's writes and lag over the last hour.

This module only computes geometry — boxes, curves, points — from a :class:`~cdchub.trace.Trace` or a list of
samples; the templates turn it into SVG elements, so every name drawn goes through the templates' autoescaping.

**The path.**  Each document the ledger knows runs ``source system → Kafka topic → flow → target system``; a
related document (an order's outbounds, invoices and receipts; an expense report's Kingdee bill …) branches off
the traced document's topic and runs on through the flows that wrote it; a write that is the source of another
flow's write (a campaign's OA request and its write-backs to the CRM) continues from the target it reached, which
is how a path comes back.  An edge into a target carries the latency of the flow's newest write (source commit →
applied); flows with dead letters for the document, and failed writes, are drawn in red with their count.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cdchub.trace import RELATION_KINDS, Trace

NODE_W, NODE_H = 176, 48
COL_W, ROW_H = 236, 70
MARGIN = 16


@dataclass
class Node:
    id: str
    kind: str  # system | topic | flow | target | related
    label: str
    sub: str = ""
    note: str = ""
    dead: int = 0
    x: int = 0
    y: int = 0

    @property
    def classes(self) -> str:
        return f"node {self.kind}" + (" dead" if self.dead else "")


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""
    dead: bool = False
    related: bool = False
    path: str = ""
    label_x: int = 0
    label_y: int = 0

    @property
    def classes(self) -> str:
        return "edge" + (" dead" if self.dead else "") + (" related" if self.related else "")


@dataclass
class Picture:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0

    def node(self, node_id: str, kind: str, label: str, sub: str = "") -> Node:
        for found in self.nodes:
            if found.id == node_id:
                return found
        made = Node(node_id, kind, clip(label, 24), clip(sub, 26))
        self.nodes.append(made)
        return made

    def edge(self, source: Node, target: Node, label: str = "", *, dead: bool = False, related: bool = False) -> None:
        for found in self.edges:
            if (found.source, found.target) == (source.id, target.id):
                found.dead = found.dead or dead
                found.label = found.label or label
                return
        self.edges.append(Edge(source.id, target.id, label, dead, related))


def clip(text: str, width: int) -> str:
    """``text`` cut to about ``width`` columns (a Chinese character takes two)."""
    out, used = "", 0
    for char in text:
        used += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        if used > width:
            return out + "…"
        out += char
    return out


def _ms(value: Any) -> str:
    if value is None:
        return ""
    ms = float(value)
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def trace_picture(found: Trace, topic_prefix: str = "") -> Picture | None:
    """The document's path (see the module doc); None when there is nothing to draw."""
    pic = Picture()
    dead: dict[str, int] = {}
    for hop in found.hops:
        if hop.what.startswith("dead letter ("):
            flow = hop.what.removeprefix("dead letter (").rstrip(")")
            dead[flow] = dead.get(flow, 0) + 1
    captured = [h for h in found.hops if h.what.startswith(("captured", "tombstone"))]

    def topic_nodes(topic: str, fallback_name: str = "") -> tuple[Node, Node]:
        bare = topic.removeprefix(topic_prefix)
        versions = [h for h in captured if str(h.detail.get("topic", "")).startswith(f"{topic}[")]
        system = next((h.system for h in versions if h.system != "kafka"), bare.split(".", 1)[0])
        name = next((str(h.detail["name"]) for h in reversed(versions) if h.detail.get("name")), fallback_name)
        source = pic.node(f"source:{system}:{topic}", "system", system, name)
        kafka = pic.node(f"topic:{topic}", "topic", "Kafka", bare)
        pic.edge(source, kafka, f"{len(versions)} version{'s' if len(versions) != 1 else ''}" if versions else "")
        return source, kafka

    def flow_node(flow: str) -> Node:
        node = pic.node(f"flow:{flow}", "flow", flow)
        node.dead = dead.get(flow, 0)
        if node.dead:
            node.note = f"✕ {node.dead} dead letter{'s' if node.dead != 1 else ''}"
        return node

    def latency(flow: str, via: str | None = None) -> str:
        writes = [h for h in found.hops if h.what.startswith(f"{flow}: synced") and h.detail.get("via") == via]
        return _ms(writes[-1].detail.get("latency_ms")) if writes else ""

    targets: dict[str, Node] = {}  # target id → the node it was written to
    first_topic: Node | None = None
    for d in found.documents:
        topic = d.get("kafka_topic")
        if not topic:
            continue
        _, kafka = topic_nodes(str(topic), str(d.get("source_number") or ""))
        first_topic = first_topic or kafka
        flow_box = flow_node(str(d["flow"]))
        failed = d.get("status") == "failed"
        pic.edge(kafka, flow_box, dead=failed)
        target = pic.node(f"target:{d['flow']}:{d['target_system']}", "target", str(d["target_system"]),
                          str(d.get("target_id") or ("failed" if failed else "")))
        pic.edge(flow_box, target, latency(str(d["flow"])), dead=failed)
        if d.get("target_id"):
            targets[str(d["target_id"])] = target
    if not found.documents:  # dead-lettered before any write: the captured versions and the letters' flows
        for hop in captured:
            topic = str(hop.detail.get("topic", "")).split("[", 1)[0]
            if topic:
                _, kafka = topic_nodes(topic)
                first_topic = first_topic or kafka
                for name in dead:
                    pic.edge(kafka, flow_node(name), dead=True)
    for name in dead:  # dead letters of a flow that wrote nothing of this document
        if first_topic is not None and f"flow:{name}" not in {n.id for n in pic.nodes}:
            pic.edge(first_topic, flow_node(name), dead=True)
    for doc in found.related:
        detail = doc.get("detail") or {}
        if doc.get("kind") in RELATION_KINDS:
            related = pic.node(f"related:{doc['topic']}:{doc['key']}", "related", str(doc["kind"]),
                               str(doc.get("number") or doc["key"]) + (" (deleted)" if doc.get("op") == "d" else ""))
            if first_topic is not None:
                pic.edge(first_topic, related, "related", related=True)
            writes = detail.get("writes") or []
            if not writes:
                related.note = "not written"
            for w in writes:
                flow_box = flow_node(str(w["flow"]))
                failed = w.get("status") == "failed"
                pic.edge(related, flow_box, dead=failed)
                target = pic.node(f"target:{w['flow']}:{w['target_system']}", "target", str(w["target_system"]),
                                  str(w.get("target_id") or ""))
                pic.edge(flow_box, target, latency(str(w["flow"]), str(doc["key"])), dead=failed)
        elif detail.get("target_system"):  # a write caused by one of ours: continues from where ours arrived
            flow_name = str(doc["kind"]).removesuffix(" record")
            start = targets.get(str(doc.get("key"))) or first_topic
            flow_box = flow_node(flow_name)
            if start is not None:
                pic.edge(start, flow_box)
            failed = doc.get("op") == "failed"
            target = pic.node(f"target:{flow_name}:{detail['target_system']}", "target",
                              str(detail["target_system"]), str(detail.get("target_id") or ""))
            pic.edge(flow_box, target, latency(flow_name, str(doc.get("key"))), dead=failed)
    if not pic.nodes:
        return None
    _layout(pic)
    return pic


def _layout(pic: Picture) -> None:
    """Columns by the longest path from a start (a cycle, which the data should not have, is cut), rows in order
    of appearance; edges as curves from the right side of one box to the left side of the next."""
    depth = {n.id: 0 for n in pic.nodes}
    for _ in range(len(pic.nodes)):
        changed = False
        for e in pic.edges:
            if depth[e.target] < depth[e.source] + 1 <= len(pic.nodes):
                depth[e.target] = depth[e.source] + 1
                changed = True
        if not changed:
            break
    # rows: column by column, each box next to the boxes that lead to it (fewer crossing edges)
    row_of: dict[str, float] = {}
    rows: dict[int, int] = {}
    for column in range(max(depth.values()) + 1):
        placed = [n for n in pic.nodes if depth[n.id] == column]
        for i, n in enumerate(placed):
            before = [row_of[e.source] for e in pic.edges if e.target == n.id and e.source in row_of]
            row_of[n.id] = sum(before) / len(before) if before else float(i)
        placed.sort(key=lambda n: row_of[n.id])
        for i, n in enumerate(placed):
            row_of[n.id] = float(i)
            n.x, n.y = MARGIN + column * COL_W, MARGIN + i * ROW_H
        rows[column] = len(placed)
    by_id = {n.id: n for n in pic.nodes}
    for e in pic.edges:
        a, b = by_id[e.source], by_id[e.target]
        x1, y1, x2, y2 = a.x + NODE_W, a.y + NODE_H // 2, b.x, b.y + NODE_H // 2
        bend = max(40, abs(x2 - x1) // 2)
        e.path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2 - 6},{y2}"
        e.label_x, e.label_y = (x1 + x2) // 2, (y1 + y2) // 2 - 6
    pic.width = MARGIN * 2 + (max(depth.values()) + 1) * COL_W - (COL_W - NODE_W)
    pic.height = MARGIN * 2 + max(rows.values()) * ROW_H - (ROW_H - NODE_H) + 14


@dataclass(frozen=True)
class Sparkline:
    """A small line chart: polyline segments (gaps where there is no sample), the newest value and the largest."""

    segments: list[str]
    last: float | None
    top: float
    width: int
    height: int


def sparkline(values: Sequence[float | int | None], width: int = 120, height: int = 24) -> Sparkline:
    """``values`` oldest first, one per step; None is a gap (no sample)."""
    known = [float(v) for v in values if v is not None]
    top = max(known, default=0.0)
    scale = (height - 2) / top if top > 0 else 0.0
    step = width / max(1, len(values) - 1)
    segments: list[str] = []
    current: list[str] = []
    for i, v in enumerate(values):
        if v is None:
            if current:
                segments.append(" ".join(current))
            current = []
            continue
        current.append(f"{i * step:.1f},{height - 1 - float(v) * scale:.1f}")
    if current:
        segments.append(" ".join(current))
    # a single sample is a dot-sized line, so it shows
    segments = [s if " " in s else f"{s} {float(s.split(',')[0]) + 1:.1f},{s.split(',')[1]}" for s in segments]
    return Sparkline(segments, known[-1] if known and values[-1] is not None else None, top, width, height)
