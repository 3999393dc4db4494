"""TorchInductor in configurations other than the default: Inductor config patches, a torch.compile
mode, and dynamic shapes run on two shapes of the same graph."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from fuzzer.core.testcase import TestCase
from fuzzer.generate.symbolic import SymbolicGraph
from oracles.backends.pytorch import Inductor
from specs.lowering import GraphModule


class InductorConfigured(Inductor):
    """torch.compile with `config` patched into torch._inductor.config while it compiles, and `mode`."""

    config: ClassVar[dict[str, Any]] = {}
    mode: ClassVar[str | None] = None
    dynamic: ClassVar[bool] = False

    def compile(self, converted: GraphModule, case: TestCase) -> Any:
        compiled = torch.compile(converted, backend="inductor", fullgraph=True, dynamic=self.dynamic, mode=self.mode)
        with torch._inductor.config.patch(self.config), torch.no_grad():
            for inputs in self.compile_inputs(converted, case):
                compiled(*inputs)  # torch.compile is lazy: the first call is the compilation
        return compiled

    def compile_inputs(self, module: GraphModule, case: TestCase) -> list[list[torch.Tensor]]:
        """The input sets to call the compiled module with before `run`: the case's own."""
        return [tensors(case.inputs[name] for name in case.graph.inputs)]


class InductorFreezing(InductorConfigured):
    """Weights folded into the graph as constants (freezing), as inference deployments compile."""

    name = "inductor-freezing"
    config: ClassVar[dict[str, Any]] = {"freezing": True}


class InductorCppWrapper(InductorConfigured):
    """The generated C++ wrapper instead of the Python one around the kernels."""

    name = "inductor-cpp-wrapper"
    config: ClassVar[dict[str, Any]] = {"cpp_wrapper": True}


class InductorMaxAutotune(InductorConfigured):
    """Autotuned kernel choices and coordinate-descent tuning, without CUDA graphs."""

    name = "inductor-max-autotune"
    mode = "max-autotune-no-cudagraphs"


class InductorDynamic(InductorConfigured):
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


def tensors(arrays: Any) -> list[torch.Tensor]:
    return [torch.from_numpy(np.array(array)) for array in arrays]


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
