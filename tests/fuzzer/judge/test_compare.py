from __future__ import annotations

import numpy as np

from fuzzer.inputs.sampling import Uncomparable
from fuzzer.judge.compare import compare_outputs, crashes_only, judge
from oracles.base import BackendInfo, Outcome

INFOS = {
    "eager": BackendInfo("eager", "torch", True, "1", "x"),
    "ort-noopt": BackendInfo("ort-noopt", "onnx", True, "1", "x"),
    "ort": BackendInfo("ort", "onnx", False, "1", "x"),
    "inductor": BackendInfo("inductor", "torch", False, "1", "x"),
}


NAN_AT_LOG = Uncomparable("nonfinite", 2, "Log")


def ok(value: np.ndarray) -> Outcome:
    return Outcome("ok", {"y": value})


def test_float_tolerance_is_relative_and_ints_are_exact() -> None:
    a = np.array([1000.0, 1.0], np.float32)
    assert compare_outputs({"y": a}, {"y": a * (1 + 1e-4)}) is None
    small = np.array([1.0, 2.0], np.float32)
    assert compare_outputs({"y": small}, {"y": small + np.float32(0.5)}).reason == "values"
    ints = np.array([1, 2], np.int64)
    assert compare_outputs({"y": ints}, {"y": ints + 1}).measures["mismatched"] == 2


def test_shape_and_dtype_differences_are_discrepancies() -> None:
    a = np.zeros((2, 3), np.float32)
    assert compare_outputs({"y": a}, {"y": a.reshape(3, 2)}).reason == "shape"
    assert compare_outputs({"y": a}, {"y": a.astype(np.float64)}).reason == "dtype"


def test_reference_disagreement_is_invalid_not_a_compiler_bug() -> None:
    y = np.ones(3, np.float32)
    verdict = judge({"eager": ok(y), "ort-noopt": ok(y * 2), "ort": ok(y * 3)}, INFOS)
    assert verdict.kind == "invalid" and "disagree" in verdict.reason


def test_system_mismatch_and_crash_are_findings() -> None:
    y = np.ones(3, np.float32)
    crash = Outcome("error", phase="compile", exc_type="E", message="boom")
    verdict = judge({"eager": ok(y), "ort-noopt": ok(y), "ort": ok(y * 3), "inductor": crash}, INFOS)
    assert verdict.kind == "crash"
    assert {(f.backend, f.symptom) for f in verdict.findings} == {("ort", "mismatch"), ("inductor", "crash")}
    assert verdict.findings[0].against == "ort-noopt"
    assert verdict.statuses == {"eager": "ok", "ort-noopt": "ok", "ort": "mismatch", "inductor": "crash"}


def test_nonfinite_references_are_not_compared() -> None:
    y = np.array([np.nan, 1.0], np.float32)
    verdict = judge({"eager": ok(y), "ort-noopt": ok(y), "ort": ok(np.zeros(2, np.float32))}, INFOS)
    assert verdict.kind == "nonfinite" and not verdict.findings


def test_absolute_tolerance_scales_with_the_output_magnitude() -> None:
    want = np.array([500.0, 1e-4], np.float32)
    assert compare_outputs({"y": want}, {"y": want + np.array([0, 0.1], np.float32)}) is None
    assert compare_outputs({"y": want}, {"y": want + np.array([0, 1.0], np.float32)}) is not None


def test_a_case_with_nonfinite_intermediates_is_judged_on_crashes_alone() -> None:
    y = np.ones(3, np.float32)
    crash = Outcome("error", phase="compile", exc_type="E", message="boom")
    mismatch_only = crashes_only(judge({"eager": ok(y), "ort-noopt": ok(y), "ort": ok(y * 3)}, INFOS), NAN_AT_LOG)
    assert mismatch_only.kind == "nonfinite" and not mismatch_only.findings and mismatch_only.statuses["ort"] == "ok"
    assert mismatch_only.reason == NAN_AT_LOG.reason() and "node 2 (Log), then non-finite" in mismatch_only.reason
    with_crash = {"eager": ok(y), "ort-noopt": ok(y), "ort": ok(y * 3), "inductor": crash}
    both = crashes_only(judge(with_crash, INFOS), NAN_AT_LOG)
    assert both.kind == "crash" and [(f.backend, f.symptom) for f in both.findings] == [("inductor", "crash")]
    references_apart = crashes_only(judge({"eager": ok(y), "ort-noopt": ok(y * 2), "ort": ok(y)}, INFOS), NAN_AT_LOG)
    assert references_apart.kind == "nonfinite"
    failed = Outcome("error", phase="run", exc_type="E", message="boom")
    assert crashes_only(judge({"eager": failed, "ort-noopt": ok(y), "ort": ok(y)}, INFOS), NAN_AT_LOG).kind == "invalid"


def test_a_case_with_values_out_of_an_ops_domain_is_judged_on_crashes_alone_and_says_where() -> None:
    y = np.ones(3, np.float32)
    flat_group = Uncomparable("out_of_domain", 1, "MeanVarianceNormalization")
    mismatch_only = crashes_only(judge({"eager": ok(y), "ort-noopt": ok(y), "ort": ok(y * 3)}, INFOS), flat_group)
    assert mismatch_only.kind == "out_of_domain" and not mismatch_only.findings
    assert "out of domain at node 1 (MeanVarianceNormalization)" in mismatch_only.reason
