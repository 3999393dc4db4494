from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fuzzer.core.testcase import CaseFormatError, TestCase
from fuzzer.generate.generator import generate
from fuzzer.inputs.sampling import sample_values


def test_case_round_trips_through_json_and_npz(tmp_path: Path) -> None:
    graph = generate(5)
    case = TestCase(graph, sample_values(graph, 5).values, {"seed": 5})
    case.save(tmp_path / "case")
    loaded = TestCase.load(tmp_path / "case")
    assert loaded.graph == graph and loaded.meta == {"seed": 5}
    for name, value in case.values.items():
        assert loaded.values[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded.values[name], value)


def test_bad_case_folders_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match=r"no case\.json"):
        TestCase.load(tmp_path)
    (tmp_path / "case.json").write_text("{not json")
    with pytest.raises(CaseFormatError, match="unreadable case"):
        TestCase.load(tmp_path)
    graph = generate(1)
    (tmp_path / "case.json").write_text(json.dumps({"graph": graph.to_json(), "meta": {}}))
    np.savez(tmp_path / "values.npz")
    with pytest.raises(CaseFormatError, match="no values for"):
        TestCase.load(tmp_path)
