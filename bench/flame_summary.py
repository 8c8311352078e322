"""Where the time goes in one py-spy flame graph: the top functions by self time and the share of notable subtrees.

py-spy writes its SVG with inferno, which gives every frame its sample offset and count (`fg:x`, `fg:w`) and its
depth (`y`): the call tree, and so each frame's self time, is read back exactly from the SVG that is kept, with no
second recording. py-spy leaves idle threads out; the samples of a thread blocked in a wait (WAITS) are left out here
too, those in system calls (SYSCALLS) are counted apart, and the shares of functions are of the rest. (inferno leaves
out frames under a tenth of a pixel wide: their few samples count as their parent's self time.)
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

FRAME = re.compile(
    r'<title>(?P<name>.*?) \([\d,]+ samples?, [\d.]+%\)</title><rect [^>]*?y="(?P<y>[\d.]+)"[^>]*?'
    r'fg:x="(?P<x>\d+)" fg:w="(?P<w>\d+)"'
)

# (label, substrings of a frame's name): a subtree's share counts each sample once, under its outermost match. Subtrees
# overlap: a collection the parser's allocations set off counts under both.
SUBTREES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # The reply readers (hiredis's C reader.c and read.c, or redis-py's own) and the reply callbacks (pairs_to_dict:
    # a dict per stream entry), against the packing of commands.
    (
        "redis-py reply parsing",
        (*(f"redis/_parsers/{part}" for part in ("resp", "base", "helpers", "hiredis")), "(reader.c", "(read.c"),
    ),
    ("redis-py command packing", ("redis/_parsers/encoders", "pack_command")),
    ("redis-py (all)", ("(redis/",)),
    ("json", ("(json/", "_json.c", "orjson")),
    ("datetime", ("datetime", "_strptime")),
    ("decimal", ("decimal",)),
    ("garbage collection", ("gc_collect",)),
    ("memory allocation (malloc, mmap)", ("malloc", "mmap", "munmap", "_PyObject_Free", "pymalloc")),
    ("logging and structlog", ("(logging/", "(structlog/")),
    ("Prometheus metrics", ("prometheus_client",)),
    ("pydantic", ("pydantic",)),
    ("SQLAlchemy", ("(sqlalchemy/",)),
    ("asyncpg", ("asyncpg",)),
    ("SMTP (aiosmtplib)", ("aiosmtplib",)),
    ("email message building", ("(email/",)),
    ("templates (jinja2)", ("(jinja2/", "markupsafe", ".j2)")),
    ("cryptography and JWT", ("cryptography", "(jwt/", "libcrypto")),
    ("imports (start-up)", ("_find_and_load",)),
)


# Native frames of a blocked thread: the event loop waiting for I/O, a pool thread waiting for work, the GIL.
WAITS = ("epoll_wait", "epoll_pwait", "PyThread_acquire_lock_timed", "take_gil", "pthread_cond_timedwait")
# System calls. On a busy machine most of their samples are a thread runnable but not running: a send to loopback
# wakes the peer, which often takes the core at once (py-spy counts runnable threads as busy). So they are reported
# apart, and the shares of functions are of the rest, the time in user space (cpu_s gives the kernel's own split).
SYSCALLS = tuple(
    f"{call} (libc"
    for call in ("write", "read", "send", "sendto", "sendmsg", "recv", "recvfrom", "recvmsg", "getpid", "fstatat64")
) + tuple(f"{call} (libc" for call in ("epoll_ctl", "close", "connect", "accept4", "openat", "fstat", "lseek"))


@dataclass
class Frame:
    """One box of the flame graph: a function at a depth, over samples [x, x + w)."""

    name: str
    depth: int
    x: int
    w: int
    children_w: int = 0
    parent: Frame | None = field(default=None, repr=False)

    @property
    def function(self) -> str:
        """The name without the line number py-spy appends to the file."""
        return re.sub(r":\d+\)$", ")", self.name)

    @property
    def package(self) -> str:
        """Where the function lives: its file's first folder (py-spy keeps the package part), module or library."""
        where = self.function.rpartition(" (")[2].rstrip(")")
        return where.split("/")[0].removesuffix(".py") if "/" in where or where.endswith(".py") else where


def frames(svg: str) -> list[Frame]:
    """The frames of a py-spy SVG, each linked to its parent, its children's samples summed."""
    found = [(html.unescape(m["name"]), float(m["y"]), int(m["x"]), int(m["w"])) for m in FRAME.finditer(svg)]
    if not found:
        return []
    levels = sorted({y for _, y, _, _ in found})
    tree = [Frame(name, levels.index(y), x, w) for name, y, x, w in found]
    by_depth: dict[int, list[Frame]] = {}
    for frame in tree:
        by_depth.setdefault(frame.depth, []).append(frame)
    for row in by_depth.values():
        row.sort(key=lambda f: f.x)
    for frame in tree:
        above = by_depth.get(frame.depth - 1, [])
        i = bisect_right([f.x for f in above], frame.x) - 1
        if i >= 0 and above[i].x <= frame.x < above[i].x + above[i].w:
            frame.parent = above[i]
            above[i].children_w += frame.w
    return tree


def _matches(frame: Frame, needles: tuple[str, ...]) -> bool:
    return any(needle in frame.name for needle in needles)


def _outermost(tree: list[Frame], needles: tuple[str, ...]) -> list[Frame]:
    """The frames matching `needles` with no matching ancestor: each sample under them counted once."""
    return [f for f in tree if _matches(f, needles) and not any(_matches(a, needles) for a in _ancestors(f))]


def _ancestors(frame: Frame) -> list[Frame]:
    found, parent = [], frame.parent
    while parent is not None:
        found.append(parent)
        parent = parent.parent
    return found


def summarize(svg_path: Path, top: int = 10) -> dict[str, object]:
    """Where the samples went: waiting, in system calls, and for the rest (user space) the top functions, packages
    and every SUBTREES share of at least 0.5 %."""
    tree = frames(svg_path.read_text())
    total = sum(f.w for f in tree if f.parent is None)
    waiting = sum(f.w for f in _outermost(tree, WAITS))
    in_calls = sum(f.w for f in _outermost(tree, SYSCALLS) if not _inside(f, WAITS))
    left_out: dict[int, int] = {}  # id(frame) -> its samples waiting or in system calls
    for outer in _outermost(tree, WAITS + SYSCALLS):
        for frame in [outer, *_ancestors(outer)]:
            left_out[id(frame)] = left_out.get(id(frame), 0) + outer.w
    user = total - waiting - in_calls
    result: dict[str, object] = {
        "samples": total,
        "waiting_samples": waiting,
        "busy_samples": total - waiting,
        "system_call_share": round(in_calls / (total - waiting), 3) if total > waiting else None,
    }
    if not user:
        return result | {"top_self": [], "self_by_package": {}, "subtrees": {}}
    functions: dict[str, int] = {}
    packages: dict[str, int] = {}
    for frame in tree:
        own = frame.w - frame.children_w
        if frame.name != "all" and own and not _inside(frame, WAITS + SYSCALLS):
            functions[frame.function] = functions.get(frame.function, 0) + own
            packages[frame.package] = packages.get(frame.package, 0) + own
    subtrees = {}
    for label, needles in SUBTREES:
        samples = sum(f.w - left_out.get(id(f), 0) for f in _outermost(tree, needles) if not _inside(f, WAITS))
        if samples / user >= 0.005:
            subtrees[label] = round(samples / user, 3)
    return result | {
        "user_space_samples": user,
        "top_self": [{"function": k, "self_share": round(n / user, 3)} for k, n in _top(functions, top)],
        "self_by_package": {k: round(n / user, 3) for k, n in _top(packages, top)},
        "subtrees": subtrees,
    }


def _inside(frame: Frame, needles: tuple[str, ...]) -> bool:
    """Whether the frame or one of its callers matches."""
    return any(_matches(f, needles) for f in [frame, *_ancestors(frame)])


def _top(counts: dict[str, int], top: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: -kv[1])[:top]
