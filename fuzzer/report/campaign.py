"""A campaign as people read it, drawn from the files it wrote (summary.json, stats.jsonl, bugs/): its
bugs, new first and known ones marked, its totals, and its course over time."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fuzzer.core.files import write_atomic
from fuzzer.report.bug import META, OCCURRENCES, REPORT, ReportError, render_report, sightings, title

SUMMARY, STATS = "summary.json", "stats.jsonl"
MAIN_STATUSES = ("ok", "mismatch", "crash")
REPRO_STATE = {True: "reproduces", False: "did not reproduce", None: "needs dlfuzz"}


@dataclass
class Bug:
    """One unique bug of a campaign; `known` names the corpus case it matches, None for a new one."""

    signature: str
    title: str
    folder: str | None  # relative to the campaign; None for a known bug filed without a folder
    project: str
    symptom: str
    ops: list[str]
    nodes: int
    seen: int
    repro: str
    known: str | None
    first_case: int | None  # index of the stats line that found it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Campaign:
    """What `dlfuzz report` and the closing summary show of a campaign folder."""

    path: Path
    summary: dict[str, Any]
    lines: list[dict[str, Any]]
    bugs: list[Bug]

    @property
    def new(self) -> list[Bug]:
        return [bug for bug in self.bugs if bug.known is None]

    @property
    def known(self) -> list[Bug]:
        return [bug for bug in self.bugs if bug.known is not None]

    def elapsed(self) -> list[float]:
        """Seconds into the campaign at the end of each case; older stats lines lack `elapsed`, so their
        stage seconds stand in."""
        times, clock = [], 0.0
        for line in self.lines:
            clock = line.get("elapsed", clock + sum(line.get("stage_seconds", {}).values()))
            times.append(clock)
        return times

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": str(self.path),
            "summary": str(self.path / SUMMARY),
            "cases": self.summary.get("cases", len(self.lines)),
            "new": [bug.to_json() for bug in self.new],
            "known": [bug.to_json() for bug in self.known],
        }


def is_campaign(path: Path) -> bool:
    return (path / "bugs").is_dir() or (path / SUMMARY).exists()


def load_campaign(path: Path) -> Campaign:
    """Read a campaign folder; a cut-off last stats line (a killed campaign) is left out."""
    if not is_campaign(path):
        raise ReportError(f"{path}: not a campaign (no bugs/ or {SUMMARY})")
    summary = json.loads((path / SUMMARY).read_text()) if (path / SUMMARY).exists() else {}
    lines = []
    if (path / STATS).exists():
        for text in (path / STATS).read_text().splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue
    return Campaign(path, summary, lines, _bugs(path, summary, lines))


def _bugs(path: Path, summary: dict[str, Any], lines: list[dict[str, Any]]) -> list[Bug]:
    """Bug folders and known signatures, new first, each group in the order the campaign found them."""
    known: dict[str, str] = dict(summary.get("known", {}))
    first: dict[str, int] = {}
    for index, line in enumerate(lines):
        for sig in [*line.get("bugs", []), *line.get("known", [])]:
            first.setdefault(sig, index)
    bugs = []
    for meta_path in sorted((path / "bugs").glob(f"*/{META}")):
        folder = meta_path.parent
        meta = json.loads(meta_path.read_text())
        bugs.append(
            Bug(
                signature=folder.name,
                title=title(meta),
                folder=folder.relative_to(path).as_posix(),
                project=meta["project"],
                symptom=meta["symptom"],
                ops=meta["ops"],
                nodes=meta["nodes"],
                seen=sightings(folder / OCCURRENCES) or 1,
                repro=REPRO_STATE[(meta.get("repro") or {}).get("reproduced")],
                known=known.get(folder.name),
                first_case=first.get(folder.name),
            )
        )
    filed = {bug.signature for bug in bugs}
    for sig, case in known.items():
        if sig not in filed:
            seen = sum(sig in line.get("known", []) for line in lines)
            bugs.append(Bug(sig, sig, None, "", "", [], 0, seen, "", case, first.get(sig)))
    return sorted(bugs, key=lambda b: (b.known is not None, b.first_case is None, b.first_case or 0, b.signature))


def bug_title(campaign: Path, signature: str) -> str:
    """The one-line title of a campaign's bug, or its signature while its folder is not written."""
    meta = campaign / "bugs" / signature / META
    return title(json.loads(meta.read_text())) if meta.exists() else signature


def outcome_table(summary: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per backend its ok, mismatch and crash counts, and any other status some backend had."""
    backends = summary.get("backends", {})
    order = dict.fromkeys([*MAIN_STATUSES, *(status for counts in backends.values() for status in counts)])
    used = [s for s in order if s in MAIN_STATUSES or any(counts.get(s) for counts in backends.values())]
    return {name: {status: counts.get(status, 0) for status in used} for name, counts in backends.items()}


def render_summary(campaign: Campaign) -> str:
    """Markdown index of a campaign's bugs, new first and known ones marked, with links to their reports."""
    summary = campaign.summary
    lines = [f"# dlfuzz campaign: {len(campaign.new)} new bug(s), {len(campaign.known)} known", ""]
    if summary:
        lines.append(
            f"{summary.get('cases', 0)} cases ({summary.get('valid', 0)} valid, {summary.get('finite', 0)} finite) "
            f"in {summary.get('seconds', 0)} s."
        )
    for heading, bugs in (("New bugs", campaign.new), ("Known bugs (in the corpus)", campaign.known)):
        if not bugs:
            continue
        lines += ["", f"## {heading} ({len(bugs)})", "", "| bug | system | symptom | ops | nodes | seen | repro |"]
        lines.append("|---|---|---|---|---|---|---|")
        for bug in bugs:
            name = f"[{bug.title}]({bug.folder}/{REPORT})" if bug.folder else f"`{bug.signature}`"
            mark = f" (known: corpus/{bug.known})" if bug.known else ""
            lines.append(
                f"| {name}{mark} | {bug.project} | {bug.symptom} | {', '.join(bug.ops)} | {bug.nodes} | {bug.seen} "
                f"| {bug.repro} |"
            )
    return "\n".join(lines) + "\n"


def rerender(path: Path) -> Path:
    """Write report.md again for a bug folder, or the summary report.md for a campaign folder."""
    if (path / META).exists():
        target, text = path / REPORT, render_report(path)
    elif is_campaign(path):
        target, text = path / REPORT, render_summary(load_campaign(path))
    else:
        raise ReportError(f"{path}: neither a bug folder (no {META}) nor a campaign (no bugs/ or {SUMMARY})")
    write_atomic(target, text.encode())
    return target
