from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer.campaign.support import (
    CRASHES,
    RARELY,
    SUPPORTED,
    UNSUPPORTED,
    SupportMatrix,
    load_or_probe,
    probe,
    probe_case,
)
from fuzzer.generate.generator import GenOptions, generate
from oracles.session import OracleSession

FAULTY = "tests.oracles.faulty_backends"
KEYS = [("Relu", "float32"), ("Relu", "float64"), ("Add", "int64"), ("Equal", "bool"), ("Where", "bool+float64")]


def test_probe_case_draws_exactly_the_requested_dtype_set() -> None:
    case = probe_case("Where", "bool+float64")
    (node,) = case.graph.nodes
    assert node.op == "Where"
    assert {case.graph.types[n].dtype for n in node.inputs} == {"bool", "float64"}


def test_group_probe_splits_failing_groups_down_to_the_culprits() -> None:
    backends = ["eager", f"{FAULTY}:LacksFloat64", f"{FAULTY}:Raises"]
    with OracleSession(backends, timeout=30) as session:
        matrix = probe(session, KEYS)
    assert {entry: statuses["eager"] for entry, statuses in matrix.entries.items()} == {
        SupportMatrix.key(op, key.split("+")): SUPPORTED for op, key in KEYS
    }
    lacks = {entry: statuses["lacks-float64"] for entry, statuses in matrix.entries.items()}
    assert lacks == {
        "Relu|float32": SUPPORTED,
        "Relu|float64": UNSUPPORTED,
        "Add|int64": SUPPORTED,
        "Equal|bool": SUPPORTED,
        "Where|bool+float64": UNSUPPORTED,
    }
    assert {statuses["raises"] for statuses in matrix.entries.values()} == {CRASHES}


def test_generator_never_draws_what_the_matrix_rules_out() -> None:
    matrix = SupportMatrix({"x": "1"}, {"Relu|float64": {"x": UNSUPPORTED}, "Relu|float32": {"x": SUPPORTED}})
    options = GenOptions(max_nodes=1, ops=("Relu",), dtypes=("float32", "float64"), reuse_probability=0.0)
    dtypes = {generate(seed, options, matrix.draw_weight).types["t0"].dtype for seed in range(20)}
    assert dtypes == {"float32"}


def test_an_op_one_backend_lacks_is_drawn_rarely_for_the_others_to_compare_not_never() -> None:
    """Regression: an op any one backend lacked was never drawn, so 8 of the 135 op types (Celu, OneHot,
    EyeLike, ... that TVM or ONNX Runtime lacks) never appeared in a campaign of the five default backends."""
    lacks = {"a": UNSUPPORTED, "b": SUPPORTED, "c": SUPPORTED}
    matrix = SupportMatrix({"x": "1"}, {"Celu|float32": lacks, "Relu|float32": dict.fromkeys(lacks, SUPPORTED)})
    assert matrix.draw_weight("Celu", ("float32",)) == RARELY
    options = GenOptions(max_nodes=1, ops=("Celu", "Relu"), dtypes=("float32",), reuse_probability=0.0)
    celus = sum(generate(seed, options, matrix.draw_weight).nodes[0].op == "Celu" for seed in range(200))
    assert 0 < celus < 100 / 2, celus
    alone = SupportMatrix({"x": "1"}, {"Celu|float32": {"a": UNSUPPORTED, "b": UNSUPPORTED, "c": SUPPORTED}})
    assert alone.draw_weight("Celu", ("float32",)) == 0.0, "one backend alone has nothing to compare with"


def test_op_dtype_pairs_a_backend_crashes_on_alone_are_drawn_rarely_not_never() -> None:
    matrix = SupportMatrix({"x": "1"}, {"Relu|float64": {"x": CRASHES}, "Sigmoid|float64": {"x": SUPPORTED}})
    options = GenOptions(max_nodes=1, ops=("Relu", "Sigmoid"), dtypes=("float64",), reuse_probability=0.0)
    assert matrix.draw_weight("Relu", ("float64",)) == RARELY
    relus = sum(generate(seed, options, matrix.draw_weight).nodes[0].op == "Relu" for seed in range(200))
    plain = sum(generate(seed, options).nodes[0].op == "Relu" for seed in range(200))
    assert 0 < relus < plain / 2, (relus, plain)


def test_matrix_is_cached_per_backend_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLFUZZ_CACHE", str(tmp_path))
    monkeypatch.setattr("fuzzer.campaign.support.probe_keys", lambda: KEYS[:2])
    with OracleSession(["eager", "ort-noopt"], timeout=30) as session:
        first = load_or_probe(session)
        cached = list(tmp_path.glob("support-*.json"))
        assert len(cached) == 2  # one per backend
        monkeypatch.setattr("fuzzer.campaign.support.probe", lambda *a, **k: pytest.fail("probed despite the cache"))
        assert load_or_probe(session) == first
    assert first.status("Relu", ["float32"], "ort-noopt") == SUPPORTED


def test_a_campaign_that_adds_a_backend_probes_only_that_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLFUZZ_CACHE", str(tmp_path))
    monkeypatch.setattr("fuzzer.campaign.support.probe_keys", lambda: KEYS[:2])
    with OracleSession(["eager"], timeout=30) as session:
        alone = load_or_probe(session)
    probed: list[list[str] | None] = []

    def recording(session: OracleSession, keys: list, progress: object = None, only: list[str] | None = None):
        probed.append(only)
        return probe(session, keys, progress, only)

    monkeypatch.setattr("fuzzer.campaign.support.probe", recording)
    with OracleSession(["eager", "ort-noopt"], timeout=30) as session:
        both = load_or_probe(session)
    assert probed == [["ort-noopt"]]
    assert both.status("Relu", ["float32"], "eager") == alone.status("Relu", ["float32"], "eager") == SUPPORTED
    assert both.status("Relu", ["float32"], "ort-noopt") == SUPPORTED
