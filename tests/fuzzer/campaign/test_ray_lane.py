from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from fuzzer.campaign.loop import run_campaign
from fuzzer.campaign.pipeline import CasePipeline, Judged, Stage
from fuzzer.campaign.state import CampaignOptions
from fuzzer.core.ir import Graph
from fuzzer.generate.generator import GenOptions
from tests.test_cli import invoke

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[3]
CASES = 6


def test_an_unreachable_cluster_is_one_line_and_status_2(tmp_path: Path) -> None:
    assert not ray.is_initialized(), "runs before the cluster fixture: connecting is what it tests"
    out = tmp_path / "c"
    args = ("--max-tests", "1", "--backends", "eager,ort-noopt", "--ray", "127.0.0.1:1", "--out", str(out))
    result = invoke("fuzz", *args)
    (line,) = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and "Ray cluster 127.0.0.1:1 cannot be reached" in line
    assert not out.exists()


@pytest.fixture(scope="module")
def cluster(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[None]:
    """A Ray cluster on this machine: the driver here, two CPUs for two actors. Ray nices its workers
    (15) by default; on a machine busy with other work they would then barely start."""
    monkeypatch_module.setenv("RAY_worker_niceness", "0")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


class KillsItsActorOnce(CasePipeline):
    """Kills its own actor's process in the middle of case 2, the first time that case reaches it."""

    def judge(self, stage: Stage, cases: Sequence[tuple[dict, Graph]]) -> list[Judged]:
        killed = self.options.out.parent / "killed"
        if any(line["id"] == "000002" for line, _ in cases) and not killed.exists():
            killed.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().judge(stage, cases)


def test_a_campaign_on_two_actors_survives_losing_one_and_records_each_case_once(tmp_path: Path, cluster: None) -> None:
    options = CampaignOptions(
        out=tmp_path / "c",
        seed=6,
        max_tests=CASES,
        backends=("eager", "ort-noopt", "tests.oracles.faulty_backends:CrashOnSigmoid"),
        gen=GenOptions(max_nodes=4, ops=("Sigmoid", "Add", "Relu")),
        reduce_budget=10,
        support_matrix=False,
        feedback=False,
        known=None,
        jobs=2,
    )
    summary = run_campaign(options, pipeline=KillsItsActorOnce, ray_address="auto")
    assert (tmp_path / "killed").exists(), "an actor was killed mid-case"
    lines = [json.loads(text) for text in (tmp_path / "c" / "stats.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == [f"{index:06d}" for index in range(CASES)]
    assert all(line["verdict"] != "skipped" for line in lines), [line.get("failure") for line in lines]
    assert set(lines[2]["backends"]) == {"eager", "ort-noopt", "crash-sigmoid"}, "the lost case ran again"
    assert summary["cases"] == CASES and summary["worker_restarts"]["pipeline"] == 1
    # Actors never write the campaign folder: what they file comes back to the driver, which writes it.
    filed = {sig for line in lines for sig in line["bugs"]}
    assert len(filed) == 1, "the planted Sigmoid crash was drawn and filed once"
    folder = tmp_path / "c" / "bugs" / filed.pop()
    assert {"meta.json", "report.md", "repro.py", "case.json"} <= {p.name for p in folder.iterdir()}
    sightings = (folder / "occurrences.jsonl").read_text().splitlines()
    assert len(sightings) == sum(bool(line["bugs"]) for line in lines)
