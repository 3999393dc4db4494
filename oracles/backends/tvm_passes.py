"""TVM Relax's pass lists, importable without TVM so reproducers can quote the same ones: the fixed
optimizing list of `tvm`, and the seeded random valid sequence of `tvm-passes`."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from fuzzer.core.ir import Graph
from fuzzer.core.testcase import TestCase
from specs.patterns import PATTERNS, occurrences

# tvm.compile's default CPU pipeline only legalizes; these passes fold constants and fuse ops,
# which is where graph-level miscompilations live.
OPTIMIZING_PASSES = (
    "DecomposeOpsForInference",
    "FoldConstant",
    "LegalizeOps",
    "AnnotateTIROpPattern",
    "FoldConstant",
    "FuseOps",
    "FuseTIR",
    "DeadCodeElimination",
)

# Rewrites of high-level Relax ops: any order, any number of times, before LegalizeOps lowers the ops
# they match (after it they find nothing). ConvertLayout means ConvertLayout(CONVERT_LAYOUT).
GRAPH_PASSES = (
    "FoldConstant",
    "CanonicalizeBindings",
    "DeadCodeElimination",
    "EliminateCommonSubexpr",
    "CombineParallelMatmul",
    "ConvertLayout",
    "DecomposeOpsForInference",
    "LiftTransformParams",
    "AdjustMatmulOrder",
    "ExpandMatmulOfSum",
    "ReorderPermuteDimsAfterConcat",
    "ReorderTakeAfterMatmul",
)
# Passes that hold at every stage once the ops are TIR calls: between legalization and fusion too.
CLEANUP_PASSES = ("FoldConstant", "CanonicalizeBindings", "DeadCodeElimination")
CONVERT_LAYOUT = {"relax.nn.conv2d": ["NHWC", "OHWI"]}  # the example of its docstring
PASS_ARGUMENTS = {"ConvertLayout": (CONVERT_LAYOUT,)}  # passes built with arguments; the rest take none
PASSES = "passes"  # the case meta entry that pins a tvm-passes list (a reduced one), preferred to the draw
# Where a list binds the weights: before it they are the function's parameters, as TVM's own flows keep
# them for the graph rewrites (CombineParallelMatmul matches only parameters, and the ONNX importer folds
# constant subgraphs such as ExpandMatmulOfSum's x @ (a + b) before any pass sees them); a list without
# it imports them as constants.
BIND_PARAMS = "BindParams"
BIND_SHARE = 0.75  # of drawn lists that keep the weights as parameters for a while
# Graph rewrites that need the weights bound: LiftTransformParams rewrites the parameters themselves.
AFTER_BINDING = ("LiftTransformParams",)
MAX_GRAPH_PASSES = 6
MAX_CLEANUP_PASSES = 2


def bound(module: Any) -> Any:
    """The module with the weights the importer kept as main's parameters bound as its constants.
    Reproducers carry this function's source, so it imports what it needs itself."""
    from tvm import relax
    from tvm.relax.frontend import detach_params

    unbound, params = detach_params(module)
    if not params.get("main"):
        return unbound
    main = unbound["main"]
    weights = main.params[int(main.attrs["num_input"]) :]
    return relax.transform.BindParams("main", {var.name: value for var, value in zip(weights, params["main"])})(unbound)


def case_passes(case: TestCase) -> tuple[str, ...]:
    """The pass list of `tvm-passes` for a case: the one pinned in its meta, else the draw of its seed
    with the passes written for the patterns its graph holds."""
    return tuple(case.meta[PASSES]) if PASSES in case.meta else drawn_passes(case_seed(case), wanted(case.graph))


def wanted(graph: Graph) -> tuple[str, ...]:
    """The Relax passes the patterns in a graph were written for, once each, in declaration order."""
    return tuple(dict.fromkeys(name for held in occurrences(graph) for name in PATTERNS[held].relax_passes))


def case_seed(case: TestCase) -> int:
    """The generator's seed of the case, which draws its pass sequence; 0 for a case read from a file."""
    return int(case.meta.get("seed", 0))


def drawn_passes(seed: int, wanted: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A random valid pass sequence, the same for the same seed and wanted passes: graph rewrites (the
    wanted ones among them) and usually BindParams, LegalizeOps, then (usually) AnnotateTIROpPattern
    before FuseOps before FuseTIR, cleanups drawn in between. Fusion needs the op patterns, FuseTIR needs
    fused functions, and both need TIR calls to work on."""
    rng = random.Random(f"tvm-passes {seed}")

    def some(passes: tuple[str, ...], most: int) -> list[str]:
        return [rng.choice(passes) for _ in range(rng.randint(0, most))]

    rewrites = some(GRAPH_PASSES, MAX_GRAPH_PASSES)
    for name in wanted:
        rewrites.insert(rng.randint(0, len(rewrites)), name)
    if rng.random() < BIND_SHARE:
        lifting = [i for i, name in enumerate(rewrites) if name in AFTER_BINDING]
        rewrites.insert(rng.randint(0, min(lifting, default=len(rewrites))), BIND_PARAMS)
    sequence = [*rewrites, "LegalizeOps", *some(CLEANUP_PASSES, MAX_CLEANUP_PASSES)]
    if rng.random() < 0.8:
        sequence += ["AnnotateTIROpPattern", *some(CLEANUP_PASSES, MAX_CLEANUP_PASSES), "FuseOps"]
        if rng.random() < 0.8:
            sequence.append("FuseTIR")
        sequence += some(CLEANUP_PASSES, MAX_CLEANUP_PASSES)
    return tuple(sequence)


# The pass list of each TVM backend for a case, by backend name: what the backend runs and its
# reproducer quotes.
PASS_LISTS: dict[str, Callable[[TestCase], tuple[str, ...]]] = {
    "tvm": lambda case: OPTIMIZING_PASSES,
    "tvm-passes": case_passes,
}
