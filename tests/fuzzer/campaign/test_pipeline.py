from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fuzzer.campaign.pipeline import GRAPH_OF, BugIndex, CasePipeline, Marker, ShippedFilings, batch_sizes
from fuzzer.campaign.state import CampaignOptions
from fuzzer.inputs.sampling import case_uncomparable
from fuzzer.judge import judge_case
from fuzzer.report.bug import record_filing
from fuzzer.triage.filing import BugFolders, file_findings
from oracles.base import BackendInfo
from oracles.registry import load_backend
from oracles.session import OracleSession
from tests.fuzzer.conftest import cases_with_sigmoid
from tests.fuzzer.handmade import build, float32

VOLATILE = ("meta.json", "report.md")  # they hold the time of writing and the repro's run time


def test_a_shipped_filing_writes_the_folders_a_direct_one_does(tmp_path: Path, planted_session: OracleSession) -> None:
    direct, shipped = BugFolders(tmp_path / "direct", record_filing), BugFolders(tmp_path / "shipped", record_filing)
    for case in cases_with_sigmoid(2):
        outcomes, verdict = judge_case(planted_session, case, case_uncomparable(case))
        expected = file_findings(direct, case, outcomes, verdict, planted_session, 30)
        store = ShippedFilings(BugIndex.read(shipped), tmp_path / "scratch")
        assert file_findings(store, case, outcomes, verdict, planted_session, 30) == expected
        assert not shipped.root.exists() or sorted(shipped.filed()) == sorted(set(expected))
        store.shipment.apply(shipped)
        assert not any((tmp_path / "scratch").iterdir()), "the lane keeps nothing once shipped"
    assert shipped.filed() == direct.filed() and len(direct.filed()) == 2
    for folder in direct.root.iterdir():
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        twin = shipped.root / folder.name
        assert files == sorted(str(p.relative_to(twin)) for p in twin.rglob("*") if p.is_file())
        for name in files:
            if name not in VOLATILE and name != "occurrences.jsonl":
                assert (folder / name).read_bytes() == (twin / name).read_bytes(), name
        assert len((twin / "occurrences.jsonl").read_text().splitlines()) == 2
    assert shipped.aliases() == direct.aliases()


def test_a_batch_size_given_batches_every_batchable_backend_and_only_those() -> None:
    # Regression: --batch K batched only backends declaring a default size above 1, which none does,
    # so a forced batch batched nothing.
    infos = {name: load_backend(name)[0] for name in ("eager", "ort", "tvm", "inductor", "tvm-passes")}
    infos |= {name: load_backend(name)[0] for name in ("inductor-grad", "inductor-dynamic", "tvm-meta")}
    described = {
        name: BackendInfo(name, b.frontend, b.reference, "", "", b.batchable, b.batch_size) for name, b in infos.items()
    }
    options = CampaignOptions(out=Path("unused"), backends=tuple(infos))
    assert batch_sizes(replace(options, batch=4), described) == dict.fromkeys(("eager", "ort", "tvm", "inductor"), 4)
    assert batch_sizes(options, described) == {}, "no backend batches by default: it does not pay on this CPU"
    assert batch_sizes(replace(options, batch=4, value_sets=2), described) == {}


def test_a_graph_the_search_could_not_make_finite_has_its_other_value_sets_sampled(
    tmp_path: Path, planted_session: OracleSession
) -> None:
    """Over three 2-minute campaigns (seeds 3-5, --value-sets 4) no later value set of such a graph, which
    keeps its first set's weights, came out finite (0 of 9), and their searches cost up to 45% of search time."""
    never = build({"x": float32(4)}, [("Exp", ["x"], {}), ("Neg", ["t0"], {}), ("Log", ["t1"], {})], {"w": float32(4)})
    hopeful = build({"x": float32(6)}, [("Sub", ["x", "w"], {}), ("Log", ["t0"], {})], {"w": float32(6)})
    pipeline = CasePipeline(CampaignOptions(out=tmp_path, backends=("eager", "ort-noopt")), planted_session)
    for graph, later_method in ((never, "random"), (hopeful, "search")):
        lines = [{"id": "000000", "seed": 1, "stage_seconds": {}}]
        lines += [{"id": f"00000{i}", "seed": 1 + i, GRAPH_OF: "000000", "stage_seconds": {}} for i in (1, 2)]
        judged = pipeline.judge(Marker(), [(line, graph) for line in lines])
        methods = [j.line["search"]["method"] for j in judged]
        assert methods == ["search", later_method, later_method], graph.text()
        weights = [j.case.weights["w"] for j in judged]
        assert all((w == weights[0]).all() for w in weights), "value sets keep the graph's weights"
