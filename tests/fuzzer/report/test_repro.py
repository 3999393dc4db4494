"""The reproducer of each system variant: written, run isolated, and quoting the exact configuration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fuzzer.judge.compare import Finding, judge
from fuzzer.judge.rounding import refine
from fuzzer.report.bug import write_bug
from fuzzer.report.repro import EXPECTED, write_repro
from oracles.backends.metamorphic import REWRITE, chosen_rewrite
from oracles.backends.tvm_passes import drawn_passes
from oracles.base import BackendInfo, Outcome
from oracles.registry import METAMORPHIC, REFERENCES, VARIANTS, load_backend
from specs.interpret import evaluate
from tests.fuzzer.handmade import conv_matmul_case

FRONTEND = {"eager": "torch", "ort-noopt": "onnx", "ort": "onnx", "tvm": "onnx", "inductor": "torch"}
CONFIGURATION = {  # what each variant's repro.py must say, besides compiling for its system alone
    "ort-basic": "GraphOptimizationLevel.ORT_ENABLE_BASIC",
    "ort-extended": "GraphOptimizationLevel.ORT_ENABLE_EXTENDED",
    "tvm-passes": f"PASSES = {list(drawn_passes(3))!r}",
    "inductor-freezing": "CONFIG = {'freezing': True}",
    "inductor-cpp-wrapper": "CONFIG = {'cpp_wrapper': True}",
    "inductor-max-autotune": "MODE = 'max-autotune-no-cudagraphs'",
    "inductor-dynamic": "DYNAMIC = True",
    "tvm-meta": 'MODEL = HERE / "equivalent.onnx"',
    "ort-meta": "GraphOptimizationLevel.ORT_ENABLE_ALL",
    "inductor-meta": "DYNAMIC = False",
    "inductor-grad": "BACKWARD = True",
    "inductor-aot": "AOT = True",
}
SLOW = ("inductor-aot",)  # AOTInductor builds a C++ package: a minute or more


@pytest.mark.parametrize("variant", [pytest.param(v, marks=pytest.mark.slow) if v in SLOW else v for v in VARIANTS])
def test_variant_repro_runs_isolated_in_the_variants_configuration(tmp_path: Path, variant: str) -> None:
    case = conv_matmul_case(seed=3)
    right = evaluate(case.graph, case.values)["t4"].numpy()
    outcomes = {name: Outcome("ok", {"t4": right}) for name in REFERENCES}
    outcomes[variant] = Outcome("ok", {"t4": right + np.float32(0.5)})  # a planted miscompilation
    rewrite = chosen_rewrite(case)
    if variant in METAMORPHIC and rewrite:  # right on the original, wrong on the equivalent graph
        outcomes[variant].baseline, outcomes[variant].drawn = {"t4": right}, {REWRITE: rewrite.to_json()}
    infos = {
        name: BackendInfo(
            name,
            FRONTEND[VARIANTS.get(name, name)],
            name in REFERENCES,
            "1",
            "x",
            readouts=load_backend(name)[0].readouts,
        )
        for name in outcomes
    }
    finding = refine(case, outcomes, judge(outcomes, infos), infos).findings[0]
    meta = write_bug(tmp_path, "sig", finding, case, outcomes, infos)
    # the real system computes this graph right, so the planted mismatch does not reproduce
    assert meta["repro"]["exit_code"] == 0 and meta["repro"]["reproduced"] is False, meta["repro"]["output"]
    assert CONFIGURATION[variant] in (tmp_path / "repro.py").read_text()
    assert meta["project"] in ("ONNX Runtime", "Apache TVM", "PyTorch (TorchInductor)")
    if variant in METAMORPHIC:
        assert meta["rewrite"]["equivalence"] == rewrite.equivalence and (tmp_path / "equivalent").is_dir()


def test_a_tvm_passes_repro_runs_the_pass_list_pinned_in_the_case(tmp_path: Path) -> None:
    case = conv_matmul_case(seed=3)
    case.meta["passes"] = ["FoldConstant", "LegalizeOps"]  # what the reducer left of the drawn list
    write_repro(tmp_path, Finding("tvm-passes", "mismatch", "ort-noopt"), case, None)
    assert "PASSES = ['FoldConstant', 'LegalizeOps']" in (tmp_path / "repro.py").read_text()


def test_a_tvm_passes_repro_keeps_the_weights_as_parameters_until_the_list_binds_them(tmp_path: Path) -> None:
    case = conv_matmul_case(seed=3)
    case.meta["passes"] = ["ConvertLayout", "BindParams", "FoldConstant", "LegalizeOps"]
    right = evaluate(case.graph, case.values)["t4"].numpy()
    outcomes = {name: Outcome("ok", {"t4": right}) for name in REFERENCES}
    outcomes["tvm-passes"] = Outcome("ok", {"t4": right + np.float32(0.5)})
    infos = {
        name: BackendInfo(name, "onnx" if name != "eager" else "torch", name in REFERENCES, "1", "x")
        for name in outcomes
    }
    finding = refine(case, outcomes, judge(outcomes, infos), infos).findings[0]
    meta = write_bug(tmp_path, "sig", finding, case, outcomes, infos)
    assert meta["repro"]["exit_code"] == 0 and meta["repro"]["reproduced"] is False, meta["repro"]["output"]
    assert "keep_params_in_input=BIND in PASSES" in (tmp_path / "repro.py").read_text()


@pytest.mark.parametrize(("variant", "readout"), [("inductor-grad", "grad:w"), ("inductor-dynamic", "shape2:t4")])
def test_the_repro_of_a_readout_computes_it_and_expects_it(tmp_path: Path, variant: str, readout: str) -> None:
    test_variant_repro_runs_isolated_in_the_variants_configuration(tmp_path, variant)
    assert readout in json.loads((tmp_path / EXPECTED).read_text())
