from __future__ import annotations

import numpy as np

from fuzzer.core.ir import Graph, Node, TensorType
from fuzzer.core.testcase import TestCase
from fuzzer.inputs.sampling import Uncomparable
from fuzzer.judge import judge_case
from fuzzer.judge.compare import ORIGINAL, judge
from fuzzer.judge.rounding import float64_outputs, promote, refine
from oracles.base import BackendInfo, Outcome
from oracles.session import OracleSession
from specs.interpret import evaluate
from tests.fuzzer.conftest import cases_with_sigmoid

INFOS = {
    "eager": BackendInfo("eager", "torch", True, "1", "x"),
    "ort-noopt": BackendInfo("ort-noopt", "onnx", True, "1", "x"),
    "ort": BackendInfo("ort", "onnx", False, "1", "x"),
}
VECTOR = TensorType((64,), "float32")


def cancelling_case() -> TestCase:
    """exp(a) - exp(b) with a ~ b ~ 10: float32 rounding of each exp is amplified ~100-fold."""
    graph = Graph(
        ["a", "b"],
        [],
        [Node("Exp", ["a"], ["ea"]), Node("Exp", ["b"], ["eb"]), Node("Sub", ["ea", "eb"], ["y"])],
        ["y"],
        dict.fromkeys(["a", "b", "ea", "eb", "y"], VECTOR),
    )
    rng = np.random.default_rng(0)
    a = (10 + rng.random(64)).astype(np.float32)
    b = (a + 2e-6 * (1 + rng.random(64))).astype(np.float32)
    return TestCase(graph, {"a": a, "b": b})


def relu_case() -> TestCase:
    graph = Graph(["x"], [], [Node("Relu", ["x"], ["y"])], ["y"], {"x": VECTOR, "y": VECTOR})
    return TestCase(graph, {"x": np.linspace(-2, 2, 64, dtype=np.float32)})


def verdict_for(case: TestCase, system: np.ndarray):
    reference = evaluate(case.graph, case.values)["y"].numpy()
    outcomes = {name: Outcome("ok", {"y": reference}) for name in ("eager", "ort-noopt")}
    outcomes["ort"] = Outcome("ok", {"y": system.astype(np.float32)})
    return outcomes, judge(outcomes, INFOS)


def test_promote_widens_floats_and_float_casts_only() -> None:
    graph = Graph(
        ["x"],
        [],
        [Node("Cast", ["x"], ["h"], {"to": "float16"}), Node("Cast", ["h"], ["i"], {"to": "int64"})],
        ["i"],
        {"x": VECTOR, "h": TensorType((64,), "float16"), "i": TensorType((64,), "int64")},
    )
    wide = promote(graph)
    assert [n.attrs["to"] for n in wide.nodes] == ["float64", "int64"]
    assert wide.types["h"].dtype == "float64" and wide.types["i"].dtype == "int64"


def test_a_legal_rounding_difference_amplified_by_the_graph_is_not_reported() -> None:
    case = cancelling_case()
    exp_a, exp_b = (np.exp(case.values[n]) for n in ("a", "b"))
    # an exp that is one ulp off, as fast approximations are: legal, but the Sub amplifies it
    differently_rounded = np.nextafter(exp_a, np.inf) - np.nextafter(exp_b, -np.inf)
    outcomes, verdict = verdict_for(case, differently_rounded)
    assert verdict.kind == "mismatch", "the fixed tolerance alone would call this a bug"
    refined = refine(case, outcomes, verdict, INFOS)
    assert refined.kind == "consistent" and not refined.findings
    assert refined.statuses["ort"] == "ok" and "within amplified rounding: ort" in refined.reason


def test_a_real_deviation_on_the_same_graph_is_still_reported_and_attributed() -> None:
    case = cancelling_case()
    truth = float64_outputs(case)["y"]
    outcomes, verdict = verdict_for(case, truth + 1.0)
    refined = refine(case, outcomes, verdict, INFOS)
    assert refined.kind == "mismatch" and [f.backend for f in refined.findings] == ["ort"]
    attribution = refined.findings[0].attribution
    assert attribution["excess"] > 1 and attribution["agrees_with"] == []
    assert attribution["excess_by_backend"]["eager"] <= 1 and attribution["excess_by_backend"]["ort-noopt"] <= 1


def test_a_small_deviation_on_a_well_conditioned_graph_is_reported() -> None:
    case = relu_case()
    reference = evaluate(case.graph, case.values)["y"].numpy()
    outcomes, verdict = verdict_for(case, reference + 0.01)
    refined = refine(case, outcomes, verdict, INFOS)
    assert refined.kind == "mismatch" and refined.findings[0].attribution["excess"] > 1


def test_shape_discrepancies_are_kept_whatever_the_rounding() -> None:
    case = relu_case()
    outcomes, verdict = verdict_for(case, np.zeros(32))
    refined = refine(case, outcomes, verdict, INFOS)
    assert refined.findings and refined.findings[0].discrepancy.reason == "shape"


def test_references_apart_only_by_amplified_rounding_are_not_our_bug_and_systems_are_judged() -> None:
    case = cancelling_case()
    exp_a, exp_b = (np.exp(case.values[n]) for n in ("a", "b"))
    reference = evaluate(case.graph, case.values)["y"].numpy()
    rounded_otherwise = np.nextafter(exp_a, np.inf) - np.nextafter(exp_b, -np.inf)
    outcomes = {
        "eager": Outcome("ok", {"y": reference}),
        "ort-noopt": Outcome("ok", {"y": rounded_otherwise}),
        "ort": Outcome("ok", {"y": reference + np.float32(1.0)}),
    }
    verdict = judge(outcomes, INFOS)
    assert verdict.kind == "invalid"
    refined = refine(case, outcomes, verdict, INFOS)
    assert refined.kind == "mismatch" and [f.backend for f in refined.findings] == ["ort"]
    assert refined.reason.startswith("references agree within amplified rounding")
    outcomes["ort-noopt"] = Outcome("ok", {"y": reference + np.float32(1.0)})
    assert refine(case, outcomes, judge(outcomes, INFOS), INFOS).kind == "invalid"


def test_a_case_the_search_left_nonfinite_reports_crashes_but_no_wrong_values(planted_session: OracleSession) -> None:
    case = cases_with_sigmoid(1)[0]
    _, finite = judge_case(planted_session, case, None)
    assert {f.symptom for f in finite.findings} == {"crash", "mismatch"}
    _, nonfinite = judge_case(planted_session, case, Uncomparable("nonfinite", 0, case.graph.nodes[0].op))
    assert nonfinite.kind == "crash" and {f.symptom for f in nonfinite.findings} == {"crash"}


def test_a_metamorphic_result_is_judged_against_the_same_compiler_on_the_original_and_the_float64_result() -> None:
    case = cancelling_case()
    truth = float64_outputs(case)["y"]
    exp_a, exp_b = (np.exp(case.values[n]) for n in ("a", "b"))
    rounded = (np.nextafter(exp_a, np.inf) - np.nextafter(exp_b, -np.inf)).astype(np.float32)
    eager = evaluate(case.graph, case.values)["y"].numpy()
    references = {"eager": Outcome("ok", {"y": eager}), "ort-noopt": Outcome("ok", {"y": eager})}

    def refined(original: np.ndarray, equivalent: np.ndarray) -> list:
        outcomes = references | {"ort": Outcome("ok", {"y": equivalent}, baseline={"y": original})}
        return refine(case, outcomes, judge(outcomes, INFOS), INFOS).findings

    assert refined(truth.astype(np.float32), rounded) == [], "another legal rounding of the equivalent graph"
    assert refined(truth.astype(np.float32) + 1, truth.astype(np.float32) + 1) == [], "wrong alike: plain ort's bug"
    (finding,) = refined(truth.astype(np.float32), truth.astype(np.float32) + 1)
    assert finding.against == ORIGINAL and finding.attribution["excess"] > 1
    assert finding.attribution["excess_on_original"] <= 1
