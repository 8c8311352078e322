"""The report's "Where the time goes" section: each py-spy flame graph, and its top costs, from profiles.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _percent(share: float) -> str:
    return f"{share * 100:.0f} %" if share >= 0.01 else f"{share * 100:.1f} %"


def _profile_line(name: str, profile: dict[str, Any], folder: Path) -> str:
    if "error" in profile:
        return f"- **{name}** ({profile.get('what', '')}): not profiled: {profile['error']}"
    svg = Path(profile["svg"])
    link = svg.relative_to(folder) if svg.is_relative_to(folder) else svg
    cpu = profile.get("cpu_s")
    kernel = f"; CPU {cpu['user']} s user + {cpu['system']} s system over {profile['wall_s']} s" if cpu else ""
    calls = profile.get("system_call_share")
    top = ", ".join(f"{t['function']} {_percent(t['self_share'])}" for t in profile.get("top_self", [])[:6])
    ranked = sorted(profile.get("subtrees", {}).items(), key=lambda kv: -kv[1])
    subtrees = ", ".join(f"{k} {_percent(v)}" for k, v in ranked)
    return (
        f"- **{name}** ({profile['what']}): [{link}]({link}); {profile.get('busy_samples', 0)} busy samples"
        f"{f', {_percent(calls)} of them in system calls' if calls is not None else ''}{kernel}. "
        f"Top self time (of the rest): {top or 'none'}. Under: {subtrees or 'nothing notable'}."
    )


def profile_section(results: dict[str, Any], folder: Path) -> list[str]:
    """Markdown lines: one per profile, or none if profiles.py did not run."""
    profiles = results.get("profiles", {}).get("profiles")
    if not profiles:
        return []
    return [
        "## Where the time goes (py-spy flame graphs)",
        "",
        "Shares of samples, not times: the machine is shared. System calls are counted apart (on a busy machine",
        "most of their samples are a thread waiting for a core), the other shares are of the time in user space;",
        "subtrees overlap (a garbage collection set off while parsing a reply counts under both).",
        "",
        *(_profile_line(name, profile, folder) for name, profile in profiles.items()),
        "",
    ]
