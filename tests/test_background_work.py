"""Work beside the forward passes: the weight statistics' thread, and the representation
analysis's probes and t-SNE fits started during the extraction."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest
from cards import TINY_SHOWCASE_TEXTS, write_card

from generator.analyze import prefetch, projections
from generator.analyze.prefetch import Prefetch, job_key, prefetching
from generator.analyze.projections import fitted, reference_jobs, tsne
from generator.build import build_cards
from generator.card import load_card
from generator.extract.background import BackgroundStep


def test_background_step_returns_its_value_and_times_its_thread():
    gate = threading.Event()

    def work(a, b):
        gate.wait(5)
        return a + b, threading.get_ident()

    job = BackgroundStep("adding", work, 2, 3)
    gate.set()
    value, thread = job.result()
    assert value == 5 and thread != threading.get_ident()  # ran in its own thread
    assert job.seconds >= 0.0 and job.cpu_seconds >= 0.0


def test_background_step_raises_the_error_of_its_function():
    def fail():
        raise ValueError("bad tensor")

    job = BackgroundStep("failing", fail)
    with pytest.raises(ValueError, match="bad tensor"):
        job.result()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_background_step_runs_at_a_lower_priority_than_its_caller():
    def niceness():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    ours = niceness()
    theirs = BackgroundStep("nice", niceness, niceness=10).result()
    assert theirs == min(19, ours + 10)
    assert niceness() == ours  # the caller's own priority is untouched


def test_job_key_names_the_function_and_the_values_not_their_dtype_or_layout():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5)).astype(np.float32)
    init = rng.normal(size=(30, 2))
    wide = np.asarray(x, dtype=np.float64)
    assert job_key(tsne, (x, init)) == job_key(tsne, (wide, init))  # float32 widens exactly
    assert job_key(tsne, (np.asfortranarray(wide), init)) == job_key(tsne, (wide, init))
    changed = wide.copy()
    changed[3, 1] = np.nextafter(changed[3, 1], np.inf)
    assert job_key(tsne, (changed, init)) != job_key(tsne, (wide, init))
    assert job_key(tsne, (wide, init[::-1])) != job_key(tsne, (wide, init))
    assert job_key(reference_jobs, (wide, init)) != job_key(tsne, (wide, init))
    labels = np.array(["a", "b"])
    assert job_key(tsne, (labels,)) == job_key(tsne, (labels.copy(),))
    assert job_key(tsne, (labels,)) != job_key(tsne, (labels[::-1],))


def test_prefetched_jobs_are_taken_once_and_equal_jobs_run_later(monkeypatch):
    monkeypatch.setenv("MODELATLAS_WORKERS", "2")
    rng = np.random.default_rng(1)
    layers = [rng.normal(size=(40, 6)).astype(np.float32) for _ in range(3)]
    jobs = reference_jobs(layers)
    with prefetching() as early:
        early.submit(tsne, jobs[:2])  # the third is not started: fitted when asked for
        assert early.started == 2
        early.wait()
        made = fitted([(np.asarray(x, dtype=np.float64), init) for x, init in jobs])
        assert early.taken == 2
        assert early.take(tsne, *jobs[0]) is None  # each job is handed out once
    for (x, init), ours in zip(jobs, made, strict=True):
        assert ours.tobytes() == tsne(x, init).tobytes()


def started_jobs(early: Prefetch, timeout: float = 60.0) -> None:
    """Wait until every job submitted to `early` is running or done."""
    deadline = time.monotonic() + timeout
    while not all(f.running() or f.done() for f in early._futures.values()):
        assert time.monotonic() < deadline, "the prefetch workers did not start"
        time.sleep(0.05)


def test_a_job_still_running_is_waited_for(monkeypatch):
    monkeypatch.setenv("MODELATLAS_WORKERS", "2")
    rng = np.random.default_rng(4)
    jobs = reference_jobs([rng.normal(size=(300, 12)) for _ in range(2)])
    with prefetching() as early:
        early.submit(tsne, jobs)  # one per worker: both begin
        started_jobs(early)
        made = fitted(jobs)  # asked for at once: taken running, finished within the grace
        assert early.taken == 2
    for (x, init), ours in zip(jobs, made, strict=True):
        assert ours.tobytes() == tsne(x, init).tobytes()


def test_a_job_not_finished_within_the_grace_is_run_again(monkeypatch):
    monkeypatch.setenv("MODELATLAS_WORKERS", "2")
    monkeypatch.setattr(prefetch, "RUNNING_GRACE", 0.0)
    ran = []
    monkeypatch.setattr(
        prefetch, "run_jobs", lambda f, jobs, small: ran.extend(jobs) or [f(*job) for job in jobs]
    )
    rng = np.random.default_rng(3)
    layers = [rng.normal(size=(1500, 30)) for _ in range(2)]  # seconds each at niceness 19
    jobs = reference_jobs(layers)
    with prefetching() as early:
        early.submit(tsne, jobs)  # one per worker
        made = fitted(jobs)  # asked at once: neither finished (the workers are starting)
    assert len(ran) == 2  # both run again, with no wait
    for (x, init), ours in zip(jobs, made, strict=True):
        assert ours.tobytes() == tsne(x, init).tobytes()


def test_a_taken_job_still_running_past_the_grace_runs_in_this_process(monkeypatch):
    from concurrent.futures import Future

    from generator.analyze.prefetch import TakenJob

    monkeypatch.setattr(prefetch, "RUNNING_GRACE", 0.0)
    never = Future()
    never.set_running_or_notify_cancel()  # running, and never finishing
    assert TakenJob(never, divmod, 17, 5).result() == (3, 2)
    done = Future()
    done.set_result("early")
    assert TakenJob(done, divmod, 17, 5).result() == "early"


def test_no_prefetch_without_workers(monkeypatch):
    monkeypatch.setenv("MODELATLAS_WORKERS", "1")
    early = Prefetch()
    x = np.random.default_rng(2).normal(size=(20, 3))
    early.submit(tsne, reference_jobs([x]))
    assert early.started == 0 and early.take(tsne, *reference_jobs([x])[0]) is None
    early.close()


def test_a_token_embedding_map_made_early_is_taken_and_equals_a_late_one(
    tiny_build, tmp_path, monkeypatch
):
    from generator.analyze.prefetch import TakenJob
    from generator.analyze.weights import embedding_projection, embedding_projection_job
    from generator.artifacts import open_artifacts

    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    monkeypatch.setattr(projections, "MIN_POOLED_SAMPLES", 0)  # a worker even for the tiny sample
    monkeypatch.setenv("MODELATLAS_WORKERS", "2")
    sample = artifacts.array("weights/embedding_sample")  # float32, as the extraction reads it
    seed = artifacts.manifest["weights"]["embeddings"]["settings"]["seed"]
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "early"))  # fitted, not read back
    with prefetching() as early:
        early.submit(embedding_projection, [(np.array(sample), seed)])
        early.wait()
        job = embedding_projection_job(artifacts)
        assert isinstance(job, TakenJob) and early.taken == 1
        made = job.result()
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "late"))
    with prefetching():  # nothing started: the analysis starts its own job
        late = embedding_projection_job(artifacts)
        assert not isinstance(late, TakenJob)
        with late:
            again = late.result()
    for name in ("pca", "tsne", "pca_explained"):
        assert made[name].tobytes() == again[name].tobytes(), name


@pytest.mark.parametrize("weights_done", [True, False])
def test_a_build_starts_the_token_embedding_maps_first_once_the_weights_are_done(
    weights_done, tiny_build, tmp_path, monkeypatch
):
    """After the corpus pass the extraction submits the embedding maps before the
    representation maps when the weight statistics are done, and not at all while their thread
    runs. The analysis takes the jobs the extraction started (same inputs, same bits), and the
    weights and representation tables are the same bytes as those of the shared build, whose
    tiny corpus is below the workers' threshold (lowered here so that the build starts early)."""
    from generator.analyze.weights import embedding_projection

    card_path, _, artifacts_root = tiny_build
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "cache"))  # every map fitted again
    monkeypatch.setattr(projections, "MIN_POOLED_SAMPLES", 0)  # `worth_workers` reads it
    monkeypatch.setenv("MODELATLAS_WORKERS", "2")
    monkeypatch.setattr(  # decided here, not by the race between the thread and the corpus pass
        BackgroundStep, "done", lambda self: self._thread.join() or True if weights_done else False
    )
    submitted, counts, asked = [], [], []
    submit, close, take = Prefetch.submit, Prefetch.close, Prefetch.take

    def recorded(self, function, jobs):
        submitted.append((function.__name__, len(jobs)))
        submit(self, function, jobs)

    def counted(self):
        counts.append((self.started, self.taken))
        close(self)

    def found(self, function, *args):
        asked.append((function.__name__, job_key(function, args) in self._futures))
        return take(self, function, *args)

    monkeypatch.setattr(Prefetch, "submit", recorded)
    monkeypatch.setattr(Prefetch, "close", counted)
    monkeypatch.setattr(Prefetch, "take", found)
    root = tmp_path / "early"
    card = write_card(root / "cards", showcase_texts=TINY_SHOWCASE_TEXTS)
    assert card.read_text() == card_path.read_text()
    build_cards([load_card(card)], root / "site", root / "artifacts", strict=True, progress=False)
    embedding = [embedding_projection.__name__] if weights_done else []
    assert [name for name, _ in submitted] == [*embedding, "layer_scores", "tsne"]
    if weights_done:
        assert submitted[0][1] == 1  # tiny-bert ties its embeddings: one sample
    ((started, taken),) = counts
    assert started > 0 and 0 <= taken <= started  # finished early jobs are used, not others
    # the analysis asks for the jobs the extraction started and takes them: same inputs, same bits
    assert {name for name, _ in asked} >= {"tsne", "layer_scores", embedding_projection.__name__}
    for name, present in asked:
        assert present == (weights_done or name != embedding_projection.__name__), name
    assert prefetch.active_prefetch() is None  # the build's prefetch ended with it
    tables = ["weights_embeddings", "weights_output_embeddings"]
    tables += [f"representation_{table}" for table in ("projections", "separability")]
    tables += [f"representation_{table}" for table in ("predictions", "summary")]
    for table in tables:
        name = f"tiny-bert/analyses/{table}.json"
        early = (root / "artifacts" / name).read_bytes()
        assert early == (artifacts_root / name).read_bytes(), table
    for table in ("weights_embeddings", "representation_projections"):
        assert b'"tsne"' in (root / "artifacts" / f"tiny-bert/analyses/{table}.json").read_bytes()
