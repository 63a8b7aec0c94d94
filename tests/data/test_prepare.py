"""prepare_dataset (idempotent, atomic), the dataset marker, and the s0_get_data entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlrec.core.paths import DATA_SCRIPT, Paths, script_path, step_name
from mlrec.data import (
    DATASETS,
    DataError,
    active_dataset,
    active_raw_dir,
    load_dataset,
    prepare_dataset,
    read_manifest,
    synthetic,
    write_marker,
)

SCALE = 5_000


@pytest.fixture
def paths(tmp_path) -> Paths:
    return Paths(tmp_path / "data")


def test_datasets_are_the_supported_ones():
    assert DATASETS == ("ml-100k", "ml-1m", "ml-25m", "ml-32m", "synthetic")


def test_prepare_builds_once_then_skips(paths):
    raw = prepare_dataset("synthetic", paths, scale=SCALE, seed=1)
    assert raw == paths.raw_dir("synthetic")
    assert read_manifest(raw)["counts"] == {"users": 30, "items": 600, "ratings": SCALE}
    mtime = (raw / "ratings.dat").stat().st_mtime_ns
    assert prepare_dataset("synthetic", paths, scale=SCALE, seed=1) == raw
    assert (raw / "ratings.dat").stat().st_mtime_ns == mtime  # skipped
    prepare_dataset("synthetic", paths, scale=SCALE, seed=1, force=True)
    assert (raw / "ratings.dat").stat().st_mtime_ns != mtime  # forced rebuild
    assert sorted(p.name for p in raw.parent.iterdir()) == ["synthetic"]  # no temp folders left


def test_other_parameters_rebuild(paths):
    raw = prepare_dataset("synthetic", paths, scale=SCALE, seed=1)
    prepare_dataset("synthetic", paths, scale=2 * SCALE, seed=1)
    assert read_manifest(raw)["counts"]["ratings"] == 2 * SCALE
    assert len(load_dataset(raw)[2]) == 2 * SCALE


def test_truncated_file_is_detected_and_rebuilt(paths):
    raw = prepare_dataset("synthetic", paths, scale=SCALE, seed=1)
    data = (raw / "ratings.dat").read_bytes()
    (raw / "ratings.dat").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"file sizes differ from manifest\.json.*--force"):
        load_dataset(raw)
    prepare_dataset("synthetic", paths, scale=SCALE, seed=1)  # not "prepared" any more -> rebuilt
    assert (raw / "ratings.dat").read_bytes() == data


def test_a_crash_mid_build_leaves_no_half_written_dataset(paths, monkeypatch):
    raw = prepare_dataset("synthetic", paths, scale=SCALE, seed=1)
    before = {p.name: p.read_bytes() for p in raw.iterdir()}

    def crash(out_dir: Path, **_):
        out_dir.mkdir(parents=True, exist_ok=True)  # as write_movielens does: prepare_dataset hands it a temp folder
        (out_dir / "users.dat").write_text("1::M::25::1::00000\n")
        raise KeyboardInterrupt  # e.g. Ctrl-C half way

    monkeypatch.setattr(synthetic, "prepare_synthetic", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("synthetic", paths, scale=SCALE, seed=1, force=True)
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before  # the old dataset is intact
    assert sorted(p.name for p in raw.parent.iterdir()) == ["synthetic"]

    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("synthetic", paths, scale=2 * SCALE, seed=1)
    assert read_manifest(raw)["counts"]["ratings"] == SCALE


def test_unknown_dataset_is_refused(paths):
    with pytest.raises(
        DataError, match="unknown dataset 'ml-20m'; choose one of ml-100k, ml-1m, ml-25m, ml-32m, synthetic"
    ):
        prepare_dataset("ml-20m", paths)


def test_marker_round_trip_and_missing_marker(paths):
    with pytest.raises(DataError, match=r"dataset\.json is missing") as err:
        active_raw_dir(paths)
    assert err.value.hint.startswith(f"run `python {DATA_SCRIPT} --dataset")
    raw = prepare_dataset("synthetic", paths, scale=SCALE, seed=1)
    write_marker(paths, "synthetic", raw, scale=SCALE)
    assert json.loads(paths.dataset_marker.read_text())["raw_dir"] == "raw/synthetic"  # relative to the root
    assert active_raw_dir(paths) == raw and active_dataset(paths) == "synthetic"
    moved = Paths(paths.root.parent / "moved")
    paths.root.rename(moved.root)
    assert active_raw_dir(moved) == moved.raw_dir("synthetic")


def test_marker_pointing_nowhere_is_an_error(paths):
    write_marker(paths, "synthetic", paths.raw_dir("synthetic"))
    with pytest.raises(DataError, match="does not exist"):
        active_raw_dir(paths)
    paths.dataset_marker.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        active_raw_dir(paths)


def run_s0(data_dir: Path, *args: str, dataset: str = "", **extra_env: str) -> subprocess.CompletedProcess:
    # MLREC_DATASET="" (not unset) so a developer's .env cannot choose the dataset behind the test's back
    env = {**os.environ, "MLREC_DATA_DIR": str(data_dir), "MLREC_DATASET": dataset, **extra_env}
    return subprocess.run(
        [sys.executable, str(script_path(DATA_SCRIPT)), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_s0_get_data_cli(tmp_path):
    proc = run_s0(tmp_path, "--dataset", "synthetic", "--scale", str(SCALE), "--no-events")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith(
        f"[{step_name(DATA_SCRIPT)}] dataset=synthetic users=30 items=600 ratings=5000 logged_events=skipped seconds="
    )
    paths = Paths(tmp_path)
    assert active_raw_dir(paths) == paths.raw_dir("synthetic")
    metrics = json.loads(paths.metrics.read_text())[step_name(DATA_SCRIPT)]
    assert metrics["ratings"] == SCALE and metrics["dataset"] == "synthetic"


def test_s0_get_data_cli_reports_errors_without_traceback(tmp_path):
    proc = run_s0(tmp_path, "--dataset", "synthetic", "--scale", "10")
    assert proc.returncode == 2
    assert (
        proc.stderr == f"error: synthetic scale n_ratings=10 is too small; use --scale >= {synthetic.MIN_N_RATINGS}\n"
    )
    assert not Paths(tmp_path).dataset_marker.exists()


def test_s0_get_data_default_dataset_comes_from_settings(tmp_path):
    proc = run_s0(tmp_path, "--scale", str(SCALE), dataset="synthetic")
    assert proc.returncode == 0, proc.stderr
    assert active_dataset(Paths(tmp_path)) == "synthetic"
    proc = run_s0(tmp_path / "other", dataset="ml-20m")
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown dataset 'ml-20m'; choose one of")


def test_s0_without_redis_says_no_events_were_exported_and_succeeds(tmp_path, free_port):
    """The event log lives in Redis; an offline run on a machine without it still prepares the data."""
    proc = run_s0(tmp_path, "--dataset", "synthetic", "--scale", str(SCALE), MLREC_REDIS_PORT=str(free_port))
    assert proc.returncode == 0, proc.stderr
    assert (
        f"note: Redis at 127.0.0.1:{free_port} is not running: no logged events exported (none merged)" in proc.stdout
    )
    assert "logged_events=unreachable" in proc.stdout.strip().splitlines()[-1]
