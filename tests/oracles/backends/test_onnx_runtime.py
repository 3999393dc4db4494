from __future__ import annotations

import pytest

from fuzzer.core.testcase import TestCase
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
