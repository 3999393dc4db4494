"""Readouts: what a backend configuration computes beyond the graph's outputs on the case's values
(gradients, the outputs on a second shape), defined over any torch implementation of the graph, so
that the compiled module, eager in float32 and eager in float64 compute the very same ones and the
judge compares them as it compares outputs. A backend declares the kinds it reads (`Backend.readouts`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import ClassVar

import numpy as np
import torch

from fuzzer.core.dtypes import dtype
from fuzzer.core.ir import Graph
from fuzzer.core.testcase import TestCase
from fuzzer.generate.symbolic import SymbolicGraph
from specs.interpret import Step, interpret

# An implementation of the graph: its outputs, in order, from its leaves by name. A compiled module may
# keep the case's weights as constants and ignore those in `leaves`, where a readout does not vary them.
Run = Callable[[dict[str, torch.Tensor]], list[torch.Tensor]]


class Readout(ABC):
    """Named outputs of one case beyond the graph's own; `of` decides whether the case has them."""

    kind: ClassVar[str]  # what a backend declares, and the prefix of the names it writes
    wrong: ClassVar[str]  # a report's title for a mismatch in it

    @classmethod
    @abstractmethod
    def of(cls, case: TestCase) -> Readout | None:
        """The case's readout, or None where it has none that eager can compute."""

    @property
    @abstractmethod
    def names(self) -> list[str]:
        """The names of its outputs, `<kind>:<leaf or output>`."""

    @abstractmethod
    def read(self, leaves: dict[str, torch.Tensor], run: Run) -> dict[str, torch.Tensor]:
        """The readout's outputs by name, from `leaves` (the case's values in the precision `run` computes in)."""


class Gradients(Readout):
    """The backward pass: the gradient of sum(output * cotangent) over the float outputs with respect to
    every float input and weight, the cotangents fixed random draws from the case's seed. The weights
    are differentiated, so `run` must read them from `leaves`. A leaf the loss does not reach gets a
    zero gradient (an integer path, Floor, a comparison), as eager autograd materializes it."""

    kind = "grad"
    wrong = "wrong gradients"

    def __init__(self, wrt: list[str], cotangents: list[torch.Tensor | None]) -> None:
        self.wrt = wrt
        self.cotangents = cotangents  # per graph output, None for a non-float one

    @classmethod
    def of(cls, case: TestCase) -> Gradients | None:
        """None where no float output or leaf exists, or eager cannot differentiate the graph (an op
        without a derivative formula): the configuration then runs forward only."""
        graph = case.graph
        wrt = [name for name in graph.leaves if dtype(graph.types[name].dtype).is_float]
        generator = torch.Generator().manual_seed(int(case.meta.get("seed", 0)))
        cotangents = [_cotangent(graph, name, generator) for name in graph.outputs]
        if not wrt or all(c is None for c in cotangents):
            return None
        readout = cls(wrt, cotangents)
        try:
            readout.read(case_leaves(case), interpreted(graph))
        except (RuntimeError, NotImplementedError):
            return None
        return readout

    @property
    def names(self) -> list[str]:
        return [f"{self.kind}:{name}" for name in self.wrt]

    def read(self, leaves: dict[str, torch.Tensor], run: Run) -> dict[str, torch.Tensor]:
        return self.forward_and_gradients(leaves, run)[1]

    def forward_and_gradients(
        self, leaves: dict[str, torch.Tensor], run: Run
    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """The graph's outputs and the gradients from one call of `run` in grad mode: a compiled module
        called once more without grad would compile an inference graph besides."""
        with torch.enable_grad():
            wrt = {name: leaves[name].detach().requires_grad_() for name in self.wrt}
            outputs = run({**leaves, **wrt})
            pairs = [(out, c) for out, c in zip(outputs, self.cotangents) if c is not None]
            loss = torch.stack([(out * c.to(out.dtype)).sum().double() for out, c in pairs]).sum()
            if loss.requires_grad:
                grads = torch.autograd.grad(loss, list(wrt.values()), materialize_grads=True)
            else:  # every float output comes from integer paths alone
                grads = tuple(torch.zeros_like(leaf) for leaf in wrt.values())
        forward = [out.detach() for out in outputs]
        return forward, {name: grad.detach() for name, grad in zip(self.names, grads)}


class SecondShape(Readout):
    """The graph's outputs on a second, smaller shape of its inputs that the specs accept with the same
    weights and attributes (the inputs cut to it): a module compiled symbolic in the sizes must get
    both shapes right."""

    kind = "shape2"
    wrong = "wrong result on a second shape"

    def __init__(self, graph: Graph, shapes: dict[str, tuple[int, ...]]) -> None:
        self.graph = graph
        self.shapes = shapes

    @classmethod
    def of(cls, case: TestCase) -> SecondShape | None:
        """None where no input dim can shrink, or eager cannot run the cut inputs (a cut index input
        may point past its data)."""
        smaller = SymbolicGraph(case.graph).smaller_inputs()
        if smaller is None:
            return None
        readout = cls(case.graph, {name: smaller.types[name].shape for name in case.graph.inputs})
        try:
            readout.read(case_leaves(case), interpreted(case.graph))
        except Exception:
            return None
        return readout

    def inputs(self, leaves: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The graph's inputs cut to the second shape, in order."""
        cut = [leaves[name][tuple(slice(0, size) for size in self.shapes[name])] for name in self.graph.inputs]
        return [tensor.contiguous() for tensor in cut]

    @property
    def names(self) -> list[str]:
        return [f"{self.kind}:{name}" for name in self.graph.outputs]

    def read(self, leaves: dict[str, torch.Tensor], run: Run) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            outputs = run({**leaves, **dict(zip(self.graph.inputs, self.inputs(leaves)))})
        return dict(zip(self.names, outputs))


READOUTS: dict[str, type[Readout]] = {cls.kind: cls for cls in (Gradients, SecondShape)}


def readouts_of(case: TestCase, kinds: Collection[str]) -> list[Readout]:
    """The readouts of the given kinds that the case has, in a fixed order."""
    found = [READOUTS[kind].of(case) for kind in sorted(kinds)]
    return [readout for readout in found if readout is not None]


def read_all(readouts: Sequence[Readout], leaves: dict[str, torch.Tensor], run: Run) -> dict[str, np.ndarray]:
    """Every readout's outputs by name, as arrays."""
    return as_arrays({name: t for readout in readouts for name, t in readout.read(leaves, run).items()})


def as_arrays(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Tensors as the arrays an Outcome carries, copied out of torch."""
    return {name: tensor.detach().numpy().copy() for name, tensor in tensors.items()}


def lifted(graph: Graph) -> Graph:
    """The graph with its weights as inputs: the form whose module takes every leaf as an argument,
    as Gradients needs of the run it differentiates."""
    return Graph([*graph.inputs, *graph.weights], [], graph.nodes, graph.outputs, graph.types)


def case_leaves(case: TestCase) -> dict[str, torch.Tensor]:
    """The case's values as torch tensors, copied so that torch never writes into the case."""
    return {name: torch.from_numpy(np.array(value)) for name, value in case.values.items()}


def interpreted(graph: Graph, step: Step | None = None) -> Run:
    """The graph computed node by node in eager (each node by `step` where one is given)."""

    def run(leaves: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        env = interpret(graph, leaves, step) if step else interpret(graph, leaves)
        return [env[name] for name in graph.outputs]

    return run


def _cotangent(graph: Graph, name: str, generator: torch.Generator) -> torch.Tensor | None:
    """A uniform draw in [-1, 1) in the output's dtype, or None for a non-float output."""
    kind = dtype(graph.types[name].dtype)
    if not kind.is_float:
        return None
    draw = torch.rand(graph.types[name].shape, generator=generator, dtype=torch.float64) * 2 - 1
    return draw.to(kind.torch)
