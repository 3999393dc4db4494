"""The house: packages are layers, and a module imports only its own layer and those above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The data flows down this list; a module may import from its own layer and the ones before it.
LAYERS = (
    "fuzzer.core",
    "specs",
    "fuzzer.generate",
    "fuzzer.inputs",
    "oracles",
    "fuzzer.judge",
    "fuzzer.triage",
    "fuzzer.report",
    "fuzzer.campaign",
    "fuzzer.cli",
)
PACKAGES = ("fuzzer", "specs", "oracles")


def layer_of(module: str) -> int | None:
    """The index of the layer a dotted module name belongs to, or None outside dlfuzz's layers."""
    for index, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return index
    return None


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, at any depth (also those inside functions)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.append((node.lineno, base))
            names += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in names if name.split(".")[0] in PACKAGES]


def test_every_module_belongs_to_a_layer() -> None:
    strays = [m for m in modules() if layer_of(m) is None and m not in PACKAGES]
    assert strays == [], f"modules outside the layers {LAYERS}: {strays}"


@pytest.mark.parametrize("module", sorted(modules()))
def test_a_module_imports_no_later_layer(module: str) -> None:
    path = modules()[module]
    own = layer_of(module)
    own = -1 if own is None else own  # a bare package's __init__ sits above every layer
    later = [
        f"{path.relative_to(ROOT)}:{line} imports {name} ({LAYERS[layer_of(name)]})"
        for line, name in imported(path, module)
        if layer_of(name) is not None and layer_of(name) > own
    ]
    assert later == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """A spec that reached into the campaign would be caught (the check is not vacuous)."""
    source = tmp_path / "bad.py"
    source.write_text("def f():\n    from fuzzer.campaign.loop import run_campaign\n")
    assert [layer_of(name) for _, name in imported(source, "specs.bad")] == [8, 8]
