"""Run every bug folder's repro.py in a fresh virtual environment holding only the affected system.

    python benchmarks/fresh_venv_repros.py reports/bugs [--venvs /tmp/dlfuzz-venvs]

Creates one venv per system (ONNX Runtime, TVM, torch) on first use, then prints one line per bug:
the system, the repro's exit status (1: reproduces) and seconds. Exits 1 if any repro does not
reproduce, so it can gate a release of the checked-in reports.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import venv
from pathlib import Path

PACKAGES = {  # backend -> what its repro needs; torch is pinned to the local CPU build
    "ort": ["onnx", "onnxruntime", "numpy"],
    "tvm": ["onnx", "apache-tvm", "numpy"],
    "inductor": ["torch==2.13.0"],
}


def environment(root: Path, backend: str) -> Path:
    """The venv's python for `backend`, created with only its packages."""
    folder = root / backend
    python = folder / "bin" / "python"
    if not python.exists():
        venv.create(folder, with_pip=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *PACKAGES[backend]], check=True)
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bugs", type=Path, help="a campaign's bugs/ folder, or reports/bugs")
    parser.add_argument("--venvs", type=Path, default=Path("/tmp/dlfuzz-venvs"))
    args = parser.parse_args()
    folders = sorted(p.parent for p in args.bugs.glob("*/repro.py"))
    if not folders:
        print(f"{args.bugs}: no bug folders with repro.py", file=sys.stderr)
        return 2
    failures = 0
    for folder in folders:
        backend = json.loads((folder / "meta.json").read_text())["backend"]
        python = environment(args.venvs, backend)
        started = time.monotonic()
        result = subprocess.run([python, "repro.py"], cwd=folder, capture_output=True, text=True, timeout=900)
        seconds = time.monotonic() - started
        failures += result.returncode != 1
        verdict = "reproduces" if result.returncode == 1 else f"DOES NOT REPRODUCE (exit {result.returncode})"
        print(f"{backend:9} {verdict:32} {seconds:6.1f}s  {folder.name}")
    print(f"{len(folders)} repros, {len(folders) - failures} reproduce in a fresh venv with only their system")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
