from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from fuzzer.report.campaign import load_campaign
from fuzzer.report.console import LiveProgress, backend_counts, clock, print_closing
from tests.fuzzer.report.test_html import planted_campaign


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=160), out


def test_a_log_gets_plain_lines_at_an_interval_and_the_last_one() -> None:
    screen, out = console(terminal=False)
    with LiveProgress("fuzzing", "cases", screen, interval=3600) as display:
        for done in range(1, 31):
            display.show(done, 30, elapsed=2.0 * done, detail=[f"tvm ok {done}", "bugs 0"])
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert lines[0].startswith("fuzzing 1/30 cases (3%)  30.0 cases/min  elapsed 0:02  left 0:58 | tvm ok 1")
    assert lines[1].startswith("fuzzing 30/30 cases (100%)  30.0 cases/min  elapsed 1:00  left 0:00 | tvm ok 30")


def test_a_time_budget_bounds_the_bar_and_the_time_left() -> None:
    screen, out = console(terminal=False)
    with LiveProgress("fuzzing", "cases", screen, interval=0) as display:
        display.show(10, 100, elapsed=45.0, time_budget=60.0)
        display.show(3, None, elapsed=30.0, time_budget=60.0)
    first, second = out.getvalue().splitlines()
    assert "(75%)" in first and "left 0:15" in first
    assert "fuzzing 3 cases (50%)" in second and "left 0:30" in second


def test_a_terminal_gets_a_bar_with_its_detail_lines() -> None:
    screen, out = console(terminal=True)
    with LiveProgress("probing backend support", "checks", screen) as display:
        display.show(50, 200, elapsed=10.0, detail=["ort ok 50"])
        display.show(200, 200, elapsed=40.0, detail=["ort ok 200"])
    text = out.getvalue()
    assert "━" in text and "200/200 checks" in text and "300.0 checks/min" in text and "ort ok 200" in text


def test_backend_counts_and_clock_read_well() -> None:
    assert backend_counts("tvm", {"ok": 5, "mismatch": 0, "crash": 2}) == "tvm ok 5 crash 2"
    assert (clock(59.9), clock(61), clock(3725), clock(None)) == ("0:59", "1:01", "1:02:05", "?")


def test_the_closing_summary_lists_new_bugs_first_with_folders_and_where_summary_json_is(tmp_path: Path) -> None:
    screen, out = console(terminal=False)
    print_closing(load_campaign(planted_campaign(tmp_path)), screen)
    text = out.getvalue()
    assert "cases/min" in text and "planted" in text and "mismatch" in text
    new, known = text.split("1 known bug(s), already in the corpus:")
    assert "1 new bug(s):" in new and str(tmp_path / "bugs" / "planted-new") in new
    assert "[known: corpus/kept-case]" in known and str(tmp_path / "bugs" / "planted-known") in known
    assert f"summary.json: {tmp_path / 'summary.json'}" in known


def test_the_closing_summary_says_what_known_bugs_cost_per_half(tmp_path: Path) -> None:
    folder = planted_campaign(tmp_path)
    summary = json.loads((folder / "summary.json").read_text())
    summary["known_cost"] = {"cases": 7, "first_half": 5, "second_half": 2}
    (folder / "summary.json").write_text(json.dumps(summary))
    screen, out = console(terminal=False)
    print_closing(load_campaign(folder), screen)
    assert "cases spent on known bugs: 7 (first half 5, second half 2;" in out.getvalue()
