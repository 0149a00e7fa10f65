"""Shared pieces for benchmark scripts: timing with medians, and the row format."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Row:
    """One benchmark row: our figure, a baseline or floor from the same run, and their ratio."""

    name: str
    figure: float
    unit: str
    baseline_name: str
    baseline: float
    goal: str = ""
    device: str = "cpu"
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.figure / self.baseline if self.baseline else float("nan")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def format_table(rows: list[Row]) -> str:
    head = (f"| {'benchmark':<44} | {'figure':>12} | {'baseline / floor':<28} | {'value':>12} | {'ratio':>8} "
            f"| {'goal':<16} | device |")
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        lines.append(
            f"| {r.name:<44} | {r.figure:>9.4g} {r.unit:<2} | {r.baseline_name:<28} | {r.baseline:>9.4g} {r.unit:<2} "
            f"| {r.ratio:>8.3g} | {r.goal:<16} | {r.device} |"
        )
    return "\n".join(lines)
