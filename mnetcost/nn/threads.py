"""How many CPU threads torch should use: the cores other processes leave idle.

Why: torch's CPU kernels run on OpenMP (GNU ``libgomp`` in the PyPI wheels), which splits an
operation over all its threads and waits at a barrier until the last one is done; idle threads
spin for a while before they sleep. A training step of the paper's small networks is a few
thousand such operations of a millisecond or less. When another process keeps a core busy, one
of torch's threads shares that core and is descheduled for whole time slices while the others
wait for it at every barrier: with 2 threads on 2 cores, one of them busy, ``mnetcost train``
ran 4-10x slower than with 1 thread (README, Performance). Fewer threads than cores costs little
in comparison; more threads than idle cores costs a lot.

The policy (:func:`choose_threads`), in order:

1. an explicit count (``--threads N``, or a resumed run's recorded threads);
2. ``OMP_NUM_THREADS`` (or ``MKL_NUM_THREADS``) set in the environment: torch already follows it;
3. otherwise the cores this process may use (``os.sched_getaffinity``, capped by a cgroup CPU
   quota) minus what other processes keep busy, sampled from ``/proc/stat`` over
   :data:`SAMPLE_SECONDS` while this process is idle, rounded to the nearest integer, at least 1,
   divided among the processes of one ``torchrun`` node (``LOCAL_WORLD_SIZE``).

The count is chosen once, before training, and kept for the whole run: results depend on it
(the order of floating-point sums in the kernels), so a run records it and a resume reuses it.
Load that starts after the choice is not followed; ``OMP_WAIT_POLICY=PASSIVE`` in the
environment (read when torch is imported) makes idle OpenMP threads sleep at once instead of
spinning, which limits the damage (README, Performance), at a cost per operation on an idle
machine that was not measured here.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.25
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and why: ``source`` is ``given``, ``environment`` or ``idle-cores``;
    ``cores``: the cores this process may use; ``busy``: the cores other processes kept busy
    (None when not sampled)."""

    threads: int
    source: str
    cores: int
    busy: float | None = None

    def describe(self) -> str:
        if self.source == "given":
            return f"{self.threads} (given)"
        if self.source == "environment":
            return f"{self.threads} (from {next(name for name in THREAD_ENV if os.environ.get(name))})"
        busy = "unknown" if self.busy is None else f"{self.busy:.1f}"
        return f"{self.threads} (of {self.cores} cores, {busy} kept busy by other processes)"

    def as_dict(self) -> dict:
        return {"threads": self.threads, "source": self.source, "cores": self.cores,
                "busy_cores": None if self.busy is None else round(self.busy, 2)}


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask; all CPUs where that is unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in cores (cgroup v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us``), or None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _cpu_times(path: Path) -> dict[int, tuple[int, int]]:
    """Per CPU (busy, total) jiffies from ``/proc/stat``; idle time is ``idle + iowait``."""
    times = {}
    for line in path.read_text().splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        idle = values[3] + values[4]
        times[int(name[3:])] = (sum(values) - idle, sum(values))
    return times


def busy_cores(cpus: list[int], seconds: float = SAMPLE_SECONDS, stat: Path = Path("/proc/stat")) -> float | None:
    """How many of ``cpus`` other processes kept busy over ``seconds`` (this process sleeps
    meanwhile, so the busy time is theirs); None where ``/proc/stat`` cannot be read."""
    try:
        before = _cpu_times(stat)
        time.sleep(seconds)
        after = _cpu_times(stat)
    except (OSError, ValueError):
        return None
    busy = 0.0
    for cpu in cpus:
        if cpu in before and cpu in after:
            total = after[cpu][1] - before[cpu][1]
            if total > 0:
                busy += min(1.0, max(0.0, (after[cpu][0] - before[cpu][0]) / total))
    return busy


def threads_for(cores: int, busy: float | None, processes: int = 1) -> int:
    """The idle cores (``cores - busy``, rounded to the nearest integer) shared by ``processes``,
    at least 1 each."""
    idle = cores if busy is None else cores - busy
    return max(1, math.floor(max(0.0, idle) + 0.5) // max(1, processes))


def choose_threads(given: int | None = None, *, seconds: float = SAMPLE_SECONDS) -> ThreadChoice:
    """The thread count for a training run under the policy of the module docstring."""
    cpus = usable_cpus()
    cores = len(cpus)
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = max(1, min(cores, math.floor(limit)))
    if given:
        return ThreadChoice(int(given), "given", cores)
    for name in THREAD_ENV:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return ThreadChoice(int(value), "environment", cores)
    busy = busy_cores(cpus, seconds)
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return ThreadChoice(threads_for(cores, busy, processes), "idle-cores", cores, busy)


def apply(choice: ThreadChoice) -> ThreadChoice:
    """``torch.set_num_threads(choice.threads)``; returns ``choice``."""
    import torch

    torch.set_num_threads(choice.threads)
    return choice
