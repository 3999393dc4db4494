"""TVM Relax's optimizing pass list, importable without TVM so reproducers can quote the same one."""

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
