from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fuzzer.campaign.bench_campaign import OWN_STAGES, bench_campaign, render_table
from fuzzer.campaign.state import CampaignError, CampaignOptions
from fuzzer.generate.generator import GenOptions
from oracles.base import PHASES
from oracles.session import OracleSession

BACKENDS = ("eager", "ort-noopt")
FIGURES = {
    "jobs",
    "cases",
    "graphs",
    "seconds",
    "cases_per_minute",
    "graphs_per_minute",
    "own_share",
    "stage_seconds",
    "phase_seconds",
    "value_sets",
    "label",
}


@pytest.fixture(scope="module")
def references() -> Iterator[OracleSession]:
    with OracleSession(list(BACKENDS), timeout=60) as session:
        yield session


def benched(seconds: float) -> CampaignOptions:
    """A short campaign on the two cheap references; its folder is the benchmark's to choose."""
    return CampaignOptions(
        out=Path("unused"),
        seed=1,
        time_budget=seconds,
        backends=BACKENDS,
        gen=GenOptions(max_nodes=4),
        support_matrix=False,
        known=None,
    )


def check_adds_up(run: dict[str, Any], folder: Path) -> None:
    """A run's figures against its own campaign folder, and its stage seconds against its lanes' time."""
    assert set(run) == FIGURES
    assert run["cases"] == len((folder / "stats.jsonl").read_text().splitlines()) > 0
    assert run["cases_per_minute"] == pytest.approx(60 * run["cases"] / run["seconds"], rel=0.01)
    stages, lane_seconds = run["stage_seconds"], run["seconds"] * run["jobs"]
    assert list(stages) == [*OWN_STAGES, *BACKENDS]
    assert all(0 <= seconds <= lane_seconds for seconds in stages.values()), stages
    own = sum(stages[stage] for stage in OWN_STAGES)
    assert own <= lane_seconds and run["own_share"] == pytest.approx(own / lane_seconds, abs=0.01)
    assert stages["generate"] > 0 and stages["search"] > 0
    for backend in BACKENDS:
        split = run["phase_seconds"][backend]
        assert list(split) == list(PHASES)
        assert 0 < sum(split.values()) <= stages[backend] + 0.05, (backend, split, stages[backend])


def test_a_run_reports_its_cases_per_minute_and_stage_seconds_that_add_up(
    tmp_path: Path, references: OracleSession
) -> None:
    report = bench_campaign(benched(2.0), [1], keep=tmp_path, session=references)
    assert report["jobs"] == 1 and report["seconds"] > 0
    check_adds_up(report, tmp_path / "j1")
    assert json.loads((tmp_path / "j1" / "summary.json").read_text())["cases"] == report["cases"]
    rows = list(render_table(report).columns[0].cells)
    assert rows[:5] == ["cases", "seconds", "cases/min", "graphs/min", "own share"]
    assert "ipc s" in rows and "eager s" in rows
    assert report["graphs"] == report["cases"], "without value sets every case draws its graph"
    with pytest.raises(CampaignError, match="already holds a campaign"):
        bench_campaign(benched(1.0), [1], keep=tmp_path, session=references)
    with pytest.raises(ValueError, match="one lane"):
        bench_campaign(benched(1.0), [2], session=references)


@pytest.mark.slow
def test_lane_counts_run_one_after_the_other_with_the_speedup_of_each(tmp_path: Path) -> None:
    report = bench_campaign(benched(3.0), [1, 2], keep=tmp_path)
    runs = report["runs"]
    assert [run["jobs"] for run in runs] == [1, 2]
    for run in runs:
        check_adds_up(run, tmp_path / f"j{run['jobs']}")
        assert run["stage_seconds"]["ipc"] > 0, "a lane is a child process: its replies cross a pipe"
    first, second = (run["cases_per_minute"] for run in runs)
    assert report["speedup"] == {"1": 1.0, "2": round(second / first, 2)}
    assert "speedup" in list(render_table(report).columns[0].cells)


def test_value_sets_share_a_graph_and_run_on_its_kept_compile_side_by_side_with_a_graph_per_case(
    tmp_path: Path, references: OracleSession
) -> None:
    report = bench_campaign(benched(3.0), [1], keep=tmp_path, session=references, value_sets=[1, 3])
    assert [run["label"] for run in report["runs"]] == ["1/v1", "1/v3"] and set(report["speedup"]) == {"1/v1", "1/v3"}
    one, three = report["runs"]
    assert one["graphs"] == one["cases"] and three["graphs"] == -(-three["cases"] // 3)
    lines = [json.loads(text) for text in (tmp_path / "j1-v3" / "stats.jsonl").read_text().splitlines()]
    for index, line in enumerate(lines):
        first = lines[index - index % 3]
        assert line.get("graph_of") == (None if line is first else first["id"])
        assert line["ops"] == first["ops"] and (line is first or line["seed"] != first["seed"])
        reused = {name for name, result in line.get("backends", {}).items() if result.get("reused")}
        ran = {name for name, result in line.get("backends", {}).items() if result["status"] == "ok"}
        if line is first:
            assert not reused
        elif first.get("backends") and all(r["status"] == "ok" for r in first["backends"].values()):
            assert reused == ran, (line["id"], reused, ran)
