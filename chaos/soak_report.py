"""The soak's report: chaos/results/soak.md (the verdict, the oracle's figures, a row per sampled series),
soak.json (everything, every sample) and one plot per kind of series (soak_rss.png, ...)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chaos.soak_judge import KINDS, UNITS, Sample, Verdict, collect

TITLES = {
    "rss": "resident memory per process",
    "fds": "open file descriptors per process",
    "redis": "Redis used_memory",
    "streams": "stream lengths (XLEN)",
    "pending": "pending entries per consumer group",
}
ORACLE_ROWS = (
    "alerts_attempted",
    "alerts_acknowledged",
    "alerts_indeterminate",
    "alerts_refused",
    "triggers_expected",
    "triggers_seen",
    "triggers_lost",
    "triggers_duplicated",
    "triggers_unexpected",
    "triggers_recovered",
    "emails_accepted",
    "emails_lost",
    "emails_duplicated",
    "emails_unexpected",
    "deletes",
    "deletes_indeterminate",
    "deletes_failed",
)


def _figure(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value)) + (f" ({', '.join(map(str, value[:5]))}…)" if value else "")
    return str(value)


def plot_group(kind: str, name: str) -> str:
    """The line a stream's series is drawn in: one per stream kind, the longest of its shards' or users' streams."""
    if kind != "streams":
        return name
    if name.startswith("feed:"):
        return "feed:{user} (longest)"
    head, sep, rest = name.partition("}:")
    return f"{{sN}}:{rest} (longest)" if sep and head.startswith("{s") else name


def grouped(kind: str, samples: list[Sample]) -> dict[str, list[tuple[float, float]]]:
    """The series of `kind` as drawn: the largest value of each group at each sample."""
    lines: dict[str, dict[float, float]] = {}
    for name, points in collect(samples)[kind].items():
        line = lines.setdefault(plot_group(kind, name), {})
        for at, value in points:
            line[at] = max(line.get(at, value), value)
    return {name: sorted(line.items()) for name, line in lines.items()}


def plot(kind: str, samples: list[Sample], path: Path) -> None:
    """One line per series of `kind` (streams: per stream kind) over the soak's time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = grouped(kind, samples)
    figure, axes = plt.subplots(figsize=(10, 5))
    for name, points in sorted(series.items()):
        if kind in ("streams", "pending") and not any(v for _, v in points):
            continue  # empty all along (dead-letter streams, idle groups): the table lists them
        axes.plot([t / 60 for t, _ in points], [v for _, v in points], marker=".", label=name)
    axes.set_title(f"soak: {TITLES[kind]}")
    axes.set_xlabel("minutes")
    axes.set_ylabel(UNITS[kind])
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def series_table(kind: str, samples: list[Sample], verdicts: dict[str, Verdict]) -> list[str]:
    """A markdown table of the series of `kind`: first, max, last, growth against tolerance, verdict."""
    lines = [
        f"### {TITLES[kind]} ({UNITS[kind]})",
        "",
        "| series | first | max | last | growth (last third vs middle) | new high | tolerance | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    empty = 0
    for name, points in sorted(collect(samples)[kind].items()):
        values = [v for _, v in points]
        if not any(values) and verdicts[name].levelled:
            empty += 1
            continue
        verdict = verdicts[name]
        word = "ok" if verdict.levelled else "**FAIL**"
        lines.append(
            f"| {name} | {values[0]:g} | {max(values):g} | {values[-1]:g} | {verdict.growth:g} | {verdict.new_high:g} "
            f"| {verdict.tolerance:g} | {word}: {verdict.note} |"
        )
    return [*lines, *([f"\n{empty} more series at 0 throughout."] if empty else []), ""]


def write_soak_report(result: dict[str, Any], out: Path) -> Path:
    """Write soak.md, soak.json and the plots into `out`; returns the markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = result["samples"]
    verdicts: dict[str, dict[str, Verdict]] = result["verdicts"]
    for kind in KINDS:
        plot(kind, samples, out / f"soak_{kind}.png")
    config, oracle = result["config"], result.get("oracle", {})
    lines = [
        "# Soak",
        "",
        f"**{'PASS' if result['pass'] else 'FAIL'}**: {config['minutes']:g} min of steady load on one stack "
        f"({config['trades_per_s']:g} trades/s, {config['alerts_per_s']:g} alerts/s created; the ones the market "
        f"reaches fired, mailed and deleted, the others deleted unfired), {len(samples)} samples "
        f"{config['sample_s']:g} s apart; stream caps divided by {config['stream_maxlen_divisor']} so that each "
        f"stream reaches its cap early. Wall time {result['wall_s']} s.",
        "",
        f"- growth judge: {'pass' if result['growth_pass'] else 'FAIL'} (a series fails when the last third's median "
        "and maximum both rise above the middle third's by more than the tolerance)",
        f"- oracle: {'pass' if oracle.get('pass') else 'FAIL'}; settled: {result.get('settled')}; "
        f"trades played: {result.get('trades_played')}; crashed processes: {result.get('crashed_processes') or 'none'}",
    ]
    lines += [f"- error: {result['error']}"] if "error" in result else []
    lines += [f"- sample errors: {result['sample_errors'][:3]}"] if result.get("sample_errors") else []
    lines += ["", "| oracle | figure |", "|---|---:|"]
    lines += [f"| {key} | {_figure(oracle[key])} |" for key in ORACLE_ROWS if key in oracle]
    lines += ["", *(f"![{kind}](soak_{kind}.png)" for kind in KINDS), ""]
    for kind in KINDS:
        lines += series_table(kind, samples, verdicts[kind])
    if samples:
        lines += [f"Redis at the end: {samples[-1].info}", ""]
    path = out / "soak.md"
    path.write_text("\n".join(lines))
    data = result | {
        "samples": [asdict(s) for s in samples],
        "verdicts": {k: {n: asdict(v) for n, v in vs.items()} for k, vs in verdicts.items()},
    }
    (out / "soak.json").write_text(json.dumps(data, indent=1, default=str))
    return path
