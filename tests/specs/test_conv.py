from __future__ import annotations

import numpy as np
import pytest
import torch

from fuzzer.generate.generator import GenOptions, generate
from fuzzer.judge.compare import compare_outputs
from specs import REGISTRY
from specs.conv import same_pads, split_pads, torch_pad_order
from specs.values import LEAF
from tests.specs.single_node import requirements_hold, run_both

RNG = np.random.default_rng(0)


def test_same_pads_put_the_odd_pad_where_onnx_says() -> None:
    # size 7, kernel 4, stride 2: 4 outputs need 3 pads in all.
    assert same_pads(7, 4, 2, upper=True) == (1, 2)
    assert same_pads(7, 4, 2, upper=False) == (2, 1)
    assert same_pads(7, 1, 3, upper=True) == (0, 0)  # a narrow kernel asks for a negative pad: none


def test_split_pads_leaves_torch_the_symmetric_part() -> None:
    native, rest = split_pads([1, 3], [2, 0], limits=[5, 5])
    assert native == [1, 0]
    assert rest == torch_pad_order([0, 3, 1, 0]) == [3, 0, 0, 1]


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_auto_pad_with_asymmetric_pads_matches_onnx_runtime(auto_pad: str) -> None:
    x = RNG.standard_normal((1, 2, 7, 6)).astype(np.float32)
    w = RNG.standard_normal((3, 2, 4, 3)).astype(np.float32)
    attrs = {"auto_pad": auto_pad, "strides": [2, 1], "dilations": [1, 1], "group": 1}
    eager, ort = run_both("Conv", attrs, x, w)
    assert compare_outputs({"y": eager[0]}, {"y": ort[0]}) is None


def test_conv_transpose_crops_asymmetric_pads_and_extends_by_output_padding() -> None:
    x = RNG.standard_normal((2, 4, 3, 5)).astype(np.float32)
    w = RNG.standard_normal((4, 3, 3, 2)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    attrs = {
        "auto_pad": "NOTSET",
        "strides": [3, 2],
        "dilations": [2, 1],
        "pads": [0, 2, 3, 1],
        "output_padding": [2, 1],
        "group": 2,
    }
    eager, ort = run_both("ConvTranspose", attrs, x, w, b)
    assert eager[0].shape == (2, 6, 10, 8)
    assert compare_outputs({"y": eager[0]}, {"y": ort[0]}) is None


def test_conv_transpose_same_draws_no_output_padding_and_a_kernel_as_wide_as_the_stride() -> None:
    seen = 0
    for seed in range(200):
        graph = generate(seed, GenOptions(max_nodes=1, ops=("ConvTranspose",), dtypes=("float32",)))
        node = graph.nodes[0]
        if not node.attrs["auto_pad"].startswith("SAME"):
            continue
        seen += 1
        assert set(node.attrs["output_padding"]) == {0}, graph.text()
        kernel = graph.types[node.inputs[1]].shape[2:]
        assert all(k >= s for k, s in zip(kernel, node.attrs["strides"])), graph.text()
    assert seen > 10


def test_conv_transpose_rejects_a_kernel_narrower_than_its_stride_under_same() -> None:
    attrs = {"auto_pad": "SAME_UPPER", "strides": [3], "dilations": [1], "group": 1, "output_padding": [0]}
    assert requirements_hold("ConvTranspose", attrs, [[1, 2, 4], [2, 1, 3]])
    assert not requirements_hold("ConvTranspose", attrs, [[1, 2, 4], [2, 1, 2]])


def test_float16_convolutions_keep_their_sums_short() -> None:
    attrs = {"auto_pad": "VALID", "strides": [1, 1], "dilations": [1, 1], "group": 1}
    assert requirements_hold("Conv", attrs, [[1, 2, 5, 5], [1, 2, 3, 3]], "float16")
    assert not requirements_hold("Conv", attrs, [[1, 4, 5, 5], [1, 4, 3, 3]], "float16")
    assert requirements_hold("Conv", attrs, [[1, 4, 5, 5], [1, 4, 3, 3]], "float32")


def test_a_conv_without_bias_may_hold_zeros_where_its_windows_see_padding_alone() -> None:
    # Regression: Conv declared nothing, and Acosh read a 1-wide Conv padded by 2 whose border
    # windows hold 0 whatever the weights (among the 30-node search failures).
    log = REGISTRY["Log"].needs[0]
    explicit = {"auto_pad": "NOTSET", "pads": [2, 2], "strides": [1], "dilations": [1], "group": 1}
    (bare,) = REGISTRY["Conv"](explicit).output_values([LEAF, LEAF], 1)
    assert bare.zeros and not bare.meets(log)
    (biased,) = REGISTRY["Conv"](explicit).output_values([LEAF, LEAF, LEAF], 1)
    assert biased.meets(log), "those windows hold the bias, which the search moves"
    (same,) = REGISTRY["Conv"](explicit | {"auto_pad": "SAME_UPPER"}).output_values([LEAF, LEAF], 1)
    assert same.meets(log), "SAME pads stay under the kernel"


def test_a_transposed_convolution_without_bias_leaves_zeros_where_no_tap_lands() -> None:
    """Seen: Reciprocal(ConvTranspose(x, w)) with stride 3 and output_padding 2, and Div(Abs(y), y) for y a
    ConvTranspose with stride 2 over a 1-wide kernel: positions between taps and in the padded tail are 0."""
    attrs = {"auto_pad": "NOTSET", "strides": [3], "dilations": [1], "output_padding": [2], "pads": [2, 0], "group": 1}
    (gapped,) = REGISTRY["ConvTranspose"](attrs).values([LEAF, LEAF])
    assert gapped.zeros and not gapped.meets(REGISTRY["Reciprocal"].needs[0])
    (biased,) = REGISTRY["ConvTranspose"](attrs).values([LEAF, LEAF, LEAF])
    assert not biased.zeros
    dense = attrs | {"strides": [1], "output_padding": [0]}
    (covered,) = REGISTRY["ConvTranspose"](dense).values([LEAF, LEAF])
    assert not covered.zeros
    y = torch.nn.functional.conv_transpose1d(torch.ones(1, 1, 1), torch.ones(1, 4, 2), stride=3, output_padding=2)
    assert (y[..., 2:] == 0).all()
