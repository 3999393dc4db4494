from __future__ import annotations

import json
from pathlib import Path

import pytest

from fuzzer.campaign.bench_coverage import MODES, bench_coverage, per_system, render_table
from fuzzer.campaign.state import CampaignError, CampaignOptions
from fuzzer.generate.generator import GenOptions
from oracles.session import OracleSession
from tests.conftest import ALL_BACKENDS

SYSTEMS = ("ort", "tvm", "inductor")


def benched(seed: int, cases: int, max_nodes: int) -> CampaignOptions:
    """The campaign both modes run, on every backend; its folder is the benchmark's to choose."""
    return CampaignOptions(
        out=Path("unused"),
        seed=seed,
        max_tests=cases,
        backends=ALL_BACKENDS,
        gen=GenOptions(max_nodes=max_nodes),
        support_matrix=False,
    )


def test_both_modes_run_the_same_cases_on_real_compilers_and_the_guided_one_holds_patterns(
    real_session: OracleSession,
) -> None:
    report = bench_coverage(benched(seed=4, cases=6, max_nodes=8), session=real_session)
    blind, guided = report["blind"], report["guided"]
    assert set(report) == {*MODES, "ratios"}
    assert blind["cases"] == guided["cases"] == 6 and blind["invalid"] == guided["invalid"] == 0
    assert blind["pattern_share"] <= 0.5 < guided["pattern_share"]
    assert 0.5 < blind["finite_share"] <= 1 and 0.5 < guided["finite_share"] <= 1
    assert guided["mean_depth"] > blind["mean_depth"]
    for mode in (blind, guided):
        assert set(mode["optimizations"]) == set(ALL_BACKENDS)
        assert mode["optimizations"]["eager"] == mode["optimizations"]["ort-noopt"] == 0, "references fire nothing"
        assert {system: len(names) for system, names in mode["fired"].items()} == mode["optimizations"]
        assert mode["system_optimizations"] == {system: mode["optimizations"][system] for system in SYSTEMS}
        assert set(mode["compositions"]) == set(ALL_BACKENDS) and mode["compositions"]["eager"] == 0
        records = {system: mode["optimizations"][system] + mode["compositions"][system] for system in SYSTEMS}
        assert all(records.values()), f"each compiler records what it did: {records}"
    assert report["ratios"]["mean_depth"] == round(guided["mean_depth"] / blind["mean_depth"], 2)
    assert not Path("unused").exists(), "each mode runs in a temporary folder"
    table = render_table(report)
    assert table.splitlines()[0].split() == ["figure", "blind", "guided", "guided/blind"]
    assert "optimizations inductor" in table and "compositions tvm" in table and "finite_share" in table


def test_keep_holds_each_modes_campaign_and_refuses_a_folder_already_used(
    tmp_path: Path, real_session: OracleSession
) -> None:
    base = benched(seed=2, cases=2, max_nodes=4)
    report = bench_coverage(base, session=real_session, keep=tmp_path / "kept")
    for mode in MODES:
        summary = json.loads((tmp_path / "kept" / mode / "summary.json").read_text())
        assert summary["cases"] == report[mode]["cases"] == 2
    with pytest.raises(CampaignError, match="already holds a campaign"):
        bench_coverage(base, session=real_session, keep=tmp_path / "kept")


def test_a_compiler_counts_each_optimization_once_over_its_configurations() -> None:
    fired = {
        "eager": [],
        "tvm": ["pass:FuseOps", "fused:elemwise"],
        "tvm-passes": ["pass:FuseOps", "pass:ConvertLayout"],
    }
    assert per_system(fired | {"ort": ["transformer:GeluFusion"], "ort-noopt": []}) == {"tvm": 3, "ort": 1}
