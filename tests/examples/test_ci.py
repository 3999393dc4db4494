"""The example CI workflow calls dlfuzz only with options its commands have."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from fuzzer.cli import main

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "nightly.yml"


def test_every_dlfuzz_call_of_the_workflow_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the workflow runs in the checkout: corpus/ is there
    calls = [
        line.strip()
        for line in WORKFLOW.read_text().splitlines()
        if line.strip().startswith(("dlfuzz ", "run: dlfuzz "))
    ]
    assert {shlex.split(call.removeprefix("run: "))[1] for call in calls} == {"replay", "fuzz"}
    for call in calls:
        args = shlex.split(call.removeprefix("run: ").replace('"$GITHUB_RUN_NUMBER"', "1"))
        main.commands[args[1]].make_context(args[1], args[2:])
