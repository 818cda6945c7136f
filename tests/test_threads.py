"""The CPU thread plan: what it reads (affinity, cgroup quotas, ISBERT_THREADS), what it sets, what it leaves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import isbert.threads as threads
from isbert.errors import IsbertError
from isbert.threads import (
    POLICY_ENV,
    THREADS_ENV,
    apply_to_torch,
    busy_cpus,
    cgroup_cpu_limit,
    plan_threads,
    prepare_environment,
    usable_cpus,
)


@given(quota=st.integers(1, 10**7), period=st.integers(1000, 10**6))
def test_cgroup_v2_quota_rounds_up(tmp_path_factory: pytest.TempPathFactory, quota: int, period: int) -> None:
    root = tmp_path_factory.mktemp("cg")
    (root / "cpu.max").write_text(f"{quota} {period}\n")
    limit = cgroup_cpu_limit(root)
    assert (
        limit is not None and limit >= 1 and (limit - 1) * period < max(quota, period) <= limit * period
    ) or limit == 1


def test_cgroup_without_quota_or_files(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").write_text("garbage\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_a_quota_below_the_affinity_wins(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path) == ((1, "cgroup CPU quota") if affinity > 1 else (1, "CPU affinity"))


def test_environment_override_and_its_errors(tmp_path: Path) -> None:
    assert plan_threads({THREADS_ENV: "3"}, tmp_path).threads == 3
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(IsbertError, match=THREADS_ENV):
            plan_threads({THREADS_ENV: bad}, tmp_path)


def test_defaults_are_set_and_existing_values_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "busy_cpus", lambda loadavg=None: 1)
    env = {"OMP_WAIT_POLICY": "ACTIVE", THREADS_ENV: "2"}
    plan = prepare_environment(env)
    assert env["OMP_WAIT_POLICY"] == "ACTIVE" and env["TOKENIZERS_PARALLELISM"] == "false"
    assert env["OMP_NUM_THREADS"] == "2" and plan.threads == 2 and "active" in plan.describe()
    fresh: dict[str, str] = {}
    prepare_environment(fresh)
    assert fresh["OMP_WAIT_POLICY"] == "PASSIVE"  # a busy machine: threads sleep at barriers
    monkeypatch.setattr(threads, "busy_cpus", lambda loadavg=None: 0)
    idle: dict[str, str] = {}
    prepare_environment(idle)
    assert "OMP_WAIT_POLICY" not in idle  # an idle machine keeps OpenMP's short spin


def test_a_busy_machine_gets_a_fair_share(tmp_path: Path) -> None:
    loadavg = tmp_path / "loadavg"
    cpus = len(os.sched_getaffinity(0))
    for running, busy in ((1, 0), (2, 1), (3, 2), (50, 49)):
        loadavg.write_text(f"0.50 0.40 0.30 {running}/300 12345\n")
        assert busy_cpus(loadavg) == busy
        plan = plan_threads({}, tmp_path, loadavg)
        assert plan.threads == max(1, cpus - busy) and (busy == 0 or cpus == 1 or "busy" in plan.source)
    loadavg.write_text("garbage\n")
    assert busy_cpus(loadavg) == 0


class Readings:
    """A /proc/loadavg whose runnable count changes from one reading to the next."""

    def __init__(self, *running: int) -> None:
        self.running = list(running)

    def read_text(self, encoding: str) -> str:
        return f"0.50 0.40 0.30 {self.running.pop(0)}/300 12345\n"


def test_a_moment_of_other_work_is_not_a_busy_machine() -> None:
    """A process that starts or exits beside isbert is runnable for one reading; a busy one in every reading."""
    assert busy_cpus(Readings(3, 1, 2, 1, 3), interval_s=0) == 0
    assert busy_cpus(Readings(2, 2, 3, 2, 2), interval_s=0) == 1
    assert busy_cpus(Readings(3, 1), readings=1, interval_s=0) == 2  # one reading: the moment counts


def test_an_idle_reading_ends_the_readings_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only this process runnable: no reading can lower the count, so an idle start does not wait 40 ms."""
    slept: list[float] = []
    monkeypatch.setattr(threads.time, "sleep", slept.append)
    assert busy_cpus(Readings(2, 1, 3)) == 0 and slept == [0.01]
    assert busy_cpus(Readings(2, 2, 2, 2, 2)) == 1 and len(slept) == 5


def test_the_wait_policy_and_the_thread_count_follow_one_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([1, 0])  # a second reading would disagree with the first
    monkeypatch.setattr(threads, "busy_cpus", lambda loadavg=None: next(answers))
    monkeypatch.setattr(threads, "usable_cpus", lambda root=None: (2, "CPU affinity"))
    env: dict[str, str] = {}
    plan = prepare_environment(env)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and plan.threads == 1 and env["OMP_NUM_THREADS"] == "1"


def test_a_run_reports_the_plan_it_started_with_whatever_the_load_does_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run summary and log describe the threads torch was given at start, not a fresh reading."""
    answers = iter([0, 1, 1])
    monkeypatch.setattr(threads, "busy_cpus", lambda loadavg=None: next(answers))
    monkeypatch.setattr(threads, "usable_cpus", lambda root=None: (2, "CPU affinity"))
    monkeypatch.setattr(threads, "_started_with", None)
    for name in (THREADS_ENV, POLICY_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY"):
        monkeypatch.setenv(name, "")  # recorded first, so what prepare_environment sets is removed afterwards
        monkeypatch.delenv(name)
    started = prepare_environment()
    assert started.threads == 2 and threads.current_plan() == started == threads.current_plan()
    monkeypatch.setattr(threads, "_started_with", None)  # a library user who never prepared the environment
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert threads.current_plan().threads == 1 and threads.current_plan() is threads.current_plan()


def test_torch_policy_sets_nothing() -> None:
    env = {POLICY_ENV: "torch"}
    plan = prepare_environment(env)
    assert env == {POLICY_ENV: "torch"} and plan.source.startswith("torch defaults")
    import torch

    before = torch.get_num_threads()
    apply_to_torch(plan)
    assert torch.get_num_threads() == before


def test_cli_refuses_a_bad_thread_count_in_one_line() -> None:
    env = {**os.environ, THREADS_ENV: "many"}
    done = subprocess.run([sys.executable, "-m", "isbert", "--help"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and THREADS_ENV in done.stderr


def test_torch_in_a_cli_process_gets_the_plan() -> None:
    code = (
        "import os; from isbert.threads import apply_to_torch, prepare_environment; plan = prepare_environment(); "
        "import torch; apply_to_torch(plan); print(torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
    env[THREADS_ENV], env["OMP_WAIT_POLICY"] = "1", "PASSIVE"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "PASSIVE"]


@pytest.mark.parametrize("busy", [0, 1])
def test_a_thread_count_already_in_omp_num_threads_wins_whatever_the_load(busy: int, tmp_path: Path) -> None:
    """``OMP_NUM_THREADS`` set by the user (or a test that needs the same arithmetic in two runs) is the plan, so
    torch is not given another count at startup; ``ISBERT_THREADS`` still comes first."""
    env = {"OMP_NUM_THREADS": "1"}
    plan = plan_threads(env, tmp_path, busy=busy)
    assert plan.threads == 1 and plan.source == "OMP_NUM_THREADS"
    assert plan_threads({**env, THREADS_ENV: "3"}, tmp_path, busy=busy).threads == 3
    for ignored in ("", "0", "4,2", "all"):  # not one positive count: the plan decides
        assert plan_threads({"OMP_NUM_THREADS": ignored}, tmp_path, busy=0).source != "OMP_NUM_THREADS"
