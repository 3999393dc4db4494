"""Re-solve a concrete graph's shapes and attributes under its specs' Z3 rules, so the reducer can
ask for smaller dims or simpler attributes and get back a graph every spec still accepts."""

from __future__ import annotations

from typing import Any

import z3

from fuzzer.core.ir import Graph, Node, TensorType
from specs import REGISTRY
from specs.base import AbsTensor, concrete

SOLVER_TIMEOUT_MS = 3000
ATTR_GROWTH = 64  # how far a solved attribute may grow when an upstream change needs it to


class SymbolicGraph:
    """Leaf dims and solved-for attributes as Z3 variables, with every node's `requires`.

    Attributes a spec leaves concrete (strides, axes, perm) stay as given, or as `overrides` says
    for node index -> {attr: value}. `may_grow` lets solved attributes exceed their current value.
    """

    def __init__(self, graph: Graph, overrides: dict[int, dict[str, Any]] | None = None, may_grow: bool = False):
        self.graph = graph
        self.context = z3.Context()
        self.optimizer = z3.Optimize(ctx=self.context)
        self.optimizer.set("timeout", SOLVER_TIMEOUT_MS)
        self.dims: dict[str, list[z3.ArithRef]] = {}
        self.attrs: list[dict[str, Any]] = []
        self.solved: list[set[str]] = []  # per node, the attributes now Z3 variables
        self.tensors: dict[str, AbsTensor] = {}
        for leaf in graph.leaves:
            t = graph.types[leaf]
            dims = [z3.Int(f"{leaf}.d{i}", self.context) for i in range(t.rank)]
            self.dims[leaf] = dims
            self.tensors[leaf] = AbsTensor(list(dims), t.dtype)
            for var, size in zip(dims, t.shape):
                self.optimizer.add(var >= 1, var <= size)
                self.optimizer.add_soft(var == size, 1)
        for index, node in enumerate(graph.nodes):
            concrete = dict(node.attrs) | (overrides or {}).get(index, {})
            inputs = [self.tensors[name] for name in node.inputs]
            attrs = self._symbolize(index, node, concrete, inputs, may_grow)
            spec = REGISTRY[node.op](attrs)
            for constraint in spec.requires(inputs):
                self.optimizer.add(z3.BoolVal(constraint, self.context) if isinstance(constraint, bool) else constraint)
            for name, out in zip(node.outputs, spec.infer(inputs)):
                self.optimizer.add(*[d >= 1 for d in out.shape if not isinstance(d, int)])
                self.tensors[name] = out
            self.attrs.append(attrs)

    def _symbolize(
        self, index: int, node: Node, concrete: dict[str, Any], inputs: list[AbsTensor], may_grow: bool
    ) -> dict[str, Any]:
        """Replace the attributes the spec declares `solved` with fresh variables near their values."""
        attrs = dict(concrete)
        solved = set()
        for key in sorted(REGISTRY[node.op].solved):
            value = concrete.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                attrs[key] = self._variable(f"n{index}.{key}", value, may_grow)
            elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
                attrs[key] = [self._variable(f"n{index}.{key}{i}", v, may_grow) for i, v in enumerate(value)]
            else:
                continue  # this draw left it out (pads under auto_pad, Split without sizes)
            solved.add(key)
        self.solved.append(solved)
        return attrs

    def _variable(self, name: str, value: int, may_grow: bool) -> z3.ArithRef:
        var = z3.Int(name, self.context)
        low, high = min(0, value), max(0, value)
        self.optimizer.add(var >= low, var <= (max(high, ATTR_GROWTH) if may_grow else high))
        self.optimizer.add_soft(var == value, 1)
        return var

    def solve(self, caps: dict[tuple[str, int], int] | None = None) -> Graph | None:
        """The graph closest to the original with leaf dim (leaf, axis) at most caps[(leaf, axis)]."""
        self.optimizer.push()
        try:
            for (leaf, axis), cap in (caps or {}).items():
                self.optimizer.add(self.dims[leaf][axis] <= cap)
            if self.optimizer.check() != z3.sat:
                return None
            return self._concrete(self.optimizer.model())
        finally:
            self.optimizer.pop()

    def smaller_inputs(self) -> Graph | None:
        """The graph on smaller inputs, weights and attributes as they are: a second shape for a graph
        compiled for dynamic shapes. No dim of any tensor becomes 1 (or 0), since torch specializes a
        size of 1; None where no input dim can shrink."""
        graph = self.graph
        self.optimizer.push()
        try:
            for weight in graph.weights:
                self.optimizer.add(*[var == size for var, size in zip(self.dims[weight], graph.types[weight].shape)])
            for node, attrs, solved in zip(graph.nodes, self.attrs, self.solved):
                for key in solved:
                    pairs = (
                        zip(attrs[key], node.attrs[key])
                        if isinstance(attrs[key], list)
                        else [(attrs[key], node.attrs[key])]
                    )
                    self.optimizer.add(*[var == value for var, value in pairs])
            sizes = [
                (var, size) for name in graph.inputs for var, size in zip(self.dims[name], graph.types[name].shape)
            ]
            if not sizes:
                return None
            for name, tensor in self.tensors.items():
                dims = zip(tensor.shape, graph.types[name].shape)
                self.optimizer.add(*[dim >= 2 for dim, size in dims if size >= 2 and not isinstance(dim, int)])
            self.optimizer.add(z3.Sum([var for var, _ in sizes]) < sum(size for _, size in sizes))
            if self.optimizer.check() != z3.sat:
                return None
            return self._concrete(self.optimizer.model())
        finally:
            self.optimizer.pop()

    def _concrete(self, model: z3.ModelRef) -> Graph:
        g = self.graph
        types = {n: TensorType(tuple(concrete(model, d) for d in t.shape), t.dtype) for n, t in self.tensors.items()}
        nodes = [
            Node(n.op, list(n.inputs), list(n.outputs), {k: concrete(model, v) for k, v in attrs.items()})
            for n, attrs in zip(g.nodes, self.attrs)
        ]
        return Graph(list(g.inputs), list(g.weights), nodes, list(g.outputs), types)
