"""mlrec.core.log: the metrics file is merged step by step and replaced atomically; the level comes from Settings."""

from __future__ import annotations

import json
import logging

from mlrec.core.log import setup_logging, summary, update_metrics


def test_update_metrics_merges_steps_and_leaves_no_temp(tmp_path):
    path = tmp_path / "metrics.json"
    update_metrics(path, "s1_data_split", {"rows": 3})
    update_metrics(path, "s2_term_trans", {"seconds": 0.5})
    update_metrics(path, "s1_data_split", {"rows": 4})
    assert json.loads(path.read_text()) == {"s1_data_split": {"rows": 4}, "s2_term_trans": {"seconds": 0.5}}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_corrupt_metrics_file_starts_over(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"s1": {"rows"')
    update_metrics(path, "s2", {"x": 1})
    assert json.loads(path.read_text()) == {"s2": {"x": 1}}


def test_summary_prints_scalars_and_records_everything(tmp_path, capsys):
    summary("s9_demo", tmp_path / "m.json", rows=3, auc=0.812345, detail={"a": 1})
    assert capsys.readouterr().out == "[s9_demo] rows=3 auc=0.8123\n"
    assert json.loads((tmp_path / "m.json").read_text())["s9_demo"] == {"rows": 3, "auc": 0.812345, "detail": {"a": 1}}


def test_level_comes_from_mlrec_log_level(monkeypatch):
    root = logging.getLogger()
    before = root.level
    try:
        monkeypatch.setenv("MLREC_LOG_LEVEL", "info")
        setup_logging()
        assert root.level == logging.INFO
        setup_logging("error")  # an explicit level wins
        assert root.level == logging.ERROR
    finally:
        root.setLevel(before)
