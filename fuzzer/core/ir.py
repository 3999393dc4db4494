"""The graph IR: concrete tensors and nodes that every stage after generation reads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 2
# Attribute keys renamed since an older format; from_json reads old cases under the new names.
RENAMED_ATTRS = {1: {"spelled": "onnx_axes", "spelled_axes": "onnx_axes", "spelled_axis": "onnx_axis"}}


@dataclass(frozen=True)
class TensorType:
    """A concrete tensor type: static shape and element type."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TensorType:
        return cls(tuple(int(d) for d in data["shape"]), str(data["dtype"]))


@dataclass
class Node:
    """One operator application; `op` names a spec in the registry, attrs are concrete."""

    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "inputs": self.inputs, "outputs": self.outputs, "attrs": self.attrs}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Node:
        return cls(data["op"], list(data["inputs"]), list(data["outputs"]), dict(data["attrs"]))


@dataclass
class Graph:
    """A DAG of nodes in topological order; inputs are fed at run time, weights are constants."""

    inputs: list[str]
    weights: list[str]
    nodes: list[Node]
    outputs: list[str]
    types: dict[str, TensorType]

    @property
    def leaves(self) -> list[str]:
        return self.inputs + self.weights

    def op_types(self) -> list[str]:
        return sorted({node.op for node in self.nodes})

    def producer(self) -> dict[str, Node]:
        return {name: node for node in self.nodes for name in node.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {name: [] for name in self.types}
        for node in self.nodes:
            for name in node.inputs:
                users[name].append(node)
        return users

    def depth(self) -> int:
        """The longest chain of nodes: deep graphs feed optimized code into optimized code."""
        depth_of: dict[str, int] = {}
        for node in self.nodes:
            depth = 1 + max((depth_of.get(name, 0) for name in node.inputs), default=0)
            depth_of.update((name, depth) for name in node.outputs)
        return max(depth_of.values(), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "inputs": self.inputs,
            "weights": self.weights,
            "nodes": [node.to_json() for node in self.nodes],
            "outputs": self.outputs,
            "types": {name: t.to_json() for name, t in self.types.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Graph:
        version = data.get("format")
        if version != FORMAT_VERSION and version not in RENAMED_ATTRS:
            raise ValueError(f"graph format {version!r} is not {FORMAT_VERSION}")
        nodes = [Node.from_json(n) for n in data["nodes"]]
        for node in nodes:
            renamed = RENAMED_ATTRS.get(version, {})
            node.attrs = {renamed.get(key, key): value for key, value in node.attrs.items()}
        graph = cls(
            inputs=list(data["inputs"]),
            weights=list(data["weights"]),
            nodes=nodes,
            outputs=list(data["outputs"]),
            types={name: TensorType.from_json(t) for name, t in data["types"].items()},
        )
        graph._check_wiring()
        return graph

    def _check_wiring(self) -> None:
        """Refuse a graph read from a file that reads a tensor before it is made, or leaves one untyped."""
        defined = set(self.leaves)
        for node in self.nodes:
            unknown = [name for name in node.inputs if name not in defined]
            if unknown:
                raise ValueError(f"node {node.op} reads {', '.join(unknown)} before any node makes it")
            defined.update(node.outputs)
        undefined = [name for name in self.outputs if name not in defined]
        untyped = sorted(defined - set(self.types))
        if undefined or untyped:
            raise ValueError(f"outputs never made: {undefined}; tensors without a type: {untyped}")

    def dumps(self) -> str:
        """Canonical JSON: the same graph always gives the same bytes."""
        return json.dumps(self.to_json(), sort_keys=True, indent=1)

    def text(self) -> str:
        """A readable listing for reports: one line per node with types."""
        lines = []
        for name in self.inputs:
            lines.append(f"input  {name}: {_type_text(self.types[name])}")
        for name in self.weights:
            lines.append(f"weight {name}: {_type_text(self.types[name])}")
        for node in self.nodes:
            outs = ", ".join(f"{o}: {_type_text(self.types[o])}" for o in node.outputs)
            attrs = ", ".join(f"{k}={v}" for k, v in sorted(node.attrs.items()))
            attr_text = f" {{{attrs}}}" if attrs else ""
            lines.append(f"{outs} = {node.op}({', '.join(node.inputs)}){attr_text}")
        lines.append(f"return {', '.join(self.outputs)}")
        return "\n".join(lines)


def _type_text(t: TensorType) -> str:
    return f"{t.dtype}[{', '.join(str(d) for d in t.shape)}]"


def merge_graphs(graphs: list[Graph]) -> tuple[Graph, list[dict[str, str]]]:
    """Side-by-side union of independent graphs; returns it with each part's name mapping."""
    merged = Graph([], [], [], [], {})
    renames = []
    for index, part in enumerate(graphs):
        rename = {name: f"g{index}_{name}" for name in part.types}
        merged.inputs += [rename[n] for n in part.inputs]
        merged.weights += [rename[n] for n in part.weights]
        merged.outputs += [rename[n] for n in part.outputs]
        merged.types.update({rename[n]: t for n, t in part.types.items()})
        merged.nodes += [
            Node(node.op, [rename[n] for n in node.inputs], [rename[n] for n in node.outputs], dict(node.attrs))
            for node in part.nodes
        ]
        renames.append(rename)
    return merged, renames
