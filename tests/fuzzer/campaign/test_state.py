from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from fuzzer.campaign.state import CampaignError, CampaignOptions, differences, open_records, stored_options
from fuzzer.generate.generator import GenOptions
from fuzzer.inputs.search import SearchOptions


def options(out: Path) -> CampaignOptions:
    return CampaignOptions(
        out=out, seed=5, max_tests=9, backends=("eager", "ort"), gen=GenOptions(max_nodes=4, ops=("Relu", "Add"))
    )


def test_options_round_trip_through_campaign_json(tmp_path: Path) -> None:
    stored = replace(options(tmp_path), search=SearchOptions(time_budget=0.25))
    (tmp_path / "campaign.json").write_text(json.dumps({"options": stored.to_json()}))
    assert stored_options(tmp_path) == stored
    assert replace(stored, search=None).to_json()["search"] is None


def test_a_new_budget_is_the_same_campaign_and_anything_else_is_another(tmp_path: Path) -> None:
    stored = options(tmp_path)
    assert differences(stored, replace(stored, max_tests=100, time_budget=60.0)) == {}
    changed = replace(stored, seed=6, gen=replace(stored.gen, max_nodes=7), search=None)
    assert differences(stored, changed) == {
        "seed": (5, 6),
        "gen.max_nodes": (4, 7),
        "search": ("on", None),
        **{f"search.{k}": (v, None) for k, v in stored.to_json()["search"].items()},
    }


def write_lines(path: Path, lines: list[dict], tail: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + tail)


def killed_campaign(out: Path) -> None:
    """A folder as a kill during case 2 leaves it: cases 0 and 1 recorded, case 2's traces half made."""
    write_lines(out / "stats.jsonl", [{"id": "000000"}, {"id": "000001"}], '{"id": "000002", "verd')
    write_lines(out / "bugs" / "seen-before" / "occurrences.jsonl", [{"case": "000000"}, {"case": "000002"}])
    write_lines(out / "bugs" / "new-in-case-2" / "occurrences.jsonl", [{"case": "000002"}])
    write_lines(out / "bugs" / "half-written" / "occurrences.jsonl", [])  # its meta.json was never written
    write_lines(out / "bugs" / "cut-sighting" / "occurrences.jsonl", [{"case": "000001"}], '{"case": "0000')
    for folder in ("seen-before", "new-in-case-2", "cut-sighting"):
        (out / "bugs" / folder / "meta.json").write_text("{}")
    (out / "bugs" / "aliases.json").write_text(json.dumps({"plain-a": "seen-before", "plain-b": "new-in-case-2"}))
    for case in ("000001", "000002"):
        (out / "invalid" / case).mkdir(parents=True)
    (out / "bugs" / "seen-before" / ".report.md.123.tmp").write_text("half")


def test_resume_rolls_back_exactly_what_the_unrecorded_case_left(tmp_path: Path) -> None:
    killed_campaign(tmp_path)
    records = open_records(tmp_path, resume=True)
    assert [line["id"] for line in records.lines] == ["000000", "000001"]
    assert (tmp_path / "stats.jsonl").read_text().endswith('"000001"}\n')
    assert sorted(p.name for p in (tmp_path / "bugs").iterdir()) == ["aliases.json", "cut-sighting", "seen-before"]
    assert (tmp_path / "bugs" / "seen-before" / "occurrences.jsonl").read_text() == '{"case": "000000"}\n'
    assert (tmp_path / "bugs" / "cut-sighting" / "occurrences.jsonl").read_text() == '{"case": "000001"}\n'
    assert json.loads((tmp_path / "bugs" / "aliases.json").read_text()) == {"plain-a": "seen-before"}
    assert [p.name for p in (tmp_path / "invalid").iterdir()] == ["000001"]
    assert not list(tmp_path.rglob("*.tmp"))
    assert len(records.repaired) == 7, records.repaired
    assert open_records(tmp_path, resume=True).repaired == []  # repaired once, clean after


def test_damage_other_than_a_cut_off_last_line_is_refused_not_skipped(tmp_path: Path) -> None:
    write_lines(tmp_path / "stats.jsonl", [{"id": "000000"}], 'garbage\n{"id": "000002"}\n')
    with pytest.raises(CampaignError, match="line 2 is damaged"):
        open_records(tmp_path, resume=True)
    write_lines(tmp_path / "stats.jsonl", [{"id": "000000"}, {"id": "000002"}])
    with pytest.raises(CampaignError, match="line 2 holds case '000002', not 000001"):
        open_records(tmp_path, resume=True)
