"""What a process costs, from /proc: CPU seconds (its threads, its waited-for children and its live descendants)
and a resettable peak RSS (VmHWM, summed over the process and its live descendants)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.bench.bench_materials import vm_hwm_mb

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()  # the name may hold spaces: fields after it, from ``state``


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid``, plus the same of every live descendant."""
    try:
        fields = _stat(pid)
        children = _children(pid)
    except OSError:
        return 0.0
    own = sum(int(v) for v in fields[11:15]) / TICKS  # utime, stime, cutime, cstime
    return own + sum(cpu_seconds(child) for child in children)


def _tree(pid: int) -> list[int]:
    try:
        return [pid, *(p for child in _children(pid) for p in _tree(child))]
    except OSError:
        return [pid]


def reset_peak_rss(pid: int) -> None:
    """Reset VmHWM to the current RSS (``5`` into clear_refs, Linux 4.0+) in the whole process tree, so that a
    workload's own peak can be read."""
    for p in _tree(pid):
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except OSError:
            continue


def peak_rss_mb(pid: int) -> float | None:
    """The sum of VmHWM over ``pid`` and its live descendants (an upper bound of the tree's peak)."""
    peaks = [vm_hwm_mb(p) for p in _tree(pid)]
    return sum(p for p in peaks if p is not None) if peaks[0] is not None else None
