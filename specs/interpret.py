"""The one graph interpreter: every stage that computes a graph node by node in torch walks it here
(eager evaluation, the torch module, jittered rounding samples, the input search)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from fuzzer.core.ir import Graph, Node
from specs.base import OpSpec, spec_of

# Computes one node in place of its spec's torch lowering; None leaves the node out, and with it
# every node that reads its outputs.
Step = Callable[[int, Node, OpSpec, list[torch.Tensor]], Sequence[torch.Tensor] | None]


def node_outputs(spec: OpSpec, args: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The spec's torch lowering applied to `args`, as a list of outputs."""
    result = spec.to_torch(*args)
    return list(result) if isinstance(result, tuple) else [result]


def _plain(index: int, node: Node, spec: OpSpec, args: list[torch.Tensor]) -> list[torch.Tensor]:
    return node_outputs(spec, args)


def interpret(
    graph: Graph,
    leaves: dict[str, torch.Tensor],
    step: Step = _plain,
    specs: Sequence[OpSpec] | None = None,
) -> dict[str, torch.Tensor]:
    """Every tensor the graph computes from `leaves`, by name; `specs` may pass the nodes' specs
    already built (they are the same for every run of one graph)."""
    env = dict(leaves)
    left_out: set[str] = set()
    for index, node in enumerate(graph.nodes):
        if left_out.intersection(node.inputs):
            left_out.update(node.outputs)
            continue
        spec = specs[index] if specs is not None else spec_of(node)
        outputs = step(index, node, spec, [env[name] for name in node.inputs])
        if outputs is None:
            left_out.update(node.outputs)
        else:
            env.update(zip(node.outputs, outputs))
    return env


def evaluate(graph: Graph, values: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Every tensor of the graph computed in torch eager, without autograd."""
    with torch.no_grad():
        return interpret(graph, {name: torch.from_numpy(np.array(v)) for name, v in values.items()})
