"""Equivalences: rewrites of a graph over the specs that leave every output bit for bit the same, for
the metamorphic oracle (PolyJuice's idea): a compiler must compute the rewritten graph as it computes
the original.

Two kinds, one table row each. A detour sends a tensor through ops that give it back unchanged
(`Mul(@, 1)`, a Transpose and its inverse), the last of them taking the tensor's name, so readers and
outputs see the same name. A regrouping re-expresses one node (`Add(a, b)` as `Add(b, a)`). Each row
names the identity and why it is exact in its dtypes; one property suite (tests/specs) checks every
row on generated graphs: the rewritten graph's eager result equals the original's exactly.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fuzzer.core.dtypes import ALL, FLOATS, INTS, NUMERIC, dtype
from fuzzer.core.ir import Graph, Node, TensorType
from specs.base import AbsTensor, spec_of

SITE = "@"  # in a detour's link: the previous link's first output (the site itself for the first link)
# The wider type each dtype goes through and back without losing a value.
WIDER = {"float16": "float32", "float32": "float64", "int8": "int32", "uint8": "int32", "int32": "int64"}


@dataclass(frozen=True)
class Constant:
    """A new scalar weight of the site's dtype, fed to a link in place of a tensor."""

    value: float


@dataclass(frozen=True)
class Link:
    """One op of a detour: its operands (SITE or a Constant) and attributes."""

    op: str
    operands: tuple[str | Constant, ...]
    attrs: dict[str, Any]


@dataclass(frozen=True)
class Rewrite:
    """One drawn application: an equivalence at a tensor (for a regrouping, the node's first output)."""

    equivalence: str
    site: str

    def to_json(self) -> dict[str, str]:
        return {"equivalence": self.equivalence, "site": self.site}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Rewrite:
        return cls(str(data["equivalence"]), str(data["site"]))


class Equivalence(ABC):
    """A rewrite that keeps every output exactly: where it applies and what the graph becomes."""

    name: str
    why: str  # the identity and why it is exact in the dtypes it applies to

    @abstractmethod
    def sites(self, graph: Graph) -> list[str]:
        """The tensors it applies at, in graph order: a drawn rewrite picks one, a reducer keeps it."""

    @abstractmethod
    def apply(self, graph: Graph, site: str) -> tuple[Graph, dict[str, np.ndarray]]:
        """The rewritten graph and the values of the weights it adds."""


EQUIVALENCES: dict[str, Equivalence] = {}


def _declare(equivalence: Equivalence) -> None:
    if equivalence.name in EQUIVALENCES:
        raise ValueError(f"equivalence {equivalence.name} declared twice")
    EQUIVALENCES[equivalence.name] = equivalence


@dataclass(frozen=True)
class Detour(Equivalence):
    """A tensor sent through `links(type)` and back: the chain's last output takes the tensor's name."""

    name: str
    why: str
    dtypes: tuple[str, ...]
    min_rank: int
    links: Callable[[TensorType], list[Link]]

    def sites(self, graph: Graph) -> list[str]:
        outputs = set(graph.outputs)
        return [
            name
            for name, t in graph.types.items()
            if t.dtype in self.dtypes and t.rank >= self.min_rank and not (name in graph.leaves and name in outputs)
        ]

    def apply(self, graph: Graph, site: str) -> tuple[Graph, dict[str, np.ndarray]]:
        fresh = _namer(graph, site)
        types, weights, nodes = dict(graph.types), {}, []
        head = site if site in graph.leaves else fresh()
        types[head] = graph.types[site]
        current = head
        links = self.links(graph.types[site])
        for index, link in enumerate(links):
            inputs = []
            for operand in link.operands:
                if isinstance(operand, Constant):
                    name = fresh()
                    weights[name] = np.asarray(operand.value, dtype(graph.types[site].dtype).numpy)
                    types[name] = TensorType((), graph.types[site].dtype)
                    inputs.append(name)
                else:
                    inputs.append(current)
            node = Node(link.op, inputs, [], dict(link.attrs))
            made = spec_of(node).infer([_abstract(types[name]) for name in inputs])
            last = index == len(links) - 1 and head != site
            node.outputs = [site if last and i == 0 else fresh() for i in range(len(made))]
            types.update(
                (name, TensorType(tuple(int(d) for d in t.shape), t.dtype)) for name, t in zip(node.outputs, made)
            )
            nodes.append(node)
            current = node.outputs[0]
        if head == site:  # a leaf keeps its name: its readers read the chain's end instead
            renamed = [
                Node(n.op, [current if i == site else i for i in n.inputs], n.outputs, n.attrs) for n in graph.nodes
            ]
            return _with(graph, nodes + renamed, types, weights), weights
        placed = []
        for node in graph.nodes:
            if site in node.outputs:
                node = Node(node.op, node.inputs, [head if o == site else o for o in node.outputs], node.attrs)
                placed += [node, *nodes]
            else:
                placed.append(node)
        return _with(graph, placed, types, weights), weights


@dataclass(frozen=True)
class Regroup(Equivalence):
    """One node of op `op` (whose first output is the site) computed another way by `regroup`, which
    returns the replacement nodes and new types, or None where the node does not fit."""

    name: str
    why: str
    op: str
    dtypes: tuple[str, ...]
    regroup: Callable[[Graph, Node, Callable[[], str]], tuple[list[Node], dict[str, TensorType]] | None]

    def sites(self, graph: Graph) -> list[str]:
        return [
            node.outputs[0]
            for node in graph.nodes
            if node.op == self.op
            and graph.types[node.outputs[0]].dtype in self.dtypes
            and self.regroup(graph, node, _namer(graph, node.outputs[0])) is not None
        ]

    def apply(self, graph: Graph, site: str) -> tuple[Graph, dict[str, np.ndarray]]:
        node = graph.producer()[site]
        found = self.regroup(graph, node, _namer(graph, site))
        if found is None:
            raise ValueError(f"{self.name} does not apply at {site}")
        replacement, types = found
        placed = [new for other in graph.nodes for new in (replacement if other is node else [other])]
        read = {name for other in placed for name in other.inputs} | set(graph.outputs)
        orphaned = {id(p) for name in node.inputs if (p := graph.producer().get(name)) and name not in read}
        return _with(graph, [n for n in placed if id(n) not in orphaned], graph.types | types, {}), {}


def _with(graph: Graph, nodes: list[Node], types: dict[str, TensorType], weights: dict[str, np.ndarray]) -> Graph:
    used = {name for node in nodes for name in (*node.inputs, *node.outputs)} | set(graph.leaves) | set(weights)
    kept = {name: t for name, t in types.items() if name in used}
    return Graph(list(graph.inputs), [*graph.weights, *weights], nodes, list(graph.outputs), kept)


def _namer(graph: Graph, site: str) -> Callable[[], str]:
    """Fresh tensor names derived from the site, none already in the graph."""
    count = iter(range(1_000_000))

    def fresh() -> str:
        while (name := f"{site}_eq{next(count)}") in graph.types:
            pass
        return name

    return fresh


def _abstract(t: TensorType) -> AbsTensor:
    return AbsTensor(list(t.shape), t.dtype)


def detour(
    name: str, why: str, dtypes: tuple[str, ...], links: Callable[[TensorType], list[Link]], min_rank: int = 0
) -> None:
    """Declare a detour (one row of the table below)."""
    _declare(Detour(name, why, dtypes, min_rank, links))


def regroup(name: str, why: str, op: str, dtypes: tuple[str, ...], build: Callable[..., Any]) -> None:
    """Declare a regrouping (one row of the table below)."""
    _declare(Regroup(name, why, op, dtypes, build))


def reversed_axes(t: TensorType) -> list[int]:
    """A permutation that moves every axis (the identity would be no layout change)."""
    return list(range(t.rank))[::-1]


def inverse(perm: list[int]) -> list[int]:
    """The permutation that undoes `perm`, so the round trip is the identity."""
    return [perm.index(axis) for axis in range(len(perm))]


def _commuted(graph: Graph, node: Node, fresh: Callable[[], str]) -> tuple[list[Node], dict[str, TensorType]] | None:
    if len(node.inputs) != 2 or node.inputs[0] == node.inputs[1]:
        return None
    return [Node(node.op, node.inputs[::-1], list(node.outputs), dict(node.attrs))], {}


def _reassociated(
    graph: Graph, node: Node, fresh: Callable[[], str]
) -> tuple[list[Node], dict[str, TensorType]] | None:
    """(a + b) + c as a + (b + c), where a + b has no other reader."""
    inner = graph.producer().get(node.inputs[0])
    if inner is None or inner.op != node.op or len(graph.consumers()[node.inputs[0]]) != 1:
        return None
    if node.inputs[0] in graph.outputs or len(node.inputs) != 2 or len(inner.inputs) != 2:
        return None
    (a, b), c = inner.inputs, node.inputs[1]
    shape = tuple(int(d) for d in np.broadcast_shapes(graph.types[b].shape, graph.types[c].shape))
    grouped = fresh()
    nodes = [Node(node.op, [b, c], [grouped]), Node(node.op, [a, grouped], list(node.outputs))]
    return nodes, {grouped: TensorType(shape, graph.types[node.outputs[0]].dtype)}


# Detours: the tensor comes back bit for bit.
detour("mul-one", "x * 1 = x in every numeric dtype (NaN, infinities and -0.0 included)", NUMERIC,
       lambda t: [Link("Mul", (SITE, Constant(1)), {})])  # fmt: skip
detour("add-zero", "x + (-0) = x in every numeric dtype: -0.0, not +0.0, keeps the sign of a -0.0", NUMERIC,
       lambda t: [Link("Add", (SITE, Constant(-0.0 if t.dtype in FLOATS else 0)), {})])  # fmt: skip
detour("identity", "Identity(x) = x", ALL, lambda t: [Link("Identity", (SITE,), {})])
detour("transpose-round-trip", "a layout round trip: Transpose(p) then Transpose(p^-1) moves every element back", ALL,
       lambda t: [Link("Transpose", (SITE,), {"perm": reversed_axes(t)}),
                  Link("Transpose", (SITE,), {"perm": inverse(reversed_axes(t))})], min_rank=2)  # fmt: skip
detour("reshape-round-trip", "Reshape to one flat dim and back to the shape keeps the elements in order", ALL,
       lambda t: [Link("Reshape", (SITE,), {"shape": [t.numel], "infer_axis": None}),
                  Link("Reshape", (SITE,), {"shape": list(t.shape), "infer_axis": None})], min_rank=1)  # fmt: skip
detour("cast-round-trip", "a cast to a wider type and back is exact (int32 to int64, float16 to float32, ...)",
       tuple(WIDER), lambda t: [Link("Cast", (SITE,), {"to": WIDER[t.dtype]}),
                                Link("Cast", (SITE,), {"to": t.dtype})])  # fmt: skip
detour("concat-split", "Concat(x, x) on the last axis, then Split back into halves: the first half is x", ALL,
       lambda t: [Link("Concat", (SITE, SITE), {"axis": t.rank - 1, "onnx_axis": -1}),
                  Link("Split", (SITE,), {"axis": t.rank - 1, "onnx_axis": -1, "count": 2,
                                          "sizes": [t.shape[-1], t.shape[-1]]})], min_rank=1)  # fmt: skip

# Regroupings: the same values computed in another order where that order cannot round differently.
regroup("add-commute", "a + b = b + a exactly (IEEE addition commutes; integers too)", "Add", NUMERIC, _commuted)
regroup("mul-commute", "a * b = b * a exactly (IEEE multiplication commutes; integers too)", "Mul", NUMERIC, _commuted)
regroup("add-reassociate", "(a + b) + c = a + (b + c) exactly in integers (wrapping addition is associative)",
        "Add", INTS, _reassociated)  # fmt: skip


def draw_rewrite(graph: Graph, seed: int) -> Rewrite | None:
    """A rewrite drawn from the case's seed: an equivalence that applies somewhere, then one of its sites."""
    rng = random.Random(f"metamorphic {seed}")
    found = {name: sites for name, e in EQUIVALENCES.items() if (sites := e.sites(graph))}
    if not found:
        return None
    name = rng.choice(sorted(found))
    return Rewrite(name, rng.choice(found[name]))


def rewritten(
    graph: Graph, values: dict[str, np.ndarray], rewrite: Rewrite
) -> tuple[Graph, dict[str, np.ndarray]] | None:
    """The graph with the rewrite applied and its values (the original's plus the new weights), or
    None where the rewrite no longer applies (a reducer cut its site)."""
    equivalence = EQUIVALENCES.get(rewrite.equivalence)
    if equivalence is None or rewrite.site not in equivalence.sites(graph):
        return None
    graph, weights = equivalence.apply(graph, rewrite.site)
    return graph, values | weights
