from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer.generate import generate
from fuzzer.testcase import TestCase
from fuzzer.values import sample_values
from oracles.registry import BackendNotFound, load_backend
from oracles.worker import BackendWorker

FAULTY = "tests.oracles.faulty_backends"


@pytest.fixture(scope="module")
def case() -> TestCase:
    graph = generate(2)
    return TestCase(graph, sample_values(graph, 2).values)


def test_segfaulting_backend_becomes_died_outcome_and_is_replaced(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:Segfault", timeout=30)
    try:
        worker.start()
        first = worker.run(case)
        assert first.status == "died" and first.exc_type == "SIGSEGV" and first.phase == "compile"
        assert "Fatal Python error" in first.details
        second = worker.run(case)
        assert second.status == "died" and worker.restarts == 1
    finally:
        worker.close()


def test_hanging_backend_times_out_and_is_replaced(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:Hang", timeout=2)
    try:
        worker.start()
        outcome = worker.run(case)
        assert outcome.status == "timeout" and outcome.phase == "compile"
        assert worker.run(case).status == "timeout" and worker.restarts == 1
    finally:
        worker.close()


def test_exception_is_an_error_outcome_and_the_worker_lives_on(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:Raises", timeout=30)
    try:
        worker.start()
        outcome = worker.run(case)
        assert (outcome.status, outcome.phase, outcome.exc_type) == ("error", "compile", "RuntimeError")
        assert "planted failure" in outcome.message
        worker.run(case)
        assert worker.restarts == 0
    finally:
        worker.close()


def test_unknown_backends_are_clear_errors() -> None:
    with pytest.raises(BackendNotFound, match="unknown backend 'nope'"):
        load_backend("nope")
    with pytest.raises(BackendNotFound, match="cannot import"):
        load_backend("no_such_module:Thing")
    with pytest.raises(BackendNotFound, match="not a dlfuzz Backend"):
        load_backend("json:JSONDecoder")


def test_backends_plug_in_through_the_entry_point_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "demo_backend-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-backend\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[dlfuzz.backends]\ndemo = {FAULTY}:Raises\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    backend, source = load_backend("demo")
    assert backend.name == "raises" and source == f"{FAULTY}:Raises"
