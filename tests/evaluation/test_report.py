"""The report's three forms (table, JSON, PNG) each carry the dataset and the protocol."""

import json

import numpy as np
import pytest

from mlrec.evaluation.heldout import HeldOut, protocol, protocol_line
from mlrec.evaluation.quality import QualityReport
from mlrec.evaluation.report import format_table, output_paths, plot_recall_curves, write_json
from mlrec.evaluation.scoring import score_lists


def test_report_table_json_and_png_carry_dataset_and_protocol(tmp_path):
    held = HeldOut(np.array([1, 2]), [np.array([5]), np.array([6, 7])], np.array([1, 2]), 2, 0)
    ranked = np.array([[5, 1, 2], [9, 6, 7]])
    methods = [
        score_lists(n, n, "test", ranked, held, catalogue_size=10, ks=(2, 3), curve_k=3)
        for n in ("system", "recall_order", "vector_recall", "term_recall", "mf", "popular")
    ]
    report = QualityReport(
        dataset="toy",
        url="http://x",
        protocol=protocol(10),
        protocol_line=protocol_line(10),
        users=dict(total=2, evaluated=2, skipped_no_positive=0, held_out_positives=3, served_fallback=0),
        methods=methods,
        stages={
            "candidate_recall@200": {"term": 0.1, "vector": 0.2, "hybrid": 0.2},
            "ranker_lift": {"ndcg@3_lift": 0.0},
        },
        timing={},
        config=dict(k=3),
    )
    json_path, png_path = output_paths(tmp_path, report.dataset)
    write_json(report, json_path)
    plot_recall_curves(report, png_path)
    data = json.loads(json_path.read_text())
    assert data["dataset"] == "toy"
    assert data["methods"]["system"]["metrics"]["recall@3"] == pytest.approx(1.0)
    assert data["methods"]["popular"]["protocol"] == protocol_line(10)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = format_table(report)
    assert protocol_line(10) in table and "quality on toy" in table
