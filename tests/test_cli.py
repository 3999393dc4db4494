from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fuzzer.cli import main
from specs import spec


def invoke(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def test_every_command_has_help() -> None:
    for command in ("fuzz", "gen", "run", "reduce", "report", "replay", "keep", "specs", "bench"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_fuzz_without_a_budget_is_a_usage_error() -> None:
    result = invoke("fuzz")
    assert result.exit_code == 2 and "give --time or --max-tests" in result.output


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    result = invoke("run", str(tmp_path))
    assert result.exit_code == 1 and "no case.json" in result.output and "Traceback" not in result.output
    (tmp_path / "x.txt").write_text("hi")
    result = invoke("run", str(tmp_path / "x.txt"))
    assert result.exit_code == 1 and "expected a case folder or an .onnx file" in result.output
    result = invoke("gen", "--out", str(tmp_path / "g"), "--ops", "NoSuchOp")
    assert result.exit_code == 1 and "unknown ops: NoSuchOp" in result.output
    result = invoke("gen", "--out", str(tmp_path / "g"), "--dtypes", "float7")
    assert result.exit_code == 2 and "unknown dtype" in result.output


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
    assert result.exit_code == 0, result.output
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
