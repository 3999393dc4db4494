from __future__ import annotations

import time

import numpy as np
import pytest

from fuzzer.core.testcase import TestCase
from fuzzer.inputs.sampling import case_uncomparable
from fuzzer.judge import judge_case
from fuzzer.triage.reduce import BudgetSpent, Checker, Failure
from fuzzer.triage.trigger import BROADCAST, ablations, find_triggers
from oracles.session import OracleSession
from tests.fuzzer.conftest import NOOP, layernorm_case, reduce_case


def triggers(session: OracleSession, case: TestCase, backend: str) -> list[str]:
    _, verdict = judge_case(session, case, case_uncomparable(case))
    (finding,) = [f for f in verdict.findings if f.backend == backend]
    return find_triggers(case, Checker(session, Failure.of(finding, case.graph), deadline=float("inf")))


def test_ablations_turn_attributes_plainer_and_expand_broadcast_inputs() -> None:
    (off, left_out) = [
        c.graph for name, c in ablations(reduce_case("ReduceL2", NOOP)) if name == "noop_with_empty_axes"
    ]
    assert off.nodes[0].attrs["noop_with_empty_axes"] == 0 and left_out.nodes[0].attrs["noop_with_empty_axes"] is None
    assert off.types["t0"].shape == (), "re-solved: every axis is reduced now"
    case = layernorm_case((), (1, 3))
    expanded = [c for name, c in ablations(case) if name == BROADCAST]
    assert [(c.graph.types["s"].shape, c.graph.types["b"].shape) for c in expanded] == [((2, 3), (2, 3))]
    assert np.array_equal(expanded[0].values["b"], np.broadcast_to(case.values["b"], (2, 3)))


def test_ablations_are_not_solved_past_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression: the budget held only the backend checks, while re-solving a 10-node graph under each
    # plainer attribute (Z3, up to 3 s a candidate) went on: 28 s of a crash's 5 s filing budget.
    solved = []
    monkeypatch.setattr("fuzzer.triage.trigger._resolved", lambda *args: solved.append(args))
    with pytest.raises(BudgetSpent):
        list(ablations(reduce_case("ReduceL2", NOOP), deadline=time.monotonic() - 1))
    assert solved == []


def test_the_attribute_a_wrong_result_needs_is_its_trigger(faulty_session: OracleSession) -> None:
    assert triggers(faulty_session, reduce_case("ReduceSumSquare", NOOP), "reduce-faults") == ["noop_with_empty_axes"]
    mean = dict(NOOP, axes=[1], onnx_axes=[1], noop_with_empty_axes=0)
    assert triggers(faulty_session, reduce_case("ReduceMean", mean, "int32"), "reduce-faults") == []


def test_secondary_inputs_that_broadcast_are_the_trigger_of_a_crash(faulty_session: OracleSession) -> None:
    for scale, bias in [((), ()), ((1, 3), (2, 1))]:
        assert triggers(faulty_session, layernorm_case(scale, bias), "layernorm-crash") == [BROADCAST]
