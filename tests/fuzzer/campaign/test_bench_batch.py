from __future__ import annotations

from fuzzer.campaign.bench_batch import bench_batch, render_table
from fuzzer.generate.generator import GenOptions
from oracles.session import OracleSession
from tests.fuzzer.conftest import FAULTY, PLANTED_OPS


def test_bench_batch_reports_seconds_per_case_for_every_backend_and_size() -> None:
    backends = ["eager", "ort-noopt", f"{FAULTY}:WrongWhenBatched"]
    gen = GenOptions(max_nodes=4, ops=tuple(op for op in PLANTED_OPS if op != "Sigmoid"))
    with OracleSession(backends, timeout=60) as session:
        report = bench_batch(session, [1, 3], rounds=2, seed=5, gen=gen)
    assert report["sizes"] == [1, 3] and report["rounds"] == 2
    assert set(report["backends"]) == {"eager", "ort-noopt", "wrong-when-batched"}
    for by_size in report["backends"].values():
        assert by_size["1"]["speedup"] == 1.0 and by_size["1"]["failed"] == 0
        assert by_size["3"]["seconds_per_case"] > 0 and by_size["3"]["failed"] == 0
    assert "K=3" in render_table(report)


def test_bench_batch_counts_the_second_shape_a_dynamic_configuration_judges_on_one_compile() -> None:
    backends = ["eager", f"{FAULTY}:EagerTwoShapes"]
    gen = GenOptions(max_nodes=3, ops=("Add", "Relu", "Mul"))
    with OracleSession(backends, timeout=60) as session:
        report = bench_batch(session, [1], rounds=4, seed=2, gen=gen)
    plain, dynamic = report["backends"]["eager"]["1"], report["backends"]["eager-two-shapes"]["1"]
    assert plain["shapes_per_case"] == 1 and plain["seconds_per_shape"] > 0
    assert dynamic["shapes_per_case"] > 1 and dynamic["seconds_per_shape"] > 0
    assert "s/shape" in render_table(report)
