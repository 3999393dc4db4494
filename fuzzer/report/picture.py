"""A picture of a graph for reports: an SVG with a layered top-down layout, no graphviz needed."""

from __future__ import annotations

from html import escape

from fuzzer.core.ir import Graph, TensorType

BOX_WIDTH, BOX_HEIGHT, GAP_X, GAP_Y, MARGIN = 190, 44, 30, 46, 20
COLORS = {"leaf": "#e8f0fe", "op": "#fff4d6", "output": "#e6f4ea"}


def _type(t: TensorType) -> str:
    return f"{t.dtype}[{','.join(str(d) for d in t.shape)}]"


def graph_svg(graph: Graph) -> str:
    """Leaves on top, each op one layer below its deepest input, outputs at the bottom."""
    boxes: dict[str, tuple[str, str, str, int]] = {}  # id -> (title, subtitle, kind, layer)
    producer: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for name in graph.leaves:
        kind = "weight" if name in graph.weights else "input"
        boxes[name] = (f"{kind} {name}", _type(graph.types[name]), "leaf", 0)
        producer[name] = name
    for index, node in enumerate(graph.nodes):
        box = f"node{index}"
        layer = 1 + max((boxes[producer[name]][3] for name in node.inputs), default=0)
        subtitle = ", ".join(_type(graph.types[name]) for name in node.outputs)
        boxes[box] = (node.op, subtitle, "op", layer)
        edges += [(producer[name], box) for name in node.inputs]
        producer.update(dict.fromkeys(node.outputs, box))
    bottom = max(layer for *_, layer in boxes.values()) + 1
    for name in graph.outputs:
        boxes[f"out:{name}"] = (f"output {name}", _type(graph.types[name]), "output", bottom)
        edges.append((producer[name], f"out:{name}"))
    return _render(boxes, edges)


def _render(boxes: dict[str, tuple[str, str, str, int]], edges: list[tuple[str, str]]) -> str:
    layers: dict[int, list[str]] = {}
    for box, (*_, layer) in boxes.items():
        layers.setdefault(layer, []).append(box)
    widest = max(len(row) for row in layers.values())
    width = 2 * MARGIN + widest * BOX_WIDTH + (widest - 1) * GAP_X
    height = 2 * MARGIN + len(layers) * BOX_HEIGHT + (len(layers) - 1) * GAP_Y
    position: dict[str, tuple[float, float]] = {}
    for row, layer in enumerate(sorted(layers)):
        boxes_in_row = layers[layer]
        span = len(boxes_in_row) * BOX_WIDTH + (len(boxes_in_row) - 1) * GAP_X
        left = (width - span) / 2
        for column, box in enumerate(boxes_in_row):
            position[box] = (left + column * (BOX_WIDTH + GAP_X), MARGIN + row * (BOX_HEIGHT + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="monospace" font-size="11">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    for source, target in edges:
        (x1, y1), (x2, y2) = position[source], position[target]
        parts.append(
            f'<line x1="{x1 + BOX_WIDTH / 2:.0f}" y1="{y1 + BOX_HEIGHT:.0f}" x2="{x2 + BOX_WIDTH / 2:.0f}" '
            f'y2="{y2:.0f}" stroke="#555" marker-end="url(#arrow)"/>'
        )
    for box, (title, subtitle, kind, _) in boxes.items():
        x, y = position[box]
        parts.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6" '
            f'fill="{COLORS[kind]}" stroke="#333"/>'
        )
        weight = ' font-weight="bold"' if kind == "op" else ""
        for offset, text in ((17, title), (33, subtitle)):
            parts.append(
                f'<text x="{x + BOX_WIDTH / 2:.0f}" y="{y + offset:.0f}" text-anchor="middle"{weight}>'
                f"{escape(text[:28])}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
