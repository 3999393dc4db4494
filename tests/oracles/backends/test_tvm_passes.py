"""The pass sequence of tvm-passes: the same for a seed, varied across seeds, always valid."""

from __future__ import annotations

import numpy as np

from oracles.backends.tvm_passes import CLEANUP_PASSES, GRAPH_PASSES, drawn_passes
from oracles.backends.tvm_relax import TvmDrawnPasses
from specs.interpret import evaluate
from tests.fuzzer.handmade import conv_matmul_case

SEEDS = range(50)


def test_a_seed_draws_the_same_sequence_and_seeds_draw_many() -> None:
    assert [drawn_passes(seed) for seed in SEEDS] == [drawn_passes(seed) for seed in SEEDS]
    assert len({drawn_passes(seed) for seed in SEEDS}) >= 45


def test_every_draw_keeps_the_orderings_the_passes_need() -> None:
    """Graph rewrites before LegalizeOps, then AnnotateTIROpPattern < FuseOps < FuseTIR, each once."""
    for seed in SEEDS:
        passes = drawn_passes(seed)
        legalize = passes.index("LegalizeOps")
        assert set(passes[:legalize]) <= set(GRAPH_PASSES), passes
        lowered = [name for name in passes[legalize + 1 :] if name not in CLEANUP_PASSES]
        assert lowered in ([], ["AnnotateTIROpPattern", "FuseOps"], ["AnnotateTIROpPattern", "FuseOps", "FuseTIR"])


def test_fifty_drawn_sequences_compile_and_run_a_conv_matmul_graph_right() -> None:
    backend = TvmDrawnPasses()
    for seed in SEEDS:
        case = conv_matmul_case(seed)
        expected = evaluate(case.graph, case.values)["t4"].numpy()
        outputs = backend.run(backend.compile(backend.convert(case), case), case)
        np.testing.assert_allclose(outputs["t4"], expected, rtol=1e-4, atol=1e-5, err_msg=str(drawn_passes(seed)))
