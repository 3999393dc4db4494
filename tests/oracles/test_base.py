from __future__ import annotations

from oracles.base import Outcome


def test_a_stats_line_carries_what_fired_sorted_by_name_and_only_when_something_did() -> None:
    fired = Outcome("ok", seconds=0.5, optimizations={"lost:Relu": 1, "gained:com.microsoft.FusedConv": 1})
    assert list(fired.summary()["optimizations"]) == ["gained:com.microsoft.FusedConv", "lost:Relu"]
    assert "optimizations" not in Outcome("ok", seconds=0.5).summary()


def test_a_stats_line_carries_what_the_backend_drew_so_a_case_names_its_configuration() -> None:
    drawn = Outcome("ok", seconds=0.5, drawn={"passes": ["FoldConstant", "FuseOps"]})
    assert drawn.summary()["drawn"] == {"passes": ["FoldConstant", "FuseOps"]}
    assert "drawn" not in Outcome("ok", seconds=0.5).summary()
