"""Worker processes for independent jobs: worker count, errors, interrupts, no leftover process."""

import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from generator.analyze import workers
from generator.analyze.workers import WORKERS_ENV, run_jobs, worker_count
from generator.errors import AtlasError


def fail_on_two(value):
    """Return `value`, or raise ValueError for 2 (a job function for the workers)."""
    if value == 2:
        raise ValueError(f"bad value {value}")
    return value


def interrupt_or_sleep(action):
    """Raise KeyboardInterrupt for "interrupt", else sleep a second."""
    if action == "interrupt":
        raise KeyboardInterrupt
    time.sleep(1)
    return os.getpid()


def test_worker_count_follows_the_environment(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert worker_count(jobs=50) == min(workers.available_cpus(), 50)
    assert worker_count(jobs=1) == 1
    assert worker_count(jobs=50, small=True) == 1
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert worker_count(jobs=50, small=True) == 3 and worker_count(jobs=2) == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(WORKERS_ENV, bad)
        with pytest.raises(AtlasError, match=WORKERS_ENV):
            worker_count(jobs=4)


def test_one_worker_runs_in_process(monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started")

    monkeypatch.setattr(workers, "ProcessPoolExecutor", no_pool)
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert run_jobs(os.getpid, [()] * 3) == [os.getpid()] * 3
    monkeypatch.delenv(WORKERS_ENV)
    assert run_jobs(os.getpid, [()] * 3, small=True) == [os.getpid()] * 3


def test_a_job_error_is_raised_again_with_its_type_and_message(monkeypatch):
    jobs = [(1,), (2,), (3,)]
    monkeypatch.setenv(WORKERS_ENV, "1")
    with pytest.raises(ValueError) as serial:
        run_jobs(fail_on_two, jobs)
    monkeypatch.setenv(WORKERS_ENV, "2")
    with pytest.raises(ValueError) as pooled:
        run_jobs(fail_on_two, jobs)
    assert str(pooled.value) == str(serial.value) == "bad value 2"
    assert multiprocessing.active_children() == []


def test_an_interrupt_cancels_pending_jobs_and_leaves_no_worker(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "2")
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_jobs(interrupt_or_sleep, [("interrupt",)] + [("sleep",)] * 20)
    assert time.perf_counter() - started < 8  # 20 s of jobs were pending
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from generator.analyze.workers import run_jobs
        from test_workers import record_pid_and_sleep

        if __name__ == "__main__":
            run_jobs(record_pid_and_sleep, [({str(tmp_path)!r},)] * 2)
        """
    )
    env = {**os.environ, WORKERS_ENV: "2", "PYTHONPATH": str(Path(__file__).parents[1])}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = [int(path.stem) for path in tmp_path.glob("*.pid")]
        assert len(pids) == 2
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)


def record_pid_and_sleep(folder):
    """Write this process's id to FOLDER/PID.pid, then sleep (a job for the workers)."""
    (Path(folder) / f"{os.getpid()}.pid").touch()
    time.sleep(60)


def alive(pid: int) -> bool:
    """Return whether process `pid` runs (a zombie counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_background_job_runs_in_a_worker_and_gives_the_same_result(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "2")
    with workers.BackgroundJob(interrupt_or_sleep, "sleep") as job:
        assert job.result() != os.getpid()  # computed in another process
    with (
        workers.BackgroundJob(fail_on_two, 2) as job,
        pytest.raises(ValueError, match="bad value 2"),
    ):
        job.result()
    assert multiprocessing.active_children() == []


def test_background_job_with_one_worker_runs_here_when_asked(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "1")

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started")

    monkeypatch.setattr(workers, "ProcessPoolExecutor", no_pool)
    with workers.BackgroundJob(interrupt_or_sleep, "sleep") as job:
        assert job.result() == os.getpid()


def test_small_background_job_runs_here_unless_workers_are_asked_for(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV, raising=False)

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started")

    monkeypatch.setattr(workers, "ProcessPoolExecutor", no_pool)
    with workers.BackgroundJob(fail_on_two, 1, small=True) as job:
        assert job.result() == 1
