"""Charts as inline SVG, so a report page needs no plotting library and no network."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, LEFT, BOTTOM, PAD = 640, 220, 56, 36, 12
ROW, LABEL = 18, 200
STATUS_COLORS = {
    "ok": "#6aa84f",
    "mismatch": "#e69138",
    "crash": "#cc0000",
    "timeout": "#8e7cc3",
    "died": "#444444",
    "unsupported": "#b7b7b7",
}
BAR_COLOR = "#3d85c6"


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="11">'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def _tick(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def line_chart(points: list[tuple[float, float]], label: str, x_label: str, y_label: str, step: bool = False) -> str:
    """A line over time (a step line for counts that only grow), with its axes' ranges marked."""
    x_max = max((x for x, _ in points), default=0.0) or 1.0
    y_max = max((y for _, y in points), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - PAD, HEIGHT - BOTTOM - PAD

    def at(x: float, y: float) -> str:
        return f"{LEFT + plot_w * x / x_max:.1f},{PAD + plot_h * (1 - y / y_max):.1f}"

    path = []
    for index, (x, y) in enumerate(points):
        if step and index:
            path.append(at(x, points[index - 1][1]))
        path.append(at(x, y))
    body = [
        f'<line x1="{LEFT}" y1="{PAD + plot_h}" x2="{LEFT + plot_w}" y2="{PAD + plot_h}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{PAD}" x2="{LEFT}" y2="{PAD + plot_h}" stroke="#333"/>',
        f'<text x="{LEFT - 4}" y="{PAD + 4}" text-anchor="end">{_tick(y_max)}</text>',
        f'<text x="{LEFT - 4}" y="{PAD + plot_h}" text-anchor="end">0</text>',
        f'<text x="{LEFT + plot_w}" y="{HEIGHT - 20}" text-anchor="end">{_tick(x_max)}</text>',
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="14" y="{PAD + plot_h / 2}" text-anchor="middle" transform="rotate(-90 14 {PAD + plot_h / 2})">'
        f"{escape(y_label)}</text>",
    ]
    if path:
        body.append(
            f'<polyline class="series" fill="none" stroke="{BAR_COLOR}" stroke-width="2" points="{" ".join(path)}"/>'
        )
    return _svg(WIDTH, HEIGHT, body, label)


def bar_chart(rows: list[tuple[str, float]], label: str) -> str:
    """Horizontal bars, one per row, each with its value."""
    top = max((value for _, value in rows), default=0) or 1
    span = WIDTH - LABEL - 60
    body = []
    for index, (name, value) in enumerate(rows):
        y = PAD + index * ROW
        body += [
            f'<text x="{LABEL - 6}" y="{y + 12}" text-anchor="end">{escape(name[:34])}</text>',
            f'<rect class="bar" x="{LABEL}" y="{y + 2}" width="{span * value / top:.1f}" height="{ROW - 5}" '
            f'fill="{BAR_COLOR}"/>',
            f'<text x="{LABEL + span * value / top + 4:.1f}" y="{y + 12}">{_tick(value)}</text>',
        ]
    return _svg(WIDTH, 2 * PAD + len(rows) * ROW, body, label)


def stacked_bars(rows: dict[str, dict[str, int]], label: str) -> str:
    """One bar per row split by status, with a legend of the statuses shown."""
    present = {s for counts in rows.values() for s, n in counts.items() if n}
    statuses = [s for s in STATUS_COLORS if s in present] + sorted(present - set(STATUS_COLORS))
    top = max((sum(counts.values()) for counts in rows.values()), default=0) or 1
    span = WIDTH - LABEL - 60
    body = []
    for index, (name, counts) in enumerate(rows.items()):
        y, x = PAD + index * ROW, float(LABEL)
        body.append(f'<text x="{LABEL - 6}" y="{y + 12}" text-anchor="end">{escape(name)}</text>')
        for status in statuses:
            width = span * counts.get(status, 0) / top
            if width:
                body.append(
                    f'<rect class="bar" x="{x:.1f}" y="{y + 2}" width="{width:.1f}" height="{ROW - 5}" '
                    f'fill="{STATUS_COLORS.get(status, BAR_COLOR)}"><title>{escape(name)} {status}: '
                    f"{counts[status]}</title></rect>"
                )
            x += width
    legend_y = PAD + len(rows) * ROW + 8
    for index, status in enumerate(statuses):
        x = LABEL + index * 90
        body += [
            f'<rect x="{x}" y="{legend_y}" width="10" height="10" fill="{STATUS_COLORS.get(status, BAR_COLOR)}"/>',
            f'<text x="{x + 14}" y="{legend_y + 9}">{status}</text>',
        ]
    return _svg(WIDTH, legend_y + 20 + PAD, body, label)
