"""How many CPU threads isbert's work uses, decided in one place.

The choice, in order:

* **How many intra-op threads** (torch and onnxruntime): ``ISBERT_THREADS`` when set, else ``OMP_NUM_THREADS`` when
  set to one count, else the CPUs this process may use: its CPU affinity (``os.sched_getaffinity``, which ``taskset``
  and container cpusets narrow), capped by a cgroup CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us /
  cpu.cfs_period_us``, rounded up). ``os.cpu_count()`` counts the machine's CPUs, not the ones granted, and
  oversubscribes a container. When other processes are running as isbert starts (the kernel's count of runnable
  tasks, ``/proc/loadavg``, the least of five readings), it takes its fair share: the usable CPUs minus the busy
  ones, at least one.
* **How idle threads wait**: on a busy machine, OpenMP's ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep at a barrier
  instead of spinning). With every core busy, a spinning thread burns the time slice its sibling needs to reach the
  barrier: that is what turned training steps from milliseconds into seconds. On an idle machine the OpenMP default
  (a short spin, then sleep) stays: sleeping at every barrier cost up to a third of the idle speed of the small
  GloVe training steps (``benchmarks/contention.py``). The variable must be in the environment before torch loads its
  OpenMP runtime, so the command line sets it first thing (:func:`prepare_environment`). onnxruntime gets the same
  choice through its session options (``allow_spinning``).
* **Tokenizers** run in the calling thread (``TOKENIZERS_PARALLELISM=false``): a second pool would compete with
  torch's for the same cores.
* **Data-loader workers**: none (training and encoding tokenize in the main process; worker processes would each
  start their own thread pools).

Every variable set here is only a default: a value already in the environment wins, and ``ISBERT_THREAD_POLICY=torch``
leaves everything to torch's own defaults (one thread per CPU of the machine, spinning waits). The run summary of
``isbert train`` prints the plan (:meth:`ThreadPlan.describe`). Measured under load in
``benchmarks/contention.py`` (docs/speed.md).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

THREADS_ENV = "ISBERT_THREADS"
"""Overrides the number of intra-op threads (a positive integer)."""

POLICY_ENV = "ISBERT_THREAD_POLICY"
"""``torch``: set nothing, leave torch's own defaults (for comparison, or where another tool manages threads)."""

WAIT_POLICY = "PASSIVE"
"""The OpenMP wait policy isbert sets on a busy machine unless ``OMP_WAIT_POLICY`` is already set."""

HELP = (
    f"CPU threads: the CPUs granted to this process, its fair share when other work is running; {THREADS_ENV}=N (or "
    f"OMP_NUM_THREADS=N) sets the count, {POLICY_ENV}=torch leaves torch's defaults (docs/speed.md)"
)
"""The thread settings in one line, for ``isbert --help``."""

CGROUP_ROOT = Path("/sys/fs/cgroup")
LOADAVG = Path("/proc/loadavg")


@dataclass(frozen=True)
class ThreadPlan:
    threads: int
    """Intra-op threads for torch and onnxruntime."""
    source: str
    """Where the number comes from: the environment variable, the affinity or the cgroup quota."""
    wait_policy: str
    """``OMP_WAIT_POLICY`` as the process runs with it."""

    def describe(self) -> str:
        return f"{self.threads} thread(s) ({self.source}), OpenMP wait policy {self.wait_policy.lower()}"


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> int | None:
    """CPUs granted by a cgroup CPU quota (rounded up), or None when there is no quota or it cannot be read."""
    try:
        quota, period = (root / "cpu.max").read_text(encoding="ascii").split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(quota_us / period_us)) if quota_us > 0 and period_us > 0 else None


def usable_cpus(root: Path = CGROUP_ROOT) -> tuple[int, str]:
    """The CPUs this process may use, and what limited them."""
    try:
        cpus, source = len(os.sched_getaffinity(0)), "CPU affinity"
    except AttributeError:  # not on Linux
        cpus, source = os.cpu_count() or 1, "CPU count"
    limit = cgroup_cpu_limit(root)
    if limit is not None and limit < cpus:
        return limit, "cgroup CPU quota"
    return cpus, source


def busy_cpus(loadavg: Path = LOADAVG, readings: int = 5, interval_s: float = 0.01) -> int:
    """Other tasks running on a CPU: the kernel's runnable count less this process, the least of ``readings``
    readings ``interval_s`` apart (0 if unreadable). A process starting or exiting is runnable for a moment and one
    reading counted it now and then (idle runs of ``benchmarks/contention.py`` then took one thread, at about half
    speed); a busy process stays runnable in every reading. A reading of this process alone ends them: none can be
    lower, and an idle start does not wait.
    """
    counts: list[int] = []
    for reading in range(readings):
        if reading:
            time.sleep(interval_s)
        try:
            counts.append(int(loadavg.read_text(encoding="ascii").split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return 0
        if counts[-1] <= 1:
            break
    return max(0, min(counts) - 1)


def plan_threads(
    environ: Mapping[str, str] | None = None, root: Path = CGROUP_ROOT, loadavg: Path = LOADAVG, busy: int | None = None
) -> ThreadPlan:
    """The plan for this process (``environ``: ``os.environ`` by default; ``busy``: :func:`busy_cpus` when None)."""
    env = os.environ if environ is None else environ
    wait = env.get("OMP_WAIT_POLICY", "default (spinning)")
    if env.get(POLICY_ENV) == "torch":
        return ThreadPlan(os.cpu_count() or 1, f"torch defaults ({POLICY_ENV}=torch)", wait)
    raw = env.get(THREADS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            from isbert.errors import IsbertError

            raise IsbertError(f"{THREADS_ENV} must be a positive integer, got {raw!r}")
        return ThreadPlan(int(raw), THREADS_ENV, wait)
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:  # the user's (nested lists like "4,2" are left to OpenMP and the plan)
        return ThreadPlan(int(omp), "OMP_NUM_THREADS", wait)
    cpus, source = usable_cpus(root)
    busy = min(busy_cpus(loadavg) if busy is None else busy, cpus - 1)
    if busy:
        return ThreadPlan(cpus - busy, f"{source}, less {busy} CPU(s) busy with other work", wait)
    return ThreadPlan(cpus, source, wait)


_started_with: ThreadPlan | None = None
"""The plan this process started with (set by :func:`prepare_environment` on ``os.environ``)."""


def current_plan() -> ThreadPlan:
    """The plan this process runs with: the one prepared at start, else the first one made (library use), so the
    run's log and summary describe the threads torch was given, not a reading of a load that changed since."""
    global _started_with
    if _started_with is None:
        _started_with = plan_threads()
    return _started_with


def prepare_environment(environ: MutableMapping[str, str] | None = None) -> ThreadPlan:
    """Set the defaults above in the environment (before torch is imported) and return the plan."""
    global _started_with
    env = os.environ if environ is None else environ
    if env.get(POLICY_ENV) == "torch":
        return plan_threads(env)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    busy = busy_cpus()  # read once: the wait policy and the thread count follow the same reading
    if busy > 0:
        env.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    plan = plan_threads(env, busy=busy)
    env.setdefault("OMP_NUM_THREADS", str(plan.threads))
    env.setdefault("MKL_NUM_THREADS", str(plan.threads))
    if environ is None:
        _started_with = plan
    return plan


def apply_to_torch(plan: ThreadPlan) -> None:
    """Give torch the planned intra-op threads (torch reads ``OMP_NUM_THREADS`` only at import)."""
    if plan.source.startswith("torch defaults"):
        return
    import torch

    if torch.get_num_threads() != plan.threads:
        torch.set_num_threads(plan.threads)
