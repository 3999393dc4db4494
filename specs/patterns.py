"""Optimization patterns: the subgraphs the three compilers rewrite, as templates over the specs.

A pattern is a few steps, each an op over operands, written like a line of ONNX text:
`Conv(x:4, w:w, b:w1)` then `Relu(@)`. An operand is `@` (the previous step's first output), `@k`
(step k's first output), or a name: the same name is the same tensor in every step, a plain name
may be any tensor of the graph (a recent output is preferred) or a new leaf, `:w` asks for a new
weight (an initializer, so constant folding and fusions that need constants can fire), `:i` for a new
graph input (a value known only at run time), digits ask for that rank, and `=0.5` is a scalar
constant of that exact value (a Scalar node: some fusions check their constants' values). `{axis=-1}`
pins attributes to the values the optimizer matches; the rest of the attributes and every shape are
still drawn and solved under the specs, so a spliced pattern is valid by construction. Each entry
names the compiler source or test it was mined from.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from fuzzer.core.ir import Graph, Node
from specs.base import REGISTRY


@dataclass(frozen=True)
class Operand:
    """One input of a step: the output of an earlier step, or a named tensor from outside the pattern."""

    step: int | None = None  # index of the step whose first output this is
    name: str | None = None
    leaf: str | None = None  # "weight" (an initializer) or "input": a new leaf of that kind, never a reused tensor
    rank: int | None = None
    constant: float | None = None  # a Scalar node of this value, placed just before the step


@dataclass(frozen=True)
class Step:
    op: str
    operands: tuple[Operand, ...]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pattern:
    name: str
    source: str  # where the optimizer that rewrites it lives
    steps: tuple[Step, ...]
    # TVM Relax graph passes written for it: `tvm-passes` runs them on a graph that holds it, where a
    # random pass list would seldom meet the one graph its rewrite matches.
    relax_passes: tuple[str, ...] = ()

    @property
    def constants(self) -> int:
        """Its constant operands: each places a CONSTANT_OP node."""
        return sum(operand.constant is not None for step in self.steps for operand in step.operands)

    @property
    def size(self) -> int:
        """The ops a splice places toward a graph's node budget; its constants' nodes come beside them,
        as its weights do (a GELU's three would otherwise leave it no room in a 10-node graph)."""
        return len(self.steps)

    @property
    def ops(self) -> tuple[str, ...]:
        """The ops it places, its constants' nodes included."""
        return tuple(step.op for step in self.steps) + ((CONSTANT_OP,) if self.constants else ())


PATTERNS: dict[str, Pattern] = {}
CONSTANT_OP = "Scalar"  # the pattern-only spec that holds a constant operand

_STEP = re.compile(r"^(\w+)\((.*)\)(\{.*\})?$")
_OPERAND = re.compile(r"^(?:@(\d*)|(\w+)(?::([wi]?)(\d?))?|=([-+.\deE]+))$")
LEAF_KINDS = {"w": "weight", "i": "input"}


def _operand(text: str, index: int) -> Operand:
    match = _OPERAND.match(text.strip())
    if not match:
        raise ValueError(f"bad operand {text!r}")
    step, name, leaf, rank, constant = match.groups()
    if constant is not None:
        return Operand(constant=float(constant))
    if name is None:
        target = index - 1 if step == "" else int(step)
        if not 0 <= target < index:
            raise ValueError(f"operand {text!r} of step {index} names no earlier step")
        return Operand(step=target)
    return Operand(name=name, leaf=LEAF_KINDS.get(leaf or ""), rank=int(rank) if rank else None)


def _step(text: str, index: int) -> Step:
    match = _STEP.match(text.replace(" ", ""))
    if not match:
        raise ValueError(f"bad step {text!r}")
    op, args, attrs = match.groups()
    if op not in REGISTRY:
        raise ValueError(f"step {text!r}: no spec {op}")
    call = ast.parse(f"f({(attrs or '{}')[1:-1]})", mode="eval").body
    assert isinstance(call, ast.Call)
    pinned = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    return Step(op, tuple(_operand(a, index) for a in args.split(",")), pinned)


def pattern(name: str, source: str, *steps: str, relax_passes: tuple[str, ...] = ()) -> Pattern:
    """Declare a pattern (one row of the table below)."""
    if name in PATTERNS:
        raise ValueError(f"pattern {name} declared twice")
    parsed = Pattern(name, source, tuple(_step(text, index) for index, text in enumerate(steps)), relax_passes)
    PATTERNS[name] = parsed
    return parsed


def occurrences(graph: Graph) -> dict[str, int]:
    """How often each pattern occurs in a graph (blind or guided alike): steps, edges and pinned attrs."""
    found = {}
    for name, template in PATTERNS.items():
        count = sum(1 for _ in _matches(graph, template, [], {}))
        if count:
            found[name] = count
    return found


def _matches(graph: Graph, template: Pattern, chosen: list[Node], named: dict[str, str]) -> Any:
    """Yield each assignment of distinct nodes to the template's steps (backtracking, in step order)."""
    if len(chosen) == len(template.steps):
        yield chosen
        return
    step = template.steps[len(chosen)]
    for node in graph.nodes:
        if node.op != step.op or node in chosen or len(node.inputs) != len(step.operands):
            continue
        if any(node.attrs.get(key) != value for key, value in step.attrs.items()):
            continue
        binding = dict(named)
        if all(_binds(graph, operand, tensor, chosen, binding) for operand, tensor in zip(step.operands, node.inputs)):
            yield from _matches(graph, template, [*chosen, node], binding)


def _binds(graph: Graph, operand: Operand, tensor: str, chosen: list[Node], named: dict[str, str]) -> bool:
    if operand.step is not None:
        return tensor == chosen[operand.step].outputs[0]
    if operand.constant is not None:
        producer = graph.producer().get(tensor)
        return producer is not None and producer.op == CONSTANT_OP and producer.attrs["value"] == operand.constant
    assert operand.name is not None
    if operand.rank is not None and graph.types[tensor].rank != operand.rank:
        return False
    if operand.leaf is not None and tensor not in (graph.weights if operand.leaf == "weight" else graph.inputs):
        return False
    return named.setdefault(operand.name, tensor) == tensor


ORT = "onnxruntime/core/optimizer/"
TVM = "tvm/src/relax/transform/"
INDUCTOR = "torch/_inductor/"

# ONNX Runtime's graph transformers (level 1 and 2) and its layout transformer.
pattern("conv-bn", ORT + "conv_bn_fusion.cc", "Conv(x:4, w:w, b:w1)", "BatchNormalization(@, s:w, c:w, m:w, v:w)")
pattern("conv-add-const", ORT + "conv_add_fusion.cc", "Conv(x:4, w:w, b:w1)", "Add(@, c:w3)")
pattern("conv-mul-const", ORT + "conv_mul_fusion.cc", "Conv(x:4, w:w, b:w1)", "Mul(@, c:w3)")
pattern("conv-relu", ORT + "conv_activation_fusion.cc", "Conv(x, w:w, b:w1)", "Relu(@)")
pattern("conv-sigmoid", ORT + "conv_activation_fusion.cc", "Conv(x, w:w, b:w1)", "Sigmoid(@)")
pattern("conv-tanh", ORT + "conv_activation_fusion.cc", "Conv(x, w:w, b:w1)", "Tanh(@)")
pattern("conv-leakyrelu", ORT + "conv_activation_fusion.cc", "Conv(x, w:w, b:w1)", "LeakyRelu(@)")
pattern("conv-clip", ORT + "conv_activation_fusion.cc", "Conv(x, w:w, b:w1)", "Clip(@)")
pattern("conv-hardsigmoid", ORT + "conv_activation_fusion.cc", "Conv(x, w:w, b:w1)", "HardSigmoid(@)")
pattern("conv-add-relu", ORT + "conv_add_act_fusion.cc", "Conv(x:4, w:w, b:w1)", "Add(@, y)", "Relu(@)")
pattern("conv-bn-relu", ORT + "conv_bn_fusion.cc, then conv_activation_fusion.cc",
        "Conv(x:4, w:w, b:w1)", "BatchNormalization(@, s:w, c:w, m:w, v:w)", "Relu(@)")  # fmt: skip
pattern("conv-conv-nchwc", ORT + "nchwc_transformer.cc", "Conv(x:4, w:w, b:w1)", "Conv(@, u:w, c:w1)")
pattern("conv-maxpool-nchwc", ORT + "nchwc_transformer.cc", "Conv(x:4, w:w, b:w1)", "MaxPool(@)")
pattern("conv-globalavgpool-nchwc", ORT + "nchwc_transformer.cc", "Conv(x:4, w:w, b:w1)", "GlobalAveragePool(@)")
pattern("conv-concat-nchwc", ORT + "nchwc_transformer.cc", "Conv(x:4, w:w, b:w1)", "Concat(@, y)")
pattern("pad-conv", ORT + "pad_fusion.cc", "Pad(x:4){mode='constant'}", "Conv(@, w:w, b:w1)")
pattern("pad-maxpool", ORT + "pad_fusion.cc", "Pad(x:4){mode='constant'}", "MaxPool(@)")
pattern("pad-averagepool", ORT + "pad_fusion.cc", "Pad(x:4){mode='constant'}", "AveragePool(@)")
pattern("gemm-relu", ORT + "gemm_activation_fusion.cc", "Gemm(a, b:w, c:w)", "Relu(@)")
pattern("gemm-leakyrelu", ORT + "gemm_activation_fusion.cc", "Gemm(a, b:w, c:w)", "LeakyRelu(@)")
pattern("gemm-sum", ORT + "gemm_sum_fusion.cc", "Gemm(a, b:w)", "Sum(@, c)")
pattern("transpose-gemm", ORT + "gemm_transpose_fusion.cc", "Transpose(a:2)", "Gemm(@, b:w)")
pattern("matmul-add", ORT + "matmul_add_fusion.cc", "MatMul(a:2, b:w2)", "Add(@, c:w1)")
pattern("matmul-scale", ORT + "matmul_scale_fusion.cc", "MatMul(a, b)", "Mul(@, s:w0)")
pattern("scale-matmul", ORT + "matmul_scale_fusion.cc", "Mul(a, s:w0)", "MatMul(@, b)")
pattern("transpose-matmul", ORT + "matmul_transpose_fusion.cc", "Transpose(a)", "MatMul(@, b)")
pattern("matmul-transposed-rhs", ORT + "matmul_transpose_fusion.cc", "Transpose(b)", "MatMul(a, @)")
pattern("add-softmax", ORT + "bias_softmax_fusion.cc", "Add(a, b)", "Softmax(@)")
pattern("add-layernorm", ORT + "skip_layer_norm_fusion.cc", "Add(a, b)", "LayerNormalization(@, s:w, c:w)")
pattern("not-where", ORT + "not_where_fusion.cc", "Not(c)", "Where(@, a, b)")
pattern("relu-clip", ORT + "relu_clip_fusion.cc", "Relu(x)", "Clip(@)")
pattern("transpose-transpose", ORT + "transpose_optimizer/", "Transpose(x)", "Transpose(@)")
pattern("transpose-relu-transpose", ORT + "transpose_optimizer/", "Transpose(x)", "Relu(@)", "Transpose(@)")
pattern("reshape-reshape", ORT + "reshape_fusion.cc", "Reshape(x)", "Reshape(@)")
pattern("cast-cast", ORT + "cast_elimination.cc, insert_cast_transformer.cc", "Cast(x)", "Cast(@)")
pattern("unsqueeze-squeeze", ORT + "unsqueeze_elimination.cc, squeeze_elimination.cc", "Unsqueeze(x)", "Squeeze(@)")
pattern("expand-add", ORT + "expand_elimination.cc", "Expand(x)", "Add(@, y)")
pattern("concat-slice", ORT + "concat_slice_elimination.cc", "Concat(a, b)", "Slice(@)")
pattern("dropout-relu", ORT + "dropout_elimination.cc", "Dropout(x)", "Relu(@)")
pattern("identity-add", ORT + "identity_elimination.cc", "Identity(x)", "Add(@, y)")
pattern("div-mul", ORT + "div_mul_fusion.cc (1/x * y)", "Div(=1.0, b)", "Mul(@, c)")
pattern("gelu-erf", ORT + "gelu_fusion.cc (its test gelu_add_gen.py)", "Div(x, =1.4142135623730951)", "Erf(@)",
        "Add(@, =1.0)", "Mul(x, =0.5)", "Mul(@3, @2)")  # fmt: skip
pattern("bias-gelu", ORT + "bias_gelu_fusion.cc (after gelu_fusion.cc)", "Add(a, b:w1)",
        "Div(@, =1.4142135623730951)", "Erf(@)", "Add(@, =1.0)", "Mul(@0, @)", "Mul(@, =0.5)")  # fmt: skip
pattern("quick-gelu", ORT + "quick_gelu_fusion.cc (x * sigmoid(alpha * x))", "Mul(x, =1.702)", "Sigmoid(@)",
        "Mul(x, @)")  # fmt: skip
pattern("attention", ORT + "attention_fusion.cc; " + INDUCTOR + "fx_passes/fuse_attention.py (_sfdp_pattern_1)",
        "Transpose(k:3)", "MatMul(q:3, @)", "Div(@, s:w0)", "Softmax(@){onnx_axis=-1}", "MatMul(@, v:3)")  # fmt: skip
pattern("attention-masked",
        ORT + "attention_fusion.cc (mask); " + INDUCTOR + "fx_passes/fuse_attention.py (_sfdp_pattern_5)",
        "Transpose(k:4){perm=[0, 1, 3, 2]}", "MatMul(q:4, @)", "Div(@, s:w0)", "Add(@, m:i4)",
        "Softmax(@){onnx_axis=-1}", "MatMul(@, v:i4)")  # fmt: skip
pattern("masked-softmax", ORT + "bias_softmax_fusion.cc; " + INDUCTOR + "fx_passes/fuse_attention.py",
        "Where(m, a, b)", "Softmax(@){onnx_axis=-1}")  # fmt: skip

# TVM Relax: FuseOps/FuseTIR groups, FoldConstant, CombineParallelMatmul, ConvertLayout, DCE.
pattern("conv-bias-relu-fuse", TVM + "fuse_ops.cc (kOutEWiseFusable + injective)",
        "Conv(x:4, w:w, b:w1)", "Add(@, c:w3)", "Relu(@)")  # fmt: skip
pattern("matmul-bias-relu-fuse", TVM + "fuse_ops.cc; tvm/python/tvm/relax/backend/patterns.py (matmul_bias_relu)",
        "MatMul(a, b:w2)", "Add(@, c:w1)", "Relu(@)")  # fmt: skip
pattern("exp-reducesum-fuse", TVM + "fuse_ops.cc (injective into kCommReduce)", "Exp(x)", "ReduceSum(@)")
pattern("reduce-broadcast-fuse", TVM + "fuse_ops.cc (kCommReduce then broadcast)", "ReduceMean(x){keepdims=1}",
        "Sub(x, @)")  # fmt: skip
# Relax's graph rewrites, each with the pass that `tvm-passes` runs on it. CombineParallelMatmul matches
# weights that are still the function's parameters (TVM binds them after it), so its weights are graph inputs.
pattern("parallel-matmul", TVM + "combine_parallel_matmul.cc", "MatMul(x:2, a:i2)", "MatMul(x, b:i2)", "Add(@0, @)",
        relax_passes=("CombineParallelMatmul",))  # fmt: skip
pattern("matmul-of-sum", TVM + "expand_matmul_of_sum.cc", "Add(a:w2, b:w2)", "MatMul(x:i2, @)",
        relax_passes=("ExpandMatmulOfSum",))  # fmt: skip
pattern("take-matmul", TVM + "reorder_take_after_matmul.cc", "Gather(w:w2, i:w1){axis=1}", "MatMul(x:i2, @)",
        relax_passes=("ReorderTakeAfterMatmul",))  # fmt: skip
pattern("matmul-chain", TVM + "adjust_matmul_order.cc", "MatMul(x:2, a:w2)", "MatMul(@, b:w2)",
        relax_passes=("AdjustMatmulOrder",))  # fmt: skip
pattern("transposes-concat", TVM + "reorder_permute_dims_after_concat.cc", "Transpose(a:2){perm=[1, 0]}",
        "Transpose(b:2){perm=[1, 0]}", "Concat(@0, @1)", relax_passes=("ReorderPermuteDimsAfterConcat",))  # fmt: skip
pattern("common-subexpression", TVM + "eliminate_common_subexpr.cc; " + ORT + "common_subexpression_elimination.cc",
        "Relu(x)", "Relu(x)", "Add(@0, @1)", relax_passes=("EliminateCommonSubexpr",))  # fmt: skip
pattern("constant-subgraph-fold", TVM + "fold_constant.cc; " + ORT + "constant_folding.cc", "Exp(c:w)", "Mul(x:i, @)",
        relax_passes=("FoldConstant",))  # fmt: skip
pattern("conv-relu-maxpool-layout", TVM + "convert_layout.cc (NCHW to NHWC)",
        "Conv(x:4, w:w, b:w1)", "Relu(@)", "MaxPool(@)", relax_passes=("ConvertLayout",))  # fmt: skip
pattern("identity-chain-dce", TVM + "dead_code_elimination.cc, canonicalize_bindings.cc", "Identity(x)",
        "Identity(@)", "Relu(@)")  # fmt: skip
pattern("split-concat", TVM + "fuse_ops.cc (tuple); " + INDUCTOR + "fx_passes/split_cat.py", "Split(x)",
        "Concat(@, y)")  # fmt: skip
pattern("layernorm-relu", TVM + "fuse_ops.cc; " + INDUCTOR + "decomposition.py (native_layer_norm)",
        "LayerNormalization(x, s:w, c:w)", "Relu(@)")  # fmt: skip

# TorchInductor: pointwise and reduction fusion, the pattern matcher, decompositions, layout.
pattern("add-relu-mul", INDUCTOR + "scheduler.py (pointwise fusion)", "Add(a, b)", "Relu(@)", "Mul(@, c)")
pattern("softmax-decomposed", INDUCTOR + "scheduler.py (reduction fusion)", "ReduceMax(x){keepdims=1}",
        "Sub(x, @)", "Exp(@)", "ReduceSum(@){keepdims=1}")  # fmt: skip
pattern("addmm", INDUCTOR + "fx_passes/post_grad.py (addmm); decomposition.py", "MatMul(a:2, b:2)", "Add(@, c:1)")
pattern("bmm-bias", INDUCTOR + "fx_passes/post_grad.py (bmm)", "MatMul(a:3, b:3)", "Add(@, c)")
pattern("conv-binary-unary", INDUCTOR + "fx_passes/mkldnn_fusion.py (binary + unary fusion)",
        "Conv(x:4, w:w, b:w1)", "Sub(@, y)", "Relu(@)")  # fmt: skip
pattern("bn-relu-decomposed", INDUCTOR + "decomposition.py (batch_norm, eval)",
        "BatchNormalization(x, s:w, c:w, m:w, v:w)", "Relu(@)")  # fmt: skip
pattern("conv-conv-channels-last", INDUCTOR + "graph.py (layout_opt for convolutions)", "Conv(x:4, w:w, b:w1)",
        "Relu(@)", "Conv(@, u:w, c:w1)")  # fmt: skip
pattern(
    "silu", INDUCTOR + "scheduler.py (pointwise fusion); " + ORT + "quick_gelu_fusion.cc", "Sigmoid(x)", "Mul(x, @)"
)
pattern("mish-decomposed", INDUCTOR + "scheduler.py (pointwise fusion)", "Softplus(x)", "Tanh(@)", "Mul(x, @)")
pattern("hardswish-decomposed", INDUCTOR + "decomposition.py (hardswish)", "HardSigmoid(x)", "Mul(x, @)")
pattern("gelu-erf-shape", ORT + "gelu_fusion.cc; " + INDUCTOR + "scheduler.py", "Div(x, s:w0)", "Erf(@)",
        "Add(@, one:w0)", "Mul(x, @)")  # fmt: skip
pattern("concat-relu", INDUCTOR + "lowering.py (cat with pointwise inputs)", "Concat(a, b)", "Relu(@)")
pattern("slice-concat", INDUCTOR + "fx_passes/split_cat.py", "Slice(x)", "Concat(@, y)")
pattern("reshape-transpose-reshape", ORT + "transpose_optimizer/; " + INDUCTOR + "lowering.py (views)",
        "Reshape(x)", "Transpose(@)", "Reshape(@)")  # fmt: skip
pattern("matmul-softmax", INDUCTOR + "fx_passes/fuse_attention.py", "MatMul(a, b)", "Softmax(@){onnx_axis=-1}")
pattern("scaled-softmax", INDUCTOR + "fx_passes/joint_graph.py (mul_softmax_pattern)", "Mul(x, =0.125)",
        "Softmax(@){onnx_axis=-1}")  # fmt: skip
pattern("divided-softmax", INDUCTOR + "fx_passes/joint_graph.py (div_softmax_pattern)", "Div(x, s:w0)",
        "Softmax(@){onnx_axis=-1}")  # fmt: skip
