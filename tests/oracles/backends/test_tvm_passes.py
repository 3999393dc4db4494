"""The pass sequence of tvm-passes: the same for a seed, varied across seeds, always valid."""

from __future__ import annotations

import numpy as np
import pytest

from fuzzer.core.testcase import TestCase
from fuzzer.generate.generator import GenOptions, generate
from fuzzer.inputs.search import search_values
from oracles.backends.tvm_passes import BIND_PARAMS, CLEANUP_PASSES, GRAPH_PASSES, case_passes, drawn_passes
from oracles.backends.tvm_relax import PASS_NOTE, TvmDrawnPasses
from oracles.base import Unsupported
from specs.interpret import evaluate
from specs.patterns import PATTERNS, occurrences
from tests.fuzzer.handmade import conv_matmul_case

SEEDS = range(50)


def test_a_seed_draws_the_same_sequence_and_seeds_draw_many() -> None:
    assert [drawn_passes(seed) for seed in SEEDS] == [drawn_passes(seed) for seed in SEEDS]
    assert len({drawn_passes(seed) for seed in SEEDS}) >= 45


def test_every_draw_keeps_the_orderings_the_passes_need() -> None:
    """Graph rewrites before LegalizeOps, BindParams among them before any LiftTransformParams (which
    rewrites the parameters), then AnnotateTIROpPattern < FuseOps < FuseTIR, each once."""
    binding = 0
    for seed in SEEDS:
        passes = drawn_passes(seed)
        legalize = passes.index("LegalizeOps")
        assert set(passes[:legalize]) <= {*GRAPH_PASSES, BIND_PARAMS}, passes
        assert passes.count(BIND_PARAMS) <= 1 and BIND_PARAMS not in passes[legalize:]
        if BIND_PARAMS in passes:
            binding += 1
            assert "LiftTransformParams" not in passes[: passes.index(BIND_PARAMS)], passes
        lowered = [name for name in passes[legalize + 1 :] if name not in CLEANUP_PASSES]
        assert lowered in ([], ["AnnotateTIROpPattern", "FuseOps"], ["AnnotateTIROpPattern", "FuseOps", "FuseTIR"])
    assert 0 < binding < len(SEEDS)  # both ways of holding the weights are drawn


def test_fifty_drawn_sequences_compile_and_run_a_conv_matmul_graph_right() -> None:
    backend = TvmDrawnPasses()
    for seed in SEEDS:
        case = conv_matmul_case(seed)
        expected = evaluate(case.graph, case.values)["t4"].numpy()
        outputs = backend.run(backend.compile(backend.convert(case), case), case)
        np.testing.assert_allclose(outputs["t4"], expected, rtol=1e-4, atol=1e-5, err_msg=str(drawn_passes(seed)))


@pytest.mark.parametrize("name", sorted(name for name, held in PATTERNS.items() if held.relax_passes))
def test_the_passes_a_pattern_was_written_for_run_on_it_and_rewrite_it(name: str) -> None:
    """A graph that holds the pattern draws its passes, and each of them changes the module in some draw."""
    template = PATTERNS[name]
    options = GenOptions(max_nodes=template.size, min_nodes=template.size, ops=template.ops, patterns="only")
    backend = TvmDrawnPasses()
    fired: set[str] = set()
    for seed in range(12):
        graph = generate(seed, options, pattern_weight=lambda drawn: float(drawn == name))
        if name not in occurrences(graph):
            continue
        case = TestCase(graph, search_values(graph, seed).values, {"seed": seed})
        assert set(template.relax_passes) <= set(case_passes(case))
        try:
            backend.compile(backend.convert(case), case)
        except Unsupported:
            continue  # an import TVM lacks (MaxPool's indices)
        except Exception as error:  # a crash in one of the passes (a TVM bug) is a rewrite that ran on it
            fired |= {note.removeprefix(PASS_NOTE) for note in getattr(error, "__notes__", ())}
            continue
        fired |= {key.removeprefix("pass:") for key in backend.optimizations(None, case)}
    assert set(template.relax_passes) <= fired
