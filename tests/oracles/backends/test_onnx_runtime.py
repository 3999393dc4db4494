from __future__ import annotations

from pathlib import Path

import onnxruntime
import pytest

from fuzzer.core.testcase import TestCase
from oracles.backends.onnx_runtime import OPTIMIZERS
from oracles.base import Restriction
from oracles.session import OracleSession
from tests.oracles.backends import graphs

BOTH = ("ort", "ort-noopt")


@pytest.mark.parametrize(
    ("case", "fired"),
    [
        (
            graphs.conv1d_relu(),
            {
                "transformer:ConvActivationFusion": 1,
                "fused:com.microsoft.FusedConv+Relu": 1,
                "gained:com.microsoft.FusedConv": 1,
                "lost:Conv": 1,
                "lost:Relu": 1,
            },
        ),
        (
            graphs.matmul_add(),
            {"transformer:MatMulAddFusion": 1, "gained:Gemm": 1, "lost:MatMul": 1, "lost:Add": 1},
        ),
        (graphs.folded_weights(), {"transformer:ConstantFolding": 1, "lost:Add": 1}),
    ],
    ids=["fused-conv", "gemm", "constant-folding"],
)
def test_the_optimized_graph_is_recorded_as_transformers_fusions_and_op_types_gained_and_lost(
    real_session: OracleSession, case: TestCase, fired: dict[str, int]
) -> None:
    outcomes = real_session.run(case, only=BOTH)
    assert outcomes["ort"].status == outcomes["ort-noopt"].status == "ok"
    assert outcomes["ort"].optimizations == fired
    assert outcomes["ort"].summary()["optimizations"] == dict(sorted(fired.items()))
    assert outcomes["ort-noopt"].optimizations == {} and "optimizations" not in outcomes["ort-noopt"].summary()


def test_a_batch_normalization_folded_into_a_layout_transformed_conv_is_recorded(real_session: OracleSession) -> None:
    """ORT saves the NCHWc layout (where the CPU has it) as ONNX nodes of the com.microsoft.nchwc domain."""
    fired = real_session.run(graphs.conv_batchnorm(), only=["ort"])["ort"].optimizations
    assert fired["lost:BatchNormalization"] == 1
    assert fired["transformer:Level1_RuleBasedTransformer"] == 1, "ConvBNFusion is one of its rules"
    assert sum(n for key, n in fired.items() if key.startswith("gained:") and key.endswith("Conv")) == 1


def test_a_graph_with_nothing_to_optimize_records_nothing(real_session: OracleSession) -> None:
    outcomes = real_session.run(graphs.add_relu(), only=BOTH)
    assert outcomes["ort"].status == "ok" and outcomes["ort"].optimizations == {}


def test_a_restriction_runs_a_lower_level_or_without_an_optimizer(real_session: OracleSession) -> None:
    case = graphs.conv1d_relu()
    basic = real_session.run(case, ["ort"], {"ort": Restriction(stages=1)})["ort"]
    without = real_session.run(case, ["ort"], {"ort": Restriction(disabled=("ConvActivationFusion",))})["ort"]
    assert basic.stages == ("basic", "extended", "all") and "ConvActivationFusion" in basic.switches
    assert basic.status == without.status == "ok"
    assert "gained:com.microsoft.FusedConv" not in basic.optimizations
    assert "gained:com.microsoft.FusedConv" not in without.optimizations


def test_every_optimizer_name_is_one_that_ort_holds() -> None:
    """disabled_optimizers ignores a name it does not know: a misspelt one would silently disable nothing.
    A name is a string of ORT's library or, where the compiler inlined it, its class's type name."""
    library = b"".join(path.read_bytes() for path in Path(onnxruntime.__file__).parent.glob("capi/*.so*"))
    spellings = {
        name: (b"\0%s\0" % name.encode(), b"N11onnxruntime%d%sE" % (len(name), name.encode())) for name in OPTIMIZERS
    }
    assert [name for name, known in spellings.items() if not any(s in library for s in known)] == []
