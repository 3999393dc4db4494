from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import generate
from fuzzer.inputs.sampling import sample_values
from oracles.registry import BackendNotFound, load_backend
from oracles.session import OracleSession
from oracles.worker import LOG_LIMIT_BYTES, BackendWorker, ChildWorker, death_message
from tests.fuzzer.handmade import conv_matmul_case

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


def test_a_death_is_told_by_its_own_case_not_by_what_earlier_cases_printed(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:NoisyThenSegfault", timeout=30)
    try:
        worker.start()
        assert worker.run(case).status == "ok"
        died = worker.run(case)
        assert died.status == "died" and died.exc_type == "SIGSEGV"
        assert died.message == "worker process ended (SIGSEGV)"
        assert "earlier case" not in died.details and "Fatal Python error" in died.details
    finally:
        worker.close()


def test_faulthandlers_report_names_only_the_signal_so_a_long_module_list_changes_nothing() -> None:
    report = "Fatal Python error: Floating point exception\n\nCurrent thread 0x1 (most recent call first):\n"
    short, long = report + "Extension modules: a, b (total: 2)\n", report + "Extension modules: " + "m, " * 2000
    assert death_message(-8, short) == death_message(-8, long) == "worker process ended (SIGFPE)"
    abort = "terminate called after throwing an instance of 'c10::Error'\n  what():  boom\n"
    assert death_message(-6, abort + report.replace("Floating point exception", "Aborted")).startswith("terminate")


def test_hanging_backend_times_out_and_is_replaced(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:Hang", timeout=2)
    try:
        worker.start()
        outcome = worker.run(case)
        assert outcome.status == "timeout" and outcome.phase == "compile"
        assert worker.run(case).status == "timeout" and worker.restarts == 1
    finally:
        worker.close()


@pytest.mark.parametrize(
    ("backend", "status", "exc_type", "message"),
    [
        ("Aborts", "died", "SIGABRT", "worker process ended (SIGABRT)"),
        ("Exits", "died", "exit 3", "worker process ended (exit 3)"),
        ("Deadlocks", "timeout", None, "no result after 2s"),
        ("EatsMemory", "error", "MemoryError", "Unable to allocate 12.0 GiB"),
    ],
)
def test_each_way_a_backend_fails_is_an_outcome_with_its_signal_and_last_phase(
    case: TestCase, backend: str, status: str, exc_type: str | None, message: str
) -> None:
    worker = BackendWorker(f"{FAULTY}:{backend}", timeout=2)  # the default memory limit, 8 GiB
    try:
        worker.start()
        outcome = worker.run(case)
        assert (outcome.status, outcome.exc_type, outcome.phase) == (status, exc_type, "compile")
        assert outcome.message.startswith(message)
    finally:
        worker.close()


def test_a_worker_killed_from_outside_is_a_died_outcome_with_the_signal(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:Hang", timeout=30)
    try:
        worker.start()
        worker.submit_case(case)
        while worker.stage_name() != "compile":
            time.sleep(0.01)
        os.kill(worker._process.pid, signal.SIGKILL)
        outcome = worker.collect_outcome()
        assert (outcome.status, outcome.exc_type, outcome.phase) == ("died", "SIGKILL", "compile")
        assert outcome.seconds < 30
    finally:
        worker.close()


def test_a_full_disk_is_raised_to_the_caller_not_reported_as_the_compilers_crash(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:DiskFull", timeout=30)
    try:
        worker.start()
        for _ in range(2):
            with pytest.raises(OSError) as raised:
                worker.run(case)
            assert raised.value.errno == errno.ENOSPC and raised.value.filename == "/tmp/dlfuzz-model.onnx"
        assert worker.restarts == 0  # the worker handed the error back and lives on
    finally:
        worker.close()


def test_a_workers_log_stays_bounded_however_much_it_prints(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:Chatty", timeout=30)
    try:
        worker.start()
        for _ in range(8):  # 2.4 MB printed in all
            assert worker.run(case).status == "ok"
            assert worker.request_log().count("\n") == 1000
            assert worker._log.stat().st_size <= LOG_LIMIT_BYTES + 300_000
        assert worker.restarts == 0
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


def test_a_failure_to_record_optimizations_is_logged_and_leaves_the_case_alone(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:RecordingFails", timeout=30)
    try:
        worker.start()
        outcome = worker.run(case)
        assert outcome.status == "ok" and outcome.optimizations == {}
        assert "recording recording-fails's optimizations failed" in worker.request_log()
    finally:
        worker.close()


def test_a_case_that_fails_at_run_time_keeps_what_its_compile_fired(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:FiresThenFailsToRun", timeout=30)
    try:
        worker.start()
        outcome = worker.run(case)
        assert (outcome.status, outcome.phase) == ("error", "run")
        assert outcome.optimizations == {"pass:Planted": 1} == outcome.summary()["optimizations"]
    finally:
        worker.close()


def _no_state() -> tuple[None, str]:
    return None, "ready"


def _trap_or_echo(state: None, stage: object, value: int) -> int:
    if value < 0:
        os.kill(os.getpid(), signal.SIGFPE)
    return value


def test_a_child_that_traps_costs_one_request_and_the_next_starts_a_fresh_one() -> None:
    worker = ChildWorker(_no_state, "test child", ("work",), None, 60)
    try:
        worker.submit(_trap_or_echo, 1)
        assert worker.collect(30).value == 1
        worker.submit(_trap_or_echo, -1)
        died = worker.collect(30)
        assert (died.status, died.exit) == ("died", "SIGFPE")
        worker.submit(_trap_or_echo, 2)
        assert worker.collect(30).value == 2 and worker.restarts == 1
    finally:
        worker.close()


def test_a_metamorphic_oracle_compiling_twice_has_twice_the_time(case: TestCase) -> None:
    worker = BackendWorker(f"{FAULTY}:MetaSlowCompile", timeout=3)
    try:
        worker.start()
        outcome = worker.run(case)
        assert outcome.status == "ok" and outcome.seconds > 3, (outcome.status, outcome.message)
        assert worker.info is not None and worker.info.runs_per_case == 2
    finally:
        worker.close()


def test_another_value_set_of_a_graph_runs_on_its_kept_compile_and_computes_its_own_outputs(
    real_session: OracleSession,
) -> None:
    case = conv_matmul_case()
    rng = np.random.default_rng(5)
    inputs = {name: rng.standard_normal(value.shape).astype(value.dtype) for name, value in case.inputs.items()}
    other = TestCase(case.graph, case.values | inputs, dict(case.meta))
    reweighted = TestCase(case.graph, other.values | {name: 2 * value for name, value in case.weights.items()})
    first, second, again, third = (real_session.run(c) for c in (case, other, other, reweighted))
    for name in ("ort", "tvm", "inductor"):
        assert [o[name].reused for o in (first, second, again, third)] == [False, True, False, False], name
        assert "compile" not in second[name].phase_seconds and "compile" in again[name].phase_seconds
        assert second[name].summary()["reused"] is True
        for output in case.graph.outputs:
            computed, expected = second[name].outputs[output], second["eager"].outputs[output]
            np.testing.assert_allclose(computed, expected, rtol=1e-4, atol=1e-4, err_msg=name)
            assert not np.allclose(computed, first[name].outputs[output]), "the second value set's own outputs"
            np.testing.assert_allclose(
                third[name].outputs[output], third["eager"].outputs[output], rtol=1e-4, atol=1e-4
            )
