"""TorchInductor in configurations other than the default: Inductor config patches, a torch.compile
mode, and dynamic shapes run on two shapes of the same graph."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from fuzzer.core.testcase import TestCase
from fuzzer.generate.symbolic import SymbolicGraph
from oracles.backends.pytorch import Inductor, tensors
from specs.lowering import GraphModule


class InductorFreezing(Inductor):
    """Weights folded into the graph as constants (freezing), as inference deployments compile."""

    name = "inductor-freezing"
    config: ClassVar[dict[str, Any]] = {"freezing": True}


class InductorCppWrapper(Inductor):
    """The generated C++ wrapper instead of the Python one around the kernels."""

    name = "inductor-cpp-wrapper"
    config: ClassVar[dict[str, Any]] = {"cpp_wrapper": True}


class InductorMaxAutotune(Inductor):
    """Autotuned kernel choices and coordinate-descent tuning, without CUDA graphs."""

    name = "inductor-max-autotune"
    mode = "max-autotune-no-cudagraphs"


class InductorDynamic(Inductor):
    """torch.compile(dynamic=True) with every input dim marked dynamic, compiled on a second, smaller
    shape of the graph (solved by the specs, weights kept) and then run on the drawn shape: the
    kernels are symbolic in the sizes, and the judged result comes from sizes they were not traced at."""

    name = "inductor-dynamic"
    dynamic = True

    def compile_inputs(self, module: GraphModule, case: TestCase) -> list[list[torch.Tensor]]:
        drawn = super().compile_inputs(module, case)
        second = second_shape_inputs(module, case)
        for inputs in [*drawn, *([second] if second else [])]:
            for tensor in inputs:
                for dim in range(tensor.dim()):
                    torch._dynamo.maybe_mark_dynamic(tensor, dim)
        return [second] if second else drawn


def second_shape_inputs(module: GraphModule, case: TestCase) -> list[torch.Tensor] | None:
    """The case's inputs cut to a smaller shape the specs accept with the same weights and attributes,
    or None where there is none or eager cannot run it (a cut index input may point past its data)."""
    smaller = SymbolicGraph(case.graph).smaller_inputs()
    if smaller is None:
        return None
    inputs = tensors(
        case.inputs[name][tuple(slice(0, size) for size in smaller.types[name].shape)] for name in case.graph.inputs
    )
    try:
        with torch.no_grad():
            module(*inputs)
    except Exception:
        return None
    return inputs
