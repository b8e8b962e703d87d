"""Aligned text tables and small statistics shared by the sections."""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:,.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, digits: int = 2, title: str | None = None) -> str:
    """A compact aligned table: text left-aligned, numbers right-aligned."""
    body = [[fmt(v, digits) for v in row] for row in rows]
    raw_rows = [list(r) for r in body]
    widths = [len(h) for h in headers]
    for r in raw_rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    numeric = [True] * len(headers)
    for r in body:
        for i, cell in enumerate(r):
            if cell not in ("-", "") and not _looks_numeric(cell):
                numeric[i] = False
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(h.rjust(w) if numeric[i] else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths,
                                                                                                  strict=True))))
    lines.append("  ".join("-" * w for w in widths))
    for r in raw_rows:
        lines.append("  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                     strict=True))))
    return "\n".join(line.rstrip() for line in lines)


def _looks_numeric(cell: str) -> bool:
    s = cell.replace(",", "").replace("x", "").replace("%", "").strip()
    try:
        float(s)
    except ValueError:
        return False
    return True


def summary(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "max": None, "min": None, "median": None}
    return {"mean": round(statistics.fmean(values), 4), "max": round(max(values), 4),
            "min": round(min(values), 4), "median": round(statistics.median(values), 4)}


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]
