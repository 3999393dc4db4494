from __future__ import annotations

import hashlib
import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner, Result

from fuzzer.campaign.state import CampaignOptions
from fuzzer.cli import main
from fuzzer.core.testcase import TestCase
from specs import spec
from specs.lowering import to_onnx
from tests.fuzzer.handmade import build, float32


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_every_command_has_help() -> None:
    for command in ("fuzz", "gen", "run", "reduce", "report", "replay", "keep", "specs", "bench"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_fuzz_without_a_budget_is_a_usage_error() -> None:
    result = invoke("fuzz")
    assert result.exit_code == 2 and "give --time or --max-tests" in result.output


def a_case(folder: Path) -> Path:
    """A small valid case folder with its model.onnx."""
    graph = build({"x": float32(2, 3)}, [("Sigmoid", ["x"], {}), ("Relu", ["t0"], {})])
    case = TestCase(graph, {"x": np.ones((2, 3), np.float32)}, {"id": "hand"})
    case.save(folder)
    (folder / "model.onnx").write_bytes(to_onnx(graph, {}).SerializeToString())
    return folder


def a_campaign(tmp_path: Path) -> Path:
    """A campaign folder as a kill leaves it: its campaign.json and one stats line."""
    folder = tmp_path / "c"
    folder.mkdir()
    options = CampaignOptions(out=folder, seed=5, max_tests=4, backends=("eager", "ort-noopt"))
    (folder / "campaign.json").write_text(json.dumps({"seed": 5, "options": options.to_json()}))
    (folder / "stats.jsonl").write_text('{"id": "000000", "verdict": "consistent", "stage_seconds": {}}\n')
    return folder


def corrupt(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        folder = a_case(tmp_path / "case")
        (folder / name).write_bytes(data)
        return folder

    return make


def truncated_onnx(tmp_path: Path) -> Path:
    data = (a_case(tmp_path / "case") / "model.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.onnx"


def onnx_with_unknown_op(tmp_path: Path) -> Path:
    model = onnx.load(str(a_case(tmp_path / "case") / "model.onnx"))
    model.graph.node[0].op_type = "Frobnicate"
    onnx.save(model, str(tmp_path / "odd.onnx"))
    return tmp_path / "odd.onnx"


def case_reading(op: str, reads: str) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        folder = a_case(tmp_path / "case")
        document = json.loads((folder / "case.json").read_text())
        document["graph"]["nodes"][0]["op"] = op
        document["graph"]["nodes"][0]["inputs"] = [reads]
        (folder / "case.json").write_text(json.dumps(document))
        return folder

    return make


def no_values(tmp_path: Path) -> Path:
    folder = a_case(tmp_path / "case")
    (folder / "values.npz").unlink()
    return folder


def a_file(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("not a folder")
    return tmp_path / "file"


def a_folder(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


FUZZ = ("fuzz", "--max-tests", "1", "--backends", "eager,ort-noopt")
BAD_INPUTS = {  # what a new user might type -> (the command, with {} for the path made, what the error says)
    "run a text file as .onnx": (corrupt("model.onnx", b"hello"), ("run", "{}/model.onnx"), "not a valid ONNX model"),
    "run a truncated ONNX model": (truncated_onnx, ("run", "{}"), "not a valid ONNX model"),
    "run an ONNX op no spec knows": (onnx_with_unknown_op, ("run", "{}"), "Frobnicate"),
    "run an empty folder": (a_folder, ("run", "{}"), "no case.json"),
    "run a file of another kind": (a_file, ("run", "{}"), "expected a case folder or an .onnx file"),
    "run a truncated case.json": (corrupt("case.json", b'{"graph": {"inpu'), ("run", "{}"), "unreadable case"),
    "run a case without values.npz": (no_values, ("run", "{}"), "unreadable case"),
    "run a corrupt values.npz": (corrupt("values.npz", b"PK\x03\x04garbage"), ("run", "{}"), "unreadable case"),
    "run a case op no spec knows": (case_reading("Frobnicate", "x"), ("run", "{}"), "ops no spec knows: Frobnicate"),
    "run a case reading a missing tensor": (case_reading("Sigmoid", "nowhere"), ("run", "{}"), "reads nowhere"),
    "run with an unknown backend": (a_case, ("run", "{}", "--backends", "eager,nosuch"), "unknown backend 'nosuch'"),
    "fuzz with no jobs": (a_folder, (*FUZZ[:3], "-j", "0", "--out", "{}/c"), "not a number of jobs"),
    "fuzz with an unknown backend": (a_folder, (*FUZZ[:3], "--backends", "nosuch", "--out", "{}/c"), "nosuch"),
    "fuzz with a backend not installed": (
        a_folder,
        (*FUZZ[:3], "--backends", "eager,nosuchpkg.compiler:Backend", "--out", "{}/c"),
        "module nosuchpkg.compiler is not installed",
    ),
    "fuzz with an unknown op": (a_folder, (*FUZZ, "--ops", "Sigmoid,NoSuchOp", "--out", "{}/c"), "NoSuchOp"),
    "fuzz with an unknown dtype": (a_folder, (*FUZZ, "--dtypes", "float7", "--out", "{}/c"), "unknown dtype"),
    "fuzz for 'abc' seconds": (a_folder, ("fuzz", "--time", "abc", "--out", "{}/c"), "--time"),
    "fuzz for -5 seconds": (a_folder, ("fuzz", "--time", "-5", "--out", "{}/c"), "--time"),
    "fuzz for no cases": (a_folder, ("fuzz", "--max-tests", "0", "--out", "{}/c"), "--max-tests"),
    "fuzz with no budget": (a_folder, ("fuzz", "--out", "{}/c"), "give --time or --max-tests"),
    "fuzz graphs of 0 nodes": (a_folder, (*FUZZ, "--max-nodes", "0", "--out", "{}/c"), "--max-nodes"),
    "fuzz into /proc": (a_folder, (*FUZZ, "--out", "/proc/dlfuzz-nope"), "cannot write in /proc"),
    "fuzz into a file": (a_file, (*FUZZ, "--out", "{}"), "is not a folder"),
    "fuzz under a file": (a_file, (*FUZZ, "--out", "{}/c"), "is not a folder"),
    "fuzz over another campaign": (a_campaign, (*FUZZ, "--out", "{}"), "already holds a campaign"),
    "resume nothing": (a_folder, ("fuzz", "--resume", "--out", "{}/c"), "holds no campaign to resume"),
    "resume with another seed": (a_campaign, ("fuzz", "--resume", "--seed", "6", "--out", "{}"), "--seed (seed was 5)"),
    "resume with other backends": (
        a_campaign,
        ("fuzz", "--resume", "--backends", "eager,ort", "--max-nodes", "10", "--out", "{}"),
        "--backends (backends was ['eager', 'ort-noopt'])",
    ),
    "resume a damaged campaign.json": (
        corrupt("campaign.json", b"{"),
        ("fuzz", "--resume", "--out", "{}"),
        "is damaged",
    ),
    "gen into /proc": (a_folder, ("gen", "--out", "/proc/dlfuzz-nope"), "cannot write in /proc"),
    "gen an unknown op": (a_folder, ("gen", "--ops", "NoSuchOp", "--out", "{}/g"), "unknown op(s) NoSuchOp"),
    "bench 0-node graphs": (a_folder, ("bench", "inputs", "--nodes", "0"), "node counts must be at least 1"),
    "bench x-node graphs": (a_folder, ("bench", "inputs", "--nodes", "10,x"), "comma-separated node counts"),
    "bench coverage keeping under a file": (
        a_file,
        ("bench", "coverage", "--cases", "1", "--backends", "eager,ort-noopt", "--keep", "{}"),
        "is a file",
    ),
    "bench campaign for no time": (a_folder, ("bench", "campaign", "--time", "0s"), "not a duration above zero"),
    "bench campaign for 2x": (a_folder, ("bench", "campaign", "--time", "2x"), "not a duration such as"),
    "bench campaign without a time": (a_folder, ("bench", "campaign"), "Missing option '--time'"),
    "bench campaign with no jobs": (a_folder, ("bench", "campaign", "--time", "1m", "-j", "1,0"), "number of jobs"),
    "bench campaign with jobs twice": (a_folder, ("bench", "campaign", "--time", "1m", "-j", "2,2"), "jobs twice"),
    "bench campaign keeping under a file": (
        a_file,
        ("bench", "campaign", "--time", "1s", "--backends", "eager,ort-noopt", "--out", "{}"),
        "is a file",
    ),
    "replay a missing corpus": (a_folder, ("replay", "{}/missing"), "does not exist"),
    "replay an empty corpus": (a_folder, ("replay", "{}"), "no kept cases"),
    "replay with no jobs": (a_folder, ("replay", "{}", "-j", "0"), "0 is not in the range x>=1"),
    "fuzz against an empty known corpus": (a_folder, ("fuzz", "--max-tests", "1", "--known", "{}"), "no kept cases"),
    "reduce for an unknown backend": (a_case, ("reduce", "{}", "--backend", "nosuch"), "unknown backend"),
    "report a folder of something else": (a_folder, ("report", "{}"), "neither a bug folder"),
    "cover a folder that is no campaign": (a_folder, ("cover", "{}", "--corpus", "{}/corpus"), "not a campaign"),
    "keep a folder that is no bug": (a_case, ("keep", "{}", "--corpus", "{}/../corpus"), "not a dlfuzz bug folder"),
    "an option no command has": (a_folder, ("fuzz", "--frobnicate"), "No such option '--frobnicate'"),
    "a command dlfuzz lacks": (a_folder, ("frobnicate",), "No such command"),
}


def tree(root: Path) -> dict[str, str]:
    """Every file and folder under root, files with a hash of their bytes: what a failed command leaves as it was."""
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "/"
        for p in root.rglob("*")
    }


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_one_line_with_status_2_and_leaves_the_disk_as_it_was(name: str, tmp_path: Path) -> None:
    make, args, message = BAD_INPUTS[name]
    made = make(tmp_path)
    before = tree(tmp_path)
    result = invoke(*(arg.replace("{}", str(made)) for arg in args))
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert tree(tmp_path) == before


def test_an_unexpected_exception_is_status_3_pointing_to_debug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("fuzzer.campaign.pipeline.prepare_case", broken)
    result = invoke("gen", "--out", str(tmp_path / "g"))
    (line,) = result.stderr.strip().splitlines()
    assert result.exit_code == 3 and "ZeroDivisionError: float division by zero" in line and "--debug" in line
    result = invoke("--debug", "gen", "--out", str(tmp_path / "g"))
    assert result.exit_code == 3 and "Traceback" in result.stderr and "in broken" in result.stderr


def test_help_documents_the_exit_statuses() -> None:
    for args in ((), ("fuzz",), ("run",), ("replay",), ("reduce",)):
        result = invoke(*args, "--help")
        assert result.exit_code == 0
        assert "2  bad input or usage" in result.output and "3  an internal error" in result.output


def test_gen_writes_a_loadable_case(tmp_path: Path) -> None:
    result = invoke("gen", "--seed", "4", "--out", str(tmp_path / "case"))
    assert result.exit_code == 0, result.output
    assert {"case.json", "values.npz", "model.onnx"} <= {p.name for p in (tmp_path / "case").iterdir()}
    again = invoke("gen", "--seed", "4", "--out", str(tmp_path / "again"))
    graphs = [json.loads((tmp_path / d / "case.json").read_text())["graph"] for d in ("case", "again")]
    assert graphs[0] == graphs[1]
    assert "return" in again.output


def test_specs_json_lists_ops_with_dtypes() -> None:
    result = invoke("specs", "--json", "--no-probe")
    data = json.loads(result.stdout)
    assert data["onnx_op_types"] >= 30
    assert all(row["dtypes"] for row in data["ops"] if spec(row["spec"]).arity())  # Range has no input


def test_reduce_writes_a_bug_folder_and_report_rerenders_it(tmp_path: Path) -> None:
    from tests.fuzzer.conftest import cases_with_sigmoid

    case = cases_with_sigmoid(1)[0]
    case.save(tmp_path / "case")
    backend = "tests.oracles.faulty_backends:CrashOnSigmoid"
    result = invoke("reduce", str(tmp_path / "case"), "--backend", backend, "--out", str(tmp_path / "bug"))
    assert result.exit_code == 1, result.output  # the case still fails: a bug found
    assert "-> 1 nodes, signature crash-sigmoid-crash-run-RuntimeError-" in result.output
    assert json.loads((tmp_path / "bug" / "meta.json").read_text())["ops"] == ["Sigmoid"]
    result = invoke("report", str(tmp_path / "bug"))
    assert result.exit_code == 0 and result.output.startswith("# [crash-sigmoid] RuntimeError in run")


def test_bench_inputs_prints_figures_per_size_and_method_as_json() -> None:
    result = invoke("bench", "inputs", "--nodes", "3,4", "--cases", "2", "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert set(report) == {"3", "4"}
    for row in report.values():
        assert {"search", "random"} <= set(row)
        assert {"finite", "median_ms", "p90_ms", "negative_share", "constant_outputs"} <= set(row["search"])


def test_bench_inputs_rejects_bad_sizes_in_one_line() -> None:
    result = invoke("bench", "inputs", "--nodes", "10,x")
    assert result.exit_code == 2 and "comma-separated node counts" in result.output


def test_resuming_a_campaign_whose_budget_is_spent_says_so_without_starting_backends(tmp_path: Path) -> None:
    campaign = a_campaign(tmp_path)
    before = tree(tmp_path)
    result = invoke("fuzz", "--resume", "--max-tests", "1", "--seed", "5", "--out", str(campaign))
    assert result.exit_code == 0 and "has run its 1 cases; give a larger --max-tests" in result.stderr
    assert tree(tmp_path) == before


def test_replay_exit_status_junit_and_markdown(tmp_path: Path) -> None:
    from tests.fuzzer.campaign.test_replay import RAISES, kept_case

    kept_case(tmp_path / "corpus", "kept", {"raises": {"status": "crash"}, "eager": {"status": "ok"}})
    backends = f"eager,ort-noopt,{RAISES}"
    junit, markdown = tmp_path / "out" / "r.xml", tmp_path / "out" / "r.md"
    args = (
        "replay",
        str(tmp_path / "corpus"),
        "--backends",
        backends,
        "--junit",
        str(junit),
        "--markdown",
        str(markdown),
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "1 cases, 2 checks, 0 regressions, 1 still failing" in result.output
    suite = ET.fromstring(junit.read_bytes())
    assert (suite.tag, suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("testsuite", "2", "0", "1")
    assert "| still-failing | kept | raises | crash | crash |" in markdown.read_text()
    assert invoke(*args, "--strict").exit_code == 1
    kept_case(tmp_path / "corpus", "regressed", {"raises": {"status": "ok"}})
    assert invoke(*args).exit_code == 1


def test_replay_runs_the_configuration_a_kept_bug_was_found_on(tmp_path: Path) -> None:
    kept = "tvm-convertlayout-single-input-sum"  # a tvm-passes bug: ConvertLayout crashes without any conv
    shutil.copytree(Path(__file__).resolve().parent.parent / "corpus" / kept, tmp_path / "corpus" / kept)
    result = invoke("replay", str(tmp_path / "corpus"), "--backends", "eager,ort-noopt")
    assert result.exit_code == 0, result.output
    assert f"still-failing {kept} tvm-passes" in result.output and "3 checks, 0 regressions" in result.output


def test_report_prints_a_campaign_as_json_new_bugs_first_and_writes_its_html(tmp_path: Path) -> None:
    from tests.fuzzer.report.test_html import planted_campaign

    campaign = planted_campaign(tmp_path)
    result = invoke("report", str(campaign), "--html", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [bug["signature"] for bug in document["new"]] == ["planted-new"]
    assert [(bug["signature"], bug["known"]) for bug in document["known"]] == [("planted-known", "kept-case")]
    assert document["html"] == str(campaign / "report.html") and (campaign / "report.html").is_file()
    result = invoke("report", str(campaign / "bugs" / "planted-new"), "--json")
    assert json.loads(result.stdout)["signature"] == "planted-new"


@pytest.mark.slow
def test_fuzz_ends_with_a_table_for_people_or_with_summary_json(tmp_path: Path) -> None:
    args = ("fuzz", "--max-tests", "3", "--seed", "2", "--max-nodes", "6", "--ops", "Sigmoid,Add,Relu")
    args += ("--backends", "eager,ort-noopt,tests.oracles.faulty_backends:CrashOnSigmoid", "--include-unsupported")
    result = invoke(*args, "--reduce-budget", "5", "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    assert "fuzzing 3/3 cases (100%)" in result.stderr and "\r" not in result.stderr
    assert "cases/min" in result.stdout and "1 new bug(s):" in result.stdout
    assert str(tmp_path / "a" / "bugs" / "crash-sigmoid-crash-run-RuntimeError") in result.stdout
    assert f"summary.json: {tmp_path / 'a' / 'summary.json'}" in result.stdout
    result = invoke(*args, "--reduce-budget", "5", "--out", str(tmp_path / "b"), "--json")
    assert json.loads(result.stdout) == json.loads((tmp_path / "b" / "summary.json").read_text())


def test_gen_json_says_what_it_wrote(tmp_path: Path) -> None:
    result = invoke("gen", "--seed", "4", "--out", str(tmp_path / "case"), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    graph = json.loads((tmp_path / "case" / "case.json").read_text())["graph"]
    assert document["case"] == str(tmp_path / "case") and document["nodes"] == len(graph["nodes"])
    assert set(document) == {"case", "seed", "nodes", "ops", "finite", "problems"}
