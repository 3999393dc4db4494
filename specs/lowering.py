"""Lower a Graph to an ONNX model and to a torch module, both straight from the specs."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import torch

from fuzzer.core.dtypes import dtype
from fuzzer.core.ir import Graph
from specs.base import OnnxEmitter, spec_of
from specs.interpret import interpret

OPSET = 18
IR_VERSION = 9  # onnxruntime 1.31 reads IR <= 13; opset 18 needs >= 8


def to_onnx(graph: Graph, weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """An ONNX model at OPSET; weights become initializers, intermediate types are left to inference."""

    def value_info(name: str) -> onnx.ValueInfoProto:
        t = graph.types[name]
        return onnx.helper.make_tensor_value_info(name, dtype(t.dtype).onnx, list(t.shape))

    nodes: list[onnx.NodeProto] = []
    initializers = [
        onnx.numpy_helper.from_array(np.asarray(weights[n], dtype(graph.types[n].dtype).numpy), n)
        for n in graph.weights
    ]
    for index, node in enumerate(graph.nodes):
        emit = OnnxEmitter(f"n{index}", [graph.types[i] for i in node.inputs])
        spec_of(node).to_onnx(emit, node.inputs, node.outputs)
        nodes += emit.nodes
        initializers += emit.initializers
    onnx_graph = onnx.helper.make_graph(
        nodes,
        "dlfuzz",
        [value_info(n) for n in graph.inputs],
        [value_info(n) for n in graph.outputs],
        initializers,
    )
    model = onnx.helper.make_model(
        onnx_graph,
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="dlfuzz",
    )
    return model


class GraphModule(torch.nn.Module):
    """The graph as an nn.Module: weights are buffers, graph inputs are forward's arguments."""

    def __init__(self, graph: Graph, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.graph = graph
        self.specs = [spec_of(node) for node in graph.nodes]
        for index, name in enumerate(graph.weights):
            self.register_buffer(f"weight{index}", torch.from_numpy(np.array(weights[name])))

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        leaves = dict(zip(self.graph.inputs, inputs))
        for index, name in enumerate(self.graph.weights):
            leaves[name] = getattr(self, f"weight{index}")
        env = interpret(self.graph, leaves, specs=self.specs)
        return tuple(env[name] for name in self.graph.outputs)
