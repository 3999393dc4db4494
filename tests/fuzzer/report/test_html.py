from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fuzzer.campaign.loop import run_campaign
from fuzzer.campaign.state import CampaignOptions
from fuzzer.generate.generator import GenOptions
from fuzzer.report.bug import write_bug
from fuzzer.report.html import PAGE, write_html
from oracles.base import BackendInfo
from oracles.session import OracleSession
from tests.fuzzer.conftest import PLANTED_OPS
from tests.fuzzer.report.test_bug import INFOS, planted_mismatch, small_case


class Page(HTMLParser):
    """What a page links to and draws: hrefs and srcs, SVG charts and their marks, table rows."""

    def __init__(self, text: str):
        super().__init__()
        self.links: list[str] = []
        self.tags: dict[str, int] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.links += [value for name, value in attrs if name in ("href", "src") and value]


def assert_links_resolve(page: Path, text: str) -> Page:
    parsed = Page(text)
    for link in parsed.links:
        assert "://" not in link and not link.startswith("//"), f"{page}: {link} leaves the page's folder"
        assert (page.parent / link).is_file(), f"{page}: broken link {link}"
    return parsed


def planted_campaign(root: Path) -> Path:
    """A campaign folder by hand: a new and a known bug folder, three stats lines, a summary."""
    infos = INFOS | {"planted": BackendInfo("planted", "onnx", False, "1", "x")}
    case = small_case()
    for name in ("planted-new", "planted-known"):
        outcomes, finding, _ = planted_mismatch(case, "ort")
        finding.backend = "planted"
        outcomes["planted"] = outcomes.pop("ort")
        write_bug(root / "bugs" / name, name, finding, case, outcomes, {n: infos[n] for n in outcomes})
    statuses = {"eager": {"status": "ok"}, "planted": {"status": "mismatch", "optimizations": {"pass:FuseOps": 1}}}
    lines = [
        {"id": f"{i:06d}", "ops": ["Add", "Sigmoid"], "dtypes": ["float32"], "elapsed": 30.0 * (i + 1)}
        | {"backends": statuses, "bugs": ["planted-new"] if i == 1 else [], "known": ["planted-known"] if i else []}
        for i in range(3)
    ]
    (root / "stats.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = {
        "cases": 3,
        "valid": 3,
        "finite": 3,
        "backends": {"eager": {"ok": 3, "mismatch": 0}, "planted": {"ok": 0, "mismatch": 3}},
        "bugs": 1,
        "known": {"planted-known": "kept-case"},
        "coverage": {"optimizations": {"planted": 1}, "changed_share": {"planted": 1.0}},
    }
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def test_campaign_page_links_each_bug_page_and_draws_every_chart(tmp_path: Path) -> None:
    page = write_html(planted_campaign(tmp_path))
    text = page.read_text()
    parsed = assert_links_resolve(page, text)
    assert f"bugs/planted-new/{PAGE}" in parsed.links and f"bugs/planted-known/{PAGE}" in parsed.links
    assert text.index("planted-new") < text.index("planted-known") and "known: corpus/kept-case" in text
    # bugs over time, cases/min over time, outcomes, op types, dtypes, optimizations of `planted`
    assert parsed.tags["svg"] == 6 and parsed.tags["polyline"] == 2
    assert "pass:FuseOps" in text and "2 of " in text and "float32" in text
    for bug in ("planted-new", "planted-known"):
        bug_page = tmp_path / "bugs" / bug / PAGE
        parsed = assert_links_resolve(bug_page, bug_page.read_text())
        assert parsed.tags["svg"] == 1 and "img" not in parsed.tags, "the graph picture is inline"


def test_a_bug_folder_alone_gets_a_page_without_a_way_back(tmp_path: Path) -> None:
    folder = planted_campaign(tmp_path) / "bugs" / "planted-new"
    page = write_html(folder)
    assert page == folder / PAGE and Page(page.read_text()).links == []


def chromium(*args: str) -> str:
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (apt-get install -y chromium)")
def test_a_campaign_page_renders_in_a_headless_browser_with_no_broken_link(
    tmp_path: Path, planted_session: OracleSession
) -> None:
    options = CampaignOptions(
        out=tmp_path / "c",
        seed=3,
        max_tests=8,
        backends=tuple(planted_session.workers),
        gen=GenOptions(max_nodes=6, ops=PLANTED_OPS),
        reduce_budget=5,
        support_matrix=False,
    )
    summary = run_campaign(options, session=planted_session)
    assert summary["bugs"] >= 1, "the planted backends always fail on Sigmoid"
    page = write_html(options.out)
    dom = chromium("--dump-dom", page.as_uri())  # the page as the browser built it
    parsed = assert_links_resolve(page, dom)
    bug_pages = [link for link in parsed.links if link.startswith("bugs/")]
    assert len(bug_pages) == summary["bugs"] and parsed.tags["svg"] >= 5 and parsed.tags["polyline"] == 2
    for link in bug_pages:
        bug_dom = chromium("--dump-dom", (page.parent / link).as_uri())
        assert Page(bug_dom).tags.get("svg") == 1 and "Minimal graph" in bug_dom
        assert_links_resolve(page.parent / link, bug_dom)
    chromium(f"--screenshot={tmp_path / 'page.png'}", "--window-size=1200,2400", page.as_uri())
    assert (tmp_path / "page.png").stat().st_size > 20_000, "the page drew nothing"
