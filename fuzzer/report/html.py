"""Self-contained HTML pages (no script, no network): a bug's report.md with its graph picture inline,
and a campaign's page of bugs, outcomes, coverage and its course over time."""

from __future__ import annotations

from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML

from fuzzer.core.files import write_atomic
from fuzzer.report.bug import META, PICTURE, REPORT, ReportError
from fuzzer.report.campaign import STATS, SUMMARY, Bug, Campaign, is_campaign, load_campaign, outcome_table
from fuzzer.report.plots import bar_chart, line_chart, stacked_bars
from specs import REGISTRY

PAGE = "report.html"
TOP_OPTIMIZATIONS = 25
RATE_WINDOWS = 20
STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; }
.known { color: #777; }
.new { color: #b00; font-weight: bold; }
section { margin-bottom: 2em; }
"""


def _page(heading: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(heading)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def bug_page(folder: Path, back: str | None = None) -> str:
    """report.md as HTML, its graph picture inline so the page stands alone."""

    def image(self: RendererHTML, tokens: list, index: int, options: dict, env: dict) -> str:
        if tokens[index].attrGet("src") == PICTURE and (folder / PICTURE).exists():
            return (folder / PICTURE).read_text()
        return RendererHTML.image(self, tokens, index, options, env)

    markdown = MarkdownIt("commonmark").enable("table")
    markdown.add_render_rule("image", image)
    report = (folder / REPORT).read_text()
    nav = f'<p><a href="{escape(back)}">← campaign</a></p>\n' if back else ""
    return _page(report.splitlines()[0].lstrip("# "), nav + markdown.render(report))


def campaign_page(campaign: Campaign) -> str:
    """Bug table (each linked to its page), totals, outcomes per backend, coverage, and plots over time."""
    summary = campaign.summary
    parts = [
        f"<h1>dlfuzz campaign {escape(campaign.path.name)}</h1>",
        f"<p>{len(campaign.new)} new bug(s), {len(campaign.known)} known. "
        f"{summary.get('cases', len(campaign.lines))} cases ({summary.get('valid', 0)} valid, "
        f"{summary.get('finite', 0)} finite) in {summary.get('seconds', 0)} s, "
        f"{summary.get('cases_per_minute', 0)} cases/min. "
        + " ".join(f'<a href="{name}">{name}</a>' for name in (SUMMARY, STATS) if (campaign.path / name).exists())
        + "</p>",
        _section("Bugs", _bug_table(campaign.bugs) if campaign.bugs else "<p>No bug found.</p>"),
        _section(
            "Bugs found over time",
            line_chart(_bugs_over_time(campaign), "new bugs over time", "minutes", "new bugs", step=True),
        ),
        _section(
            "Cases per minute over time",
            line_chart(_rate_over_time(campaign), "cases per minute over time", "minutes", "cases/min"),
        ),
        _section("Outcomes per backend", _outcomes(summary)),
        _section("Op-type coverage", _op_coverage(campaign.lines)),
        _section("Dtype coverage", _dtype_coverage(campaign.lines)),
        _section("Optimization coverage per compiler", _optimizations(campaign)),
    ]
    return _page(f"dlfuzz campaign {campaign.path.name}", "\n".join(parts))


def _section(heading: str, body: str) -> str:
    return f"<section><h2>{escape(heading)}</h2>\n{body}\n</section>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cells) + "</tr>\n" for cells in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def _cell(text: Any, numeric: bool = False) -> str:
    return f'<td class="num">{escape(str(text))}</td>' if numeric else f"<td>{escape(str(text))}</td>"


def _bug_table(bugs: list[Bug]) -> str:
    rows = []
    for bug in bugs:
        state = f'<td class="known">known: corpus/{escape(bug.known)}</td>' if bug.known else '<td class="new">new</td>'
        name = (
            f'<td><a href="{escape(bug.folder)}/{PAGE}">{escape(bug.title)}</a><br>'
            f"<code>{escape(bug.folder)}</code></td>"
            if bug.folder
            else f"<td><code>{escape(bug.signature)}</code></td>"
        )
        rows.append(
            [state, name, _cell(bug.project), _cell(bug.symptom), _cell(", ".join(bug.ops))]
            + [_cell(bug.nodes, True), _cell(bug.seen, True), _cell(bug.repro)]
        )
    return _table(["", "bug", "system", "symptom", "ops", "nodes", "seen", "repro"], rows)


def _bugs_over_time(campaign: Campaign) -> list[tuple[float, float]]:
    points, found = [(0.0, 0.0)], set()
    for line, seconds in zip(campaign.lines, campaign.elapsed()):
        found.update(line.get("bugs", []))
        points.append((seconds / 60, float(len(found))))
    return points


def _rate_over_time(campaign: Campaign) -> list[tuple[float, float]]:
    """Cases finished per minute in each of (at most RATE_WINDOWS) equal spans of the campaign."""
    times = campaign.elapsed()
    if not times or times[-1] <= 0:
        return []
    windows = min(RATE_WINDOWS, len(times))
    span = times[-1] / windows
    counts = Counter(min(int(t / span), windows - 1) for t in times)
    return [((window + 1) * span / 60, 60 * counts[window] / span) for window in range(windows)]


def _outcomes(summary: dict[str, Any]) -> str:
    table = outcome_table(summary)
    if not table:
        return "<p>No backend ran.</p>"
    statuses = list(next(iter(table.values())))
    rows = [[_cell(name)] + [_cell(counts[s], True) for s in statuses] for name, counts in table.items()]
    return stacked_bars(summary.get("backends", {}), "outcomes per backend") + _table(["backend", *statuses], rows)


def _op_coverage(lines: list[dict[str, Any]]) -> str:
    drawn = Counter(op for line in lines for op in line.get("ops", []))
    never = sorted(set(REGISTRY) - set(drawn))
    text = f"<p>{len(drawn)} of {len(REGISTRY)} op types drawn (cases holding each).</p>"
    if never:
        text += f"<p>Never drawn: {escape(', '.join(never))}.</p>"
    return text + bar_chart(drawn.most_common(), "cases per op type")


def _dtype_coverage(lines: list[dict[str, Any]]) -> str:
    drawn = Counter(dtype for line in lines for dtype in line.get("dtypes", []))
    if not drawn:
        return "<p>Not recorded by this campaign.</p>"
    return "<p>Cases holding a tensor of each dtype.</p>" + bar_chart(drawn.most_common(), "cases per dtype")


def _optimizations(campaign: Campaign) -> str:
    """Per compiler: its distinct optimizations (summary.json) and the cases each one fired in (stats.jsonl)."""
    fired: dict[str, Counter] = {}
    for line in campaign.lines:
        for name, result in line.get("backends", {}).items():
            fired.setdefault(name, Counter()).update(key for key, n in result.get("optimizations", {}).items() if n > 0)
    coverage = campaign.summary.get("coverage", {})
    shares = coverage.get("changed_share", {})
    parts = []
    for name, counts in fired.items():
        if not counts:
            continue
        distinct = coverage.get("optimizations", {}).get(name, len(counts))
        share = f", changed the graph in {100 * shares[name]:.0f}% of cases" if name in shares else ""
        rest = len(counts) - TOP_OPTIMIZATIONS
        parts.append(
            f"<h3>{escape(name)}</h3><p>{distinct} distinct optimizations{share}; cases each fired in"
            f"{f' (the {TOP_OPTIMIZATIONS} most frequent; {rest} more)' if rest > 0 else ''}:</p>"
            + bar_chart(counts.most_common(TOP_OPTIMIZATIONS), f"{name} optimizations")
        )
    return "\n".join(parts) or "<p>No compiler recorded an optimization.</p>"


def write_html(path: Path) -> Path:
    """report.html for a bug folder, or for a campaign with one page per bug folder it links to."""
    if (path / META).exists():
        write_atomic(path / PAGE, bug_page(path).encode())
        return path / PAGE
    if not is_campaign(path):
        raise ReportError(f"{path}: neither a bug folder (no {META}) nor a campaign (no bugs/ or {SUMMARY})")
    campaign = load_campaign(path)
    for bug in campaign.bugs:
        if bug.folder:
            back = "/".join([".."] * len(Path(bug.folder).parts)) + f"/{PAGE}"
            write_atomic(path / bug.folder / PAGE, bug_page(path / bug.folder, back).encode())
    write_atomic(path / PAGE, campaign_page(campaign).encode())
    return path / PAGE
