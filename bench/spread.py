"""Steady figures (issue 21): a bench's runs folded into medians, each figure's runs kept under "per_run".

A bench's JSON shows the median of each figure where one run's figure would be, and beside them
"per_run": {dotted path of the figure: [its value in each run, in run order]}; the report prints
median (min-max) from these and bench/ratios.py pairs them run by run.
"""

from __future__ import annotations

import statistics
from typing import Any


def numbers(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of nested dicts by its dotted path (lists, strings and booleans left out)."""
    found: dict[str, float] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            found |= numbers(value, f"{path}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found[path] = value
    return found


def per_run(runs: list[dict[str, Any]], prefix: str = "") -> dict[str, list[float]]:
    """Each numeric leaf's value in every run, in run order, keyed by `prefix` + its path (leaves all runs have)."""
    leaves = [numbers(run) for run in runs]
    if not leaves:
        return {}
    return {f"{prefix}{path}": [leaf[path] for leaf in leaves] for path in leaves[0] if all(path in x for x in leaves)}


def fold(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's shape with the median over the runs at every numeric leaf (other leaves from the first run)."""

    def merge(shapes: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for key, value in shapes[0].items():
            values = [shape.get(key) for shape in shapes]
            if isinstance(value, dict) and all(isinstance(v, dict) for v in values):
                merged[key] = merge(values)  # type: ignore[arg-type]  # all dicts, checked just above
            elif isinstance(value, int | float) and not isinstance(value, bool):
                numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
                middle = statistics.median(numeric)
                merged[key] = middle if isinstance(middle, int) else round(middle, 3)
            else:
                merged[key] = value
        return merged

    return merge(runs) if runs else {}


def steady(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs folded into medians, with "per_run" beside them."""
    return fold(runs) | {"per_run": per_run(runs)}


def runs_of(results: dict[str, Any], path: tuple[str, ...]) -> list[float] | None:
    """The per-run figures behind the figure at `path`: the nearest "per_run" on the way down that holds the rest of
    the path (results["e2e"]["per_run"]["latency_ms.p99"], results["e2e"]["webhook"]["per_run"][...]); else None."""
    node: Any = results
    for depth, key in enumerate(path):
        if not isinstance(node, dict):
            return None
        kept = node.get("per_run")
        values = kept.get(".".join(path[depth:])) if isinstance(kept, dict) else None
        if isinstance(values, list) and values:
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            return [float(v) for v in values] if numeric else None
        node = node.get(key)
    return None


def describe(values: list[float]) -> dict[str, Any]:
    """Median, min, max, spread (max ÷ min, None when min is 0) and run count of one figure's runs."""
    low, high = min(values), max(values)
    return {
        "median": round(statistics.median(values), 3),
        "min": round(low, 3),
        "max": round(high, 3),
        "spread": round(high / low, 2) if low > 0 else None,
        "runs": len(values),
    }


def shown(values: list[float] | None, median: float | None = None) -> str:
    """ "median (min-max)" of a figure's runs, or the one figure when there is a single run or none kept."""
    if values and len(values) > 1:
        return f"{statistics.median(values):g} ({min(values):g}-{max(values):g})"
    if values:
        return f"{values[0]:g}"
    return "—" if median is None else f"{median:g}"
