"""The step registry in mlrec.core.paths is the one list of numbered scripts: the Makefile runs exactly it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mlrec.core.paths import (
    CLIENT_SCRIPT,
    DATA_SCRIPT,
    EVAL_SCRIPT,
    REPO_ROOT,
    SERVER_SCRIPT,
    STEPS,
    script_path,
    step_name,
)

ALL_SCRIPTS = [script for scripts in STEPS.values() for script in scripts]


def make_dry_run(*targets: str) -> list[str]:
    """The scripts ``make -n <targets>`` would run, in order (venv/services targets not remade)."""
    if shutil.which("make") is None:  # pragma: no cover - the Makefile is the documented entry point
        pytest.fail("GNU make is needed to check the Makefile against the step registry")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    proc = subprocess.run(
        ["make", "-n", "-s", "--no-print-directory", "-o", "venv", "-o", "services-up", *targets],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return re.findall(r"\S+\.py\b", proc.stdout)


def test_make_offline_runs_the_offline_steps_in_registry_order():
    assert make_dry_run("offline") == list(STEPS["offline"])


def test_make_load_runs_the_loaders_in_registry_order():
    assert make_dry_run("load") == list(STEPS["load"])


@pytest.mark.parametrize(
    ("target", "script"), [("serve", SERVER_SCRIPT), ("client", CLIENT_SCRIPT), ("eval", EVAL_SCRIPT)]
)
def test_make_online_targets_run_the_registered_scripts(target, script):
    assert make_dry_run(target) == [script]


def test_every_registered_script_exists_and_every_numbered_script_is_registered():
    assert all(script_path(s).is_file() for s in ALL_SCRIPTS), [s for s in ALL_SCRIPTS if not script_path(s).is_file()]
    on_disk = sorted(
        str(p.relative_to(REPO_ROOT))
        for top in ("offline", "offline_to_online", "online")
        for p in (REPO_ROOT / top).rglob("s[0-9]_*.py")
    )
    assert sorted(ALL_SCRIPTS) == on_disk


def test_each_stage_is_numbered_in_run_order():
    for stage, scripts in STEPS.items():
        numbers = [int(re.match(r"s(\d+)_", Path(s).name).group(1)) for s in scripts]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), stage
    names = [step_name(s) for s in ALL_SCRIPTS]
    assert len(set(names)) == len(names)  # each step's key in metrics.json is its own
    assert step_name(DATA_SCRIPT) == "s0_get_data"


@pytest.mark.parametrize("doc", ["README.md", "docs/docker.md"])
def test_the_step_by_step_docs_list_every_offline_and_load_script_in_registry_order(doc):
    """The documented "run it step by step" lists are the registry too: a new step cannot be left out."""
    text = (REPO_ROOT / doc).read_text()
    listed = re.findall(r"^python ((?:offline|offline_to_online)/\S+\.py)", text, flags=re.MULTILINE)
    expected = [s for s in (*STEPS["offline"], *STEPS["load"])]
    assert listed == expected
