"""Helpers shared by the scripts in ``benchmarks/``.

Every benchmark follows the same shape: it works in a scratch directory on a real disk, measures
our code beside the ceiling (raw SQLite, a bare handler, ...) in the same run, interleaves the
rounds so drift on the machine hits both sides alike, and prints one JSON object to stdout
(progress goes to stderr, so ``stdout`` stays machine-readable).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw

IN_MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs"})
REPO_ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    """Progress for humans, on stderr."""
    print(message, file=sys.stderr, flush=True)


# -- where to run ----------------------------------------------------------------------------


def filesystem_of(path: Path) -> str | None:
    """The file-system type holding ``path`` (Linux, from /proc/mounts), or None if unknown."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, fstype = "", None
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount_point = parts[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, fstype = mount_point, parts[2]
    return fstype


def disk_base_dir(requested: Path | None = None) -> Path:
    """A directory on a real disk for scratch files: ``requested``, else the system temp
    directory, else /var/tmp. Timings on tmpfs would hide every fsync, so it is avoided."""
    candidates = [requested] if requested else [Path(tempfile.gettempdir()), Path("/var/tmp")]
    for candidate in candidates:
        if candidate.is_dir() and filesystem_of(candidate) not in IN_MEMORY_FILESYSTEMS:
            return candidate
    chosen = candidates[0]
    log(f"warning: {chosen} is an in-memory file system; fsync costs will not show")
    return chosen


@contextlib.contextmanager
def scratch_dir(prefix: str, base: Path | None = None) -> Iterator[Path]:
    """A fresh directory on disk, removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=disk_base_dir(base)))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- what we ran on --------------------------------------------------------------------------


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _git_commit() -> str | None:
    """The checked-out commit, read-only (``git rev-parse``); None outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _open_files_limit() -> dict[str, int] | None:
    """The soft and hard RLIMIT_NOFILE (Unix), which bounds how many SQLite files stay open."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {"soft": soft, "hard": hard}


def machine_info(scratch: Path | None = None) -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sqlite": apsw.sqlite_lib_version(),
        "apsw": apsw.apsw_version(),
        "scratch_filesystem": filesystem_of(scratch) if scratch else None,
        "open_files_limit": _open_files_limit(),
        "git_commit": _git_commit(),
    }


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """``ops`` operations done in ``seconds`` of wall-clock time."""

    ops: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


def run_for(op: Callable[[int], object], seconds: float, chunk: int) -> Sample:
    """Call ``op(chunk)`` (which does ``chunk`` operations) until ``seconds`` have passed.

    The clock is read once per chunk, so its own cost stays out of fast operations.
    """
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        op(chunk)
        done += chunk
        now = time.perf_counter()
        if now >= deadline:
            return Sample(done, now - start)


def run_once(op: Callable[[], object], ops: int) -> Sample:
    """Time one call of ``op`` that does ``ops`` operations."""
    start = time.perf_counter()
    op()
    return Sample(ops, time.perf_counter() - start)


def interleave(
    measures: Mapping[str, Callable[[], Sample]], rounds: int
) -> dict[str, list[Sample]]:
    """Run every measure ``rounds`` times, rotating the order each round, so a slow spell of
    the machine (another process, a checkpoint, thermal limits) does not fall on one side."""
    names = list(measures)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measures[name]())
    return samples


def summarize(samples: list[Sample], unit: str = "ops_per_s") -> dict[str, Any]:
    """The median rate over the rounds, with every round's rate kept for the record."""
    rates = [s.rate for s in samples]
    return {
        unit: round(statistics.median(rates), 1),
        "rounds": [round(r, 1) for r in rates],
        "ops": sum(s.ops for s in samples),
        "seconds": round(sum(s.seconds for s in samples), 3),
    }


def paired_ratio(ours: Sequence[Sample], *ceilings: Sequence[Sample]) -> float | None:
    """The median over rounds of ours / ceiling, where a round's ceiling is the best of the
    ``ceilings`` in that round. Pairing rounds that ran back to back cancels most of what a
    busy machine does to both sides; 1.0 means no overhead."""
    ratios = []
    for i, sample in enumerate(ours):
        best = max(c[i].rate for c in ceilings)
        if best > 0:
            ratios.append(sample.rate / best)
    return round(statistics.median(ratios), 3) if ratios else None


def run_section(
    name: str, measure: Callable[[], dict[str, Any]], errors: list[str]
) -> dict[str, Any]:
    """Run one part of a benchmark. If it raises (the code under test changes while others
    work on it), record the error in its place and in ``errors`` and go on, so the parts
    already measured are not lost; the caller exits non-zero."""
    try:
        return measure()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        message = f"{type(exc).__name__}: {exc}"
        errors.append(f"{name}: {message}")
        return {"error": message}


# -- output ----------------------------------------------------------------------------------


def emit(result: Mapping[str, Any], out: Path | None) -> None:
    """Print the result as one JSON object on stdout, and write it to ``out`` if given."""
    text = json.dumps(result, indent=2)
    print(text, flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
