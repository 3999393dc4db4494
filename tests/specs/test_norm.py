"""Corners of the normalization specs, and the reasons some ONNX forms are not generated."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper
import onnxruntime
import pytest
import torch

from fuzzer.generate.generator import GenOptions, generate
from specs import REGISTRY, AbsTensor
from specs.values import Values
from tests.specs.single_node import run_both

RNG = np.random.default_rng(0)


def one_node_model(op: str, dtype: int, shape: list[int], **attrs: object) -> onnx.ModelProto:
    node = onnx.helper.make_node(op, ["x"], ["y"], **attrs)
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("x", dtype, shape)],
        [onnx.helper.make_tensor_value_info("y", dtype, shape)],
    )
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)], ir_version=9)


def test_group_normalization_18_is_rejected_by_the_checker_so_it_is_not_generated() -> None:
    model = one_node_model("GroupNormalization", onnx.TensorProto.FLOAT, [1, 2, 3], num_groups=1)
    with pytest.raises(onnx.checker.ValidationError, match="deprecated"):
        onnx.checker.check_model(model, full_check=True)
    assert "GroupNormalization" not in REGISTRY


def test_mean_variance_normalization_of_double_fails_in_onnx_runtime_so_it_is_float_only() -> None:
    model = one_node_model("MeanVarianceNormalization", onnx.TensorProto.DOUBLE, [2, 3], axes=[1])
    with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.Fail, match="bound to different types"):
        onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert REGISTRY["MeanVarianceNormalization"].dtypes == (("float32",),)


def test_lrn_of_even_size_is_rejected_by_onnx_runtime_so_it_is_not_drawn() -> None:
    model = one_node_model("LRN", onnx.TensorProto.FLOAT, [1, 4, 2, 2], size=2)
    with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.Fail, match="size_ % 2 == 1"):
        onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_lrn_channel_window_matches_onnx_runtime(size: int, dtype: type) -> None:
    x = RNG.uniform(-3, 3, (2, 6, 2, 3)).astype(dtype)
    attrs = {"size": size, "alpha": 0.5, "beta": 0.75, "bias": 1.0}
    (eager,), (ort,) = run_both("LRN", attrs, x)
    np.testing.assert_allclose(eager, ort, rtol=1e-2 if dtype == np.float16 else 1e-5, atol=1e-3)


@pytest.mark.parametrize("scale_shape", [(4,), (1, 4), (3, 1), (2, 3, 4), ()])
def test_layer_norm_scale_and_bias_broadcast_one_way_to_x(scale_shape: tuple[int, ...]) -> None:
    x = RNG.uniform(-3, 3, (2, 3, 4)).astype(np.float32)
    scale, bias = (RNG.uniform(-2, 2, scale_shape).astype(np.float32) for _ in range(2))
    attrs = {"axis": 1, "onnx_axis": -2, "epsilon": 1e-5, "exact_params": False}
    (eager,), (ort,) = run_both("LayerNormalization", attrs, x, scale, bias)
    np.testing.assert_allclose(eager, ort, rtol=1e-4, atol=1e-5)


def test_layer_norm_scale_dims_must_equal_those_of_x_or_be_one() -> None:
    broadcast = REGISTRY["LayerNormalization"]({"axis": 1, "onnx_axis": 1, "epsilon": 1e-5, "exact_params": False})
    x = AbsTensor([2, 3, 4], "float32")
    assert False in broadcast.requires([x, AbsTensor([2, 4], "float32")])
    assert False not in broadcast.requires([x, AbsTensor([3, 1], "float32")])
    exact = REGISTRY["LayerNormalization"](broadcast.attrs | {"exact_params": True})
    assert False in exact.requires([x, AbsTensor([3, 1], "float32")])


def test_groups_must_spread_against_their_mean_more_in_float16_than_in_double() -> None:
    spec = REGISTRY["InstanceNormalization"]({"epsilon": 1e-3})
    offset = torch.tensor([[[100.0, 101.0]]])  # variance 0.25, but float16 rounds a mean of 100.5 by 0.03
    scale = bias = torch.ones(1)
    assert spec.domain_loss(offset.double(), scale, bias).item() == 0.0
    assert spec.domain_loss(offset.half(), scale, bias).item() > 0
    assert spec.domain_loss(torch.tensor([[[-2.61, -2.729]]]).double(), scale, bias).item() > 0  # nearly constant


def test_float32_groups_may_spread_less_than_float16_ones() -> None:
    """Seen: MeanVarianceNormalization(Softmax(w)) and MeanVarianceNormalization(LpNormalization(w)) in float32,
    whose groups of values below 1 the search rarely spread to variance 0.05; float32's rounding is exact
    enough at a fifth of it, float16's is not."""
    spec = REGISTRY["MeanVarianceNormalization"]({"axes": [0]})
    probabilities = torch.tensor([0.4, 0.3, 0.2, 0.1])  # variance 0.0125
    assert spec.domain_loss(probabilities).item() == spec.domain_loss(probabilities.double()).item() == 0.0
    assert spec.domain_loss(probabilities.half()).item() > 0


def test_batch_norm_variance_input_must_be_positive() -> None:
    spec = REGISTRY["BatchNormalization"]({"epsilon": 1e-5})
    x, ones = torch.zeros(2, 3), torch.ones(3)
    assert spec.domain_loss(x, ones, ones, ones, ones).item() == 0.0
    variance = torch.tensor([1.0, -0.5, 1.0], requires_grad=True)
    loss = spec.domain_loss(x, ones, ones, ones, variance)
    loss.backward()
    assert loss.item() > 0 and variance.grad[1] < 0


def test_layer_norm_scale_and_bias_never_have_more_dims_than_the_normalized_shape() -> None:
    """ONNX asks Scale and B to broadcast to X.shape[axis:]; a longer one only ONNX Runtime accepts
    (regression: TVM's "input axis 3 is out of range" on such a model was filed as a bug)."""
    options = GenOptions(max_nodes=1, ops=("LayerNormalization",), dtypes=("float32",), reuse_probability=0.0)
    for seed in range(60):
        graph = generate(seed, options)
        node = graph.nodes[0]
        normalized = len(graph.types[node.inputs[0]].shape) - node.attrs["axis"]
        assert all(len(graph.types[name].shape) <= normalized for name in node.inputs[1:]), graph.text()


def test_batch_normalization_never_reads_a_variance_that_cannot_be_positive() -> None:
    need = REGISTRY["BatchNormalization"].needs[4]  # seen: var from a Range of -3.5 .. -3, NaN whatever the inputs
    assert not Values(-3.5, -3, fixed=True).meets(need) and not Values(high=0).meets(need)
    assert Values().meets(need)


def test_lp_normalization_keeps_each_elements_sign() -> None:
    """Seen: Sqrt(LpNormalization(Unsqueeze(Selu(x - ReduceMean(x))))): a positive scale per group keeps a
    centered tensor's mixed signs, and a one-signed input's sign."""
    lp = REGISTRY["LpNormalization"]({"axis": 0, "p": 1})
    (mixed,) = lp.values([Values(centered=True)])
    assert mixed.centered and not mixed.meets(REGISTRY["Sqrt"].needs[0])
    (positive,) = lp.values([Values(low=0.5)])
    assert (positive.low, positive.high) == (0.0, 1.0)
    (negative,) = lp.values([Values(high=0.0)])
    assert (negative.low, negative.high) == (-1.0, 0.0)
    x = torch.tensor([[3.0, -1.0], [-1.0, 2.0]])
    assert (lp.to_torch(x).sign() == x.sign()).all()
