"""Readouts through judge_case: eager's gradients and second-shape outputs are the reference, a wrong
backward or a wrong second shape is a mismatch on that readout alone, attributed in float64."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from fuzzer.core.testcase import TestCase
from fuzzer.judge import judge_case
from oracles.session import OracleSession
from tests.fuzzer.handmade import build, conv_matmul_case
from tests.fuzzer.inputs.test_readouts import add_relu_matmul_case

FAULTY = "tests.oracles.faulty_backends"


@pytest.fixture(scope="module")
def session() -> Iterator[OracleSession]:
    backends = ["eager", "ort-noopt", "inductor-grad", f"{FAULTY}:WrongBackward", f"{FAULTY}:WrongAtSecondShape"]
    with OracleSession(backends, timeout=300) as session:
        yield session


@pytest.mark.slow
def test_add_relu_matmul_passes_forward_and_backward(session: OracleSession) -> None:
    outcomes, verdict = judge_case(session, add_relu_matmul_case(), None, ["eager", "ort-noopt", "inductor-grad"])
    assert verdict.kind == "consistent", verdict.to_json()
    grads = {"grad:x", "grad:a", "grad:m"}
    assert set(outcomes["inductor-grad"].outputs) == {"t2", *grads} == set(outcomes["eager"].outputs)
    assert set(outcomes["ort-noopt"].outputs) == {"t2"}


@pytest.mark.slow
def test_a_wrong_backward_and_a_wrong_second_shape_are_found_on_their_readouts(session: OracleSession) -> None:
    outcomes, verdict = judge_case(session, conv_matmul_case(), None)
    found = {f.backend: f for f in verdict.findings}
    assert set(found) == {"wrong-backward", "wrong-at-second-shape"}, verdict.to_json()
    assert found["wrong-backward"].discrepancy.output.startswith("grad:")
    assert found["wrong-at-second-shape"].discrepancy.output == "shape2:t4"
    for finding in found.values():
        assert finding.against == "eager" and finding.attribution["excess"] > 1
        assert finding.attribution["excess_by_backend"]["inductor-grad"] <= 1  # the real one is right
    np.testing.assert_array_equal(outcomes["wrong-backward"].outputs["t4"], outcomes["inductor-grad"].outputs["t4"])


@pytest.mark.slow
def test_an_integer_only_graph_is_judged_forward_only(session: OracleSession) -> None:
    graph = build({"x": ((4,), "int64")}, [("Add", ["x", "x"], {})])
    case = TestCase(graph, {"x": np.arange(4, dtype=np.int64)})
    outcomes, verdict = judge_case(session, case, None, ["eager", "ort-noopt", "inductor-grad"])
    assert verdict.kind == "consistent" and set(outcomes["inductor-grad"].outputs) == {"t0"}
