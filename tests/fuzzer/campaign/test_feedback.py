from __future__ import annotations

from pathlib import Path
from typing import Any

from fuzzer.campaign.feedback import MUTATION_SHARE, UNDER_DRAWN_BOOST, Coverage, Feedback, attribute_bin, node_kinds
from fuzzer.generate.generator import GenOptions, generate


def line(
    case_id: str, fired: dict[str, int], kinds: list[str], patterns: list[str], verdict: str = "consistent"
) -> dict[str, Any]:
    return {
        "id": case_id,
        "verdict": verdict,
        "backends": {"ort": {"status": "ok", "optimizations": fired}},
        "kinds": kinds,
        "patterns": {name: 1 for name in patterns},
    }


def test_attribute_bins_keep_what_steers_an_optimizer_and_drop_the_exact_number() -> None:
    assert [attribute_bin(v) for v in (-3, 0, 1, 7, 0.0, 2.5, -1.5, [1, 2], None, "SAME_UPPER")] == [
        *("neg", "0", "1", "many", "0", "pos", "neg", "len2", "None", "SAME_UPPER")
    ]


def test_node_kinds_name_op_input_dtypes_and_attribute_bins() -> None:
    graph = generate(3, GenOptions(max_nodes=4))
    kinds = node_kinds(graph)
    assert len(kinds) <= len(graph.nodes) and all(k.partition("(")[0] in graph.op_types() for k in kinds)


def test_coverage_counts_only_what_is_new() -> None:
    coverage = Coverage()
    assert (
        coverage.fold(line("000000", {"gained:FusedConv": 1, "lost:Relu": 1}, ["Relu(float32){}"], ["conv-relu"])) == 3
    )
    assert coverage.fold(line("000001", {"gained:FusedConv": 2, "zero": 0}, ["Relu(float32){}"], ["conv-relu"])) == 0
    assert coverage.fold(line("000002", {"gained:Gemm": 1}, [], ["matmul-add"])) == 1


def test_compositions_are_counted_apart_and_are_no_novelty() -> None:
    """Every new graph fuses or folds its own op mix: counted as optimizations, those records made
    every case new, so the pool took every case and every pattern kept its weight."""
    coverage = Coverage({"ort": ("gained", "lost")})
    assert coverage.fold(line("000000", {"transformer:GeluFusion": 1, "lost:Erf": 1}, [], ["gelu-erf"])) == 1
    assert coverage.fold(line("000001", {"transformer:GeluFusion": 1, "lost:Div": 1, "gained:Gelu": 1}, [], [])) == 0
    assert coverage.optimizations["ort"] == {"transformer:GeluFusion": 2}
    assert coverage.compositions["ort"] == {"lost:Erf": 1, "lost:Div": 1, "gained:Gelu": 1}


def test_patterns_whose_cases_keep_finding_new_coverage_keep_their_weight_and_spent_ones_lose_it() -> None:
    coverage = Coverage()
    for number in range(6):
        coverage.fold(line(f"{number:06d}", {f"fired{number}": 1}, [], ["finds"]))
        coverage.fold(line(f"{number:06d}", {"always": 1}, [], ["spent"]))
    assert coverage.pattern_weight("finds") == coverage.pattern_weight("never-drawn") == 1.0
    assert coverage.pattern_weight("spent") < 0.3


def test_over_drawn_ops_are_drawn_less_and_under_drawn_ones_more_within_the_support_matrix() -> None:
    coverage = Coverage()
    for number in range(20):
        coverage.fold(line(f"{number:06d}", {}, ["Relu(float32){}"], []))
    coverage.fold(line("000020", {}, ["Abs(float32){}"], []))
    weight = coverage.op_weight(lambda op, dtypes: 0.0 if op == "Neg" else 1.0)
    assert weight("Relu", ("float32",)) < 1.0 < weight("Abs", ("float32",)) == weight("Sigmoid", ("float32",))
    assert weight("Sigmoid", ("float32",)) == UNDER_DRAWN_BOOST, "an op never drawn yet is drawn most"
    assert weight("Neg", ("float32",)) == 0.0, "feedback never draws what the support matrix rules out"


def test_a_case_that_covers_something_first_is_pooled_on_disk_and_a_resume_reads_it_back(tmp_path: Path) -> None:
    pool = tmp_path / "pool"  # not made yet
    feedback = Feedback(pool)
    graph = generate(8, GenOptions(max_nodes=5))
    lines = [
        line("000000", {"a": 1}, [], []),
        line("000001", {"a": 1}, [], []),
        line("000002", {"b": 1}, [], [], verdict="invalid"),
    ]
    for each in lines:
        feedback.learn(each, graph)
    assert [each.get("pooled", False) for each in lines] == [True, False, False]
    assert sorted(p.name for p in pool.iterdir()) == ["000000.json"]
    resumed = Feedback.resume(pool, lines, {})
    assert list(resumed.pool) == ["000000"] and resumed.pool["000000"].dumps() == graph.dumps()
    assert resumed.coverage.optimizations == feedback.coverage.optimizations


def test_plans_mutate_pooled_cases_at_the_declared_share_deterministically(tmp_path: Path) -> None:
    feedback = Feedback(tmp_path)
    assert all(feedback.plan(seed, None).base is None for seed in range(50)), "an empty pool mutates nothing"
    feedback.learn(line("000000", {"a": 1}, [], []), generate(8, GenOptions(max_nodes=5)))
    bases = [feedback.plan(seed, None).base_id for seed in range(400)]
    assert abs(sum(b is not None for b in bases) / 400 - MUTATION_SHARE) < 0.07
    assert bases == [feedback.plan(seed, None).base_id for seed in range(400)]
