from __future__ import annotations

from fuzzer.campaign.bench import METHODS, bench_inputs, render_table
from fuzzer.generate.generator import GenOptions

FIGURES = {
    "finite",
    "median_ms",
    "p90_ms",
    "median_cpu_ms",
    "p90_cpu_ms",
    "negative_share",
    "constant_outputs",
    "some_constant_output",
    "constant_output_share",
    "comparable",
    "nonfinite_at",
    "out_of_domain_at",
}


def test_bench_reports_both_methods_per_graph_size() -> None:
    report = bench_inputs([3, 5], cases=4, seed=1, gen=GenOptions(ops=("Sub", "Log", "Div", "Relu")))
    assert list(report) == ["3", "5"]
    for row in report.values():
        assert row["cases"] + row["skipped"] == 4
        for method in METHODS:
            figures = row[method]
            assert set(figures) == FIGURES
            assert 0 <= figures["finite"] <= 1 and 0 <= figures["negative_share"] <= 1
            assert figures["p90_ms"] >= figures["median_ms"] > 0
            assert figures["comparable"] <= figures["finite"]
            broken = sum(figures["nonfinite_at"].values()) + sum(figures["out_of_domain_at"].values())
            assert broken == round((1 - figures["comparable"]) * row["cases"])
            assert sum(figures["nonfinite_at"].values()) == round((1 - figures["finite"]) * row["cases"])
        assert row["search"]["finite"] >= row["random"]["finite"]
    table = render_table(report)
    assert table.splitlines()[0].split()[:3] == ["nodes", "method", "finite"]
    keys = ("nonfinite_at", "out_of_domain_at")
    breakdowns = sum(bool(row["search"][key]) for row in report.values() for key in keys)
    assert len(table.splitlines()) == 1 + 2 * len(METHODS) + breakdowns + 6
