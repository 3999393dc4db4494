"""Batched compiles: K cases as one graph, split back per case, and never a verdict of the batch's own."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import sample_values
from fuzzer.judge import judge_case, judge_cases
from oracles.session import OracleSession
from tests.fuzzer.conftest import FAULTY, PLANTED_OPS, cases_with_sigmoid

BATCHING = ("BatchedCrashOnSigmoid", "BatchedWrongOnSigmoid", "WrongWhenBatched")
BATCH_SIZES = {"batched-crash-sigmoid": 4, "batched-wrong-sigmoid": 4, "wrong-when-batched": 4}


@pytest.fixture(scope="module")
def batching_session() -> Iterator[OracleSession]:
    with OracleSession(["eager", "ort-noopt", *(f"{FAULTY}:{name}" for name in BATCHING)], timeout=60) as session:
        yield session


def cases_without_sigmoid(count: int) -> list[TestCase]:
    options = GenOptions(max_nodes=6, ops=tuple(op for op in PLANTED_OPS if op != "Sigmoid"))
    graphs = [generate(seed, options) for seed in range(count)]
    return [TestCase(graph, sample_values(graph, seed).values, {"seed": seed}) for seed, graph in enumerate(graphs)]


def test_a_batch_splits_outputs_back_per_case_and_bisects_a_crash(batching_session: OracleSession) -> None:
    plain = cases_without_sigmoid(3)
    cases = [plain[0], plain[1], cases_with_sigmoid(1)[0], plain[2]]
    runs = batching_session.run_many(cases, {"batched-crash-sigmoid": 4})
    crashing = [run["batched-crash-sigmoid"] for run in runs]
    assert [o.status for o in crashing] == ["ok", "ok", "error", "ok"]
    assert [o.batch for o in crashing] == [2, 2, 1, 1]  # halves, then the crashing half case by case
    assert "planted crash" in (crashing[2].message or "")
    for case, run in zip(cases, runs):
        assert set(run) == {
            "eager",
            "ort-noopt",
            "batched-crash-sigmoid",
            "batched-wrong-sigmoid",
            "wrong-when-batched",
        }
        if run["batched-crash-sigmoid"].status == "ok":
            for name in case.graph.outputs:
                np.testing.assert_array_equal(run["batched-crash-sigmoid"].outputs[name], run["eager"].outputs[name])


def test_batched_verdicts_are_those_of_cases_run_alone(batching_session: OracleSession) -> None:
    cases = [*cases_without_sigmoid(3), *cases_with_sigmoid(3)]
    batched = judge_cases(batching_session, cases, [None] * len(cases), BATCH_SIZES)
    for case, (outcomes, verdict, own_seconds) in zip(cases, batched):
        _, alone = judge_case(batching_session, case, None)
        assert verdict.kind == alone.kind and verdict.statuses == alone.statuses
        assert {(f.backend, f.symptom) for f in verdict.findings} == {(f.backend, f.symptom) for f in alone.findings}
        assert outcomes["wrong-when-batched"].status == "ok"  # wrong in every batch, right alone
        assert own_seconds["compare"] >= 0 and own_seconds["ipc"] >= 0
        for finding in verdict.findings:
            assert outcomes[finding.backend].batch == 1, "a finding must come from its case run alone"
    assert any(outcomes["batched-wrong-sigmoid"].batch > 1 for outcomes, _, _ in batched[:3])
