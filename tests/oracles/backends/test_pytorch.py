from __future__ import annotations

from oracles.base import Restriction
from oracles.session import OracleSession
from tests.oracles.backends import graphs


def test_two_pointwise_ops_become_one_kernel(real_session: OracleSession) -> None:
    outcome = real_session.run(graphs.add_relu(), only=["inductor"])["inductor"]
    assert outcome.status == "ok"
    fired = outcome.optimizations
    assert fired["generated_kernel_count"] == fired["ir_nodes_pre_fusion"] == fired["kernel:fused_add_relu"] == 1


def test_a_matmul_and_bias_add_fire_the_pattern_matcher(real_session: OracleSession) -> None:
    """Inductor's post-grad patterns rewrite mm + add into addmm, one extern call and no kernel."""
    outcome = real_session.run(graphs.matmul_add(), only=["inductor"])["inductor"]
    assert outcome.status == "ok"
    assert outcome.optimizations["pattern_matcher_count"] >= 1
    assert outcome.optimizations["extern_calls"] == 1 and "generated_kernel_count" not in outcome.optimizations


def test_a_pattern_match_is_named_after_the_rule_that_rewrote_it(real_session: OracleSession) -> None:
    """torch's own per-pattern counter names a rule by its pattern's root op, so every rule rooted at
    `sub` (mul_softmax_pattern among them) counted as one optimization."""
    fired = real_session.run(graphs.scaled_softmax(), only=["inductor"])["inductor"].optimizations
    assert fired.get("pattern:joint_graph.mul_softmax_pattern") == 1, sorted(fired)


def test_one_op_fires_no_pattern_and_counts_no_cache_bookkeeping(real_session: OracleSession) -> None:
    outcomes = real_session.run(graphs.relu(), only=["inductor", "eager"])
    fired = outcomes["inductor"].optimizations
    assert fired["generated_kernel_count"] == 1
    assert not any(key.startswith(("pattern", "fxgraph_", "autograd_cache")) for key in fired)
    assert outcomes["eager"].optimizations == {}


def test_a_graph_compiled_again_records_what_its_first_compile_did(real_session: OracleSession) -> None:
    """Inductor's FX graph cache would serve the second compile and replay only part of the counters,
    so what a case records (and the feedback draws from) would hang on the machine's cache."""
    first, second = (real_session.run(graphs.matmul_add(), only=["inductor"])["inductor"] for _ in range(2))
    assert first.status == second.status == "ok"
    assert any(key.startswith("pattern:") for key in second.optimizations)
    assert first.optimizations == second.optimizations


def test_a_restriction_compiles_with_an_earlier_backend_or_without_a_subsystem(real_session: OracleSession) -> None:
    case = graphs.add_relu()
    eager = real_session.run(case, ["inductor"], {"inductor": Restriction(1)})["inductor"]
    unlowered = real_session.run(case, ["inductor"], {"inductor": Restriction(disabled=("lowerings",))})["inductor"]
    assert eager.stages == ("eager", "aot_eager", "aot_eager_decomp_partition", "inductor")
    assert "lowerings" in eager.switches and "post_grad_passes" in eager.switches
    assert eager.status == unlowered.status == "ok"
    assert eager.optimizations.get("generated_kernel_count", 0) == 0
    assert unlowered.optimizations.get("generated_kernel_count", 0) == 0, "every op falls back to aten"
