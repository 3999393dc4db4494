from __future__ import annotations

import numpy as np
import torch

from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.sampling import random_values
from fuzzer.judge.compare import compare_outputs
from specs import REGISTRY, spec
from specs.interpret import evaluate
from specs.values import Need, Values, constant
from tests.specs.single_node import requirements_hold, run_both

RNG = np.random.default_rng(1)


def window(**attrs: object) -> dict[str, object]:
    return {"auto_pad": "NOTSET", "ceil_mode": 0} | attrs


def test_ceil_mode_never_starts_a_window_in_the_end_pad() -> None:
    # 4 inputs, kernel 2, stride 2: ceil_mode asks for a third window; it starts in the end pad when
    # the pad is at the end (ONNX shape inference counts it, ONNX Runtime and torch drop it).
    attrs = window(kernel_shape=[2], strides=[2], dilations=[1], ceil_mode=1)
    assert not requirements_hold("MaxPool", attrs | {"pads": [0, 1], "indices": False}, [[1, 1, 4]])
    assert requirements_hold("MaxPool", attrs | {"pads": [1, 0], "indices": False}, [[1, 1, 4]])
    assert not requirements_hold("LpPool", attrs | {"pads": [0, 1], "p": 2}, [[1, 1, 4]])


def test_average_pool_ceil_window_past_the_pads_divides_like_onnx_runtime() -> None:
    x = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    for count_include_pad in (0, 1):
        attrs = window(kernel_shape=[3, 2], strides=[2, 2], dilations=[1, 1], pads=[1, 1, 1, 1], ceil_mode=1)
        attrs["count_include_pad"] = count_include_pad
        eager, ort = run_both("AveragePool", attrs, x)
        assert eager[0].shape == (2, 3, 4, 4)
        assert compare_outputs({"y": eager[0]}, {"y": ort[0]}) is None


def test_max_pool_indices_match_onnx_runtime_through_explicit_pads_and_column_major_order() -> None:
    x = RNG.permutation(2 * 3 * 5 * 4).reshape(2, 3, 5, 4).astype(np.float32)  # no ties
    for storage_order in (0, 1):
        attrs = window(kernel_shape=[3, 2], strides=[2, 1], dilations=[1, 2], pads=[2, 0, 1, 1], ceil_mode=1)
        attrs |= {"indices": True, "storage_order": storage_order}
        eager, ort = run_both("MaxPool", attrs, x)
        assert np.array_equal(eager[0], ort[0])
        assert eager[1].dtype == np.int64 and np.array_equal(eager[1], ort[1])


def test_max_pool_tie_loss_is_zero_for_distinct_maxima_and_pulls_ties_apart() -> None:
    attrs = window(kernel_shape=[2], strides=[2], dilations=[1], pads=[0, 0], indices=True, storage_order=0)
    maxpool = spec("MaxPool")(attrs)
    assert float(maxpool.domain_loss(torch.tensor([[[0.0, 1.0, 3.0, 2.0]]]))) == 0.0
    tied = torch.tensor([[[0.0, 1.0, 2.0, 2.0]]], requires_grad=True)
    loss = maxpool.domain_loss(tied)
    assert float(loss.detach()) > 0
    loss.backward()
    assert tied.grad is not None and float(tied.grad.abs().sum()) > 0
    assert spec("MaxPool")(attrs | {"indices": False}).domain_loss(tied) is None


def test_integer_max_pool_in_one_dim_matches_onnx_runtime() -> None:
    x = RNG.integers(-100, 100, (2, 3, 7)).astype(np.int8)
    attrs = window(kernel_shape=[3], strides=[2], dilations=[2], pads=[2, 1], indices=False, storage_order=0)
    eager, ort = run_both("MaxPool", attrs, x)
    assert eager[0].dtype == np.int8 and np.array_equal(eager[0], ort[0])


def test_lp_pool_sums_magnitudes_for_odd_p_over_pads_and_partial_windows() -> None:
    x = -np.abs(RNG.standard_normal((1, 2, 6, 7))).astype(np.float32)  # torch's own lp_pool sums x^p
    for p in (1, 3):
        attrs = window(kernel_shape=[2, 3], strides=[2, 2], dilations=[1, 1], pads=[1, 0, 0, 1], ceil_mode=1, p=p)
        eager, ort = run_both("LpPool", attrs, x)
        assert eager[0].shape == (1, 2, 4, 4)
        assert compare_outputs({"y": eager[0]}, {"y": ort[0]}) is None


def test_global_lp_pool_is_a_p_norm_over_all_spatial_dims() -> None:
    x = RNG.standard_normal((2, 3, 4, 2, 3)).astype(np.float32)
    eager, ort = run_both("GlobalLpPool", {"p": 3}, x)
    expected = (np.abs(x.astype(np.float64)) ** 3).sum(axis=(2, 3, 4), keepdims=True) ** (1 / 3)
    assert np.allclose(eager[0], expected, rtol=1e-5) and np.allclose(ort[0], expected, rtol=1e-5)


def test_every_max_pool_window_holds_a_real_element() -> None:
    """Padding is -inf to MaxPool: a window of padding alone (dilated taps straddling the data) gives -inf."""
    options = GenOptions(max_nodes=1, ops=("MaxPool",), dtypes=("float32",), reuse_probability=0.0)
    for seed in range(200):
        graph = generate(seed, options)
        output = evaluate(graph, random_values(graph, np.random.default_rng(seed)))[graph.outputs[0]]
        assert torch.isfinite(output).all(), graph.text()


def test_a_window_over_padding_zeros_may_hold_only_zeros() -> None:
    # Regression: pools declared nothing, so the generator built Log(AveragePool(Pad(x))) and
    # Acosh(MaxPool(Pad(x))), whose windows inside the padding hold zeros no input value moves.
    padded = Values(0.5, 2.0).union(constant(0))
    attrs = window(kernel_shape=[2], strides=[1], dilations=[1], pads=[0, 0])
    for op, extra in [("MaxPool", {"indices": False}), ("AveragePool", {"count_include_pad": 1}), ("LpPool", {"p": 2})]:
        (pooled,) = REGISTRY[op](attrs | extra).values([padded])
        assert pooled.zeros and not pooled.meets(REGISTRY["Log"].needs[0]), op
    (maxed,) = REGISTRY["MaxPool"](attrs | {"indices": False}).values([Values(-1.0, 3.0)])
    assert (maxed.low, maxed.high) == (-1.0, 3.0) and not maxed.zeros
    (averaged,) = REGISTRY["AveragePool"](attrs | {"count_include_pad": 1}).values([Values(0.5, 3.0)])
    assert (averaged.low, averaged.high) == (0.0, 3.0), "its own pads count as zeros"


def test_a_window_over_a_pads_fill_may_hold_only_that_fill() -> None:
    # Regression: only zeros were tracked, so Log(AveragePool(Pad(x, -1.5))) was drawn over channels
    # of nothing but -1.5 (a 30-node search failure); Floor(MaxPool(Pad(x, 2.0))) likewise.
    padded = Values(0.5, 2.0).union(constant(-1.5))
    attrs = window(kernel_shape=[2], strides=[1], dilations=[1], pads=[0, 0])
    for op, extra in [("MaxPool", {"indices": False}), ("AveragePool", {"count_include_pad": 0})]:
        (pooled,) = REGISTRY[op](attrs | extra).values([padded])
        assert -1.5 in pooled.forced and not pooled.meets(REGISTRY["Log"].needs[0]), op
        assert pooled.meets(REGISTRY["Reciprocal"].needs[0]), op
    (floored,) = REGISTRY["MaxPool"](attrs | {"indices": False}).values([Values(0.5, 2.5).union(constant(2.0))])
    assert not floored.meets(REGISTRY["Floor"].needs[0])
    (normed,) = REGISTRY["LpPool"](attrs | {"p": 2}).values([padded])
    assert not normed.forced, "a norm of a window of -1.5 is no -1.5"


def test_a_global_average_stays_within_its_input_bounds() -> None:
    # Regression: GlobalAveragePool declared nothing, so Sqrt(GlobalAveragePool(LogSoftmax(x))) was
    # drawn (a 20-node search failure): a mean of values <= 0 is never above 0.
    (averaged,) = REGISTRY["GlobalAveragePool"]({}).values([Values(high=0)])
    assert averaged.high == 0 and not averaged.meets(REGISTRY["Sqrt"].needs[0])
    held = REGISTRY["GlobalAveragePool"]({}).to_torch(torch.rand(2, 3, 4, 5, dtype=torch.float64) - 1)
    assert bool((held <= 0).all() and (held >= -1).all())


def test_a_global_norm_is_never_negative() -> None:
    """Seen: Pow(Neg(ReduceMean(GlobalLpPool(x))), y), whose base no input makes positive."""
    (norm,) = REGISTRY["GlobalLpPool"]({"p": 1}).output_values([Values()], 1)
    assert norm.low == 0 and not norm.meets(Need(high=-0.5))
