"""The report's three forms (table, JSON, PNG) each carry the dataset and the protocol."""

import dataclasses
import json

import numpy as np
import pytest

from mlrec.evaluation.heldout import HeldOut, protocol, protocol_line
from mlrec.evaluation.quality import QualityReport, baseline_source
from mlrec.evaluation.report import PLOTTED, format_table, output_paths, plot_recall_curves, write_json
from mlrec.evaluation.scoring import score_lists
from mlrec.evaluation.tuning import BaselineRun, Trial, Tuning

TUNING = Tuning(
    chosen={"lam": 500.0, "interactions": "rated"},
    validation={"ndcg@10": 0.13, "recall@50": 0.43},
    trials=[
        Trial({"lam": 50.0, "interactions": "rated"}, {"ndcg@10": 0.1, "recall@50": 0.4}),
        Trial({"lam": 500.0, "interactions": "rated"}, {"ndcg@10": 0.13, "recall@50": 0.43}),
    ],
    users=900,
    seconds=1.5,
)


def test_report_table_json_and_png_carry_dataset_and_protocol(tmp_path):
    held = HeldOut(np.array([1, 2]), [np.array([5]), np.array([6, 7])], np.array([1, 2]), 2, 0)
    ranked = np.array([[5, 1, 2], [9, 6, 7]])
    methods = [
        score_lists(n, n, "test", ranked, held, catalogue_size=10, ks=(2, 3), curve_k=3)
        for n in ("system", "recall_order", "vector_recall", "term_recall", "mf", "popular", "ease")
    ]
    methods[-1] = dataclasses.replace(methods[-1], tuning=TUNING)
    report = QualityReport(
        dataset="toy",
        url="http://x",
        protocol=protocol(10),
        protocol_line=protocol_line(10),
        users=dict(total=2, evaluated=2, skipped_no_positive=0, held_out_positives=3, served_fallback=0),
        methods=methods,
        stages={
            "candidate_recall@200": {"term": 0.1, "vector": 0.2, "union": 0.2},
            "candidate_recall_per_channel": {"es@200": 0.2, "ease@200": 0.3},
            "candidate_recall_union@550": 0.4,
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
    # a tuned baseline carries its pick, its validation score and every setting tried; an untuned one null
    tuning = data["methods"]["ease"]["tuning"]
    assert tuning["chosen"] == {"lam": 500.0, "interactions": "rated"}
    assert tuning["validation"] == {"ndcg@10": 0.13, "recall@50": 0.43}
    assert [t["params"]["lam"] for t in tuning["trials"]] == [50.0, 500.0] and tuning["users"] == 900
    assert data["methods"]["popular"]["tuning"] is None
    table = format_table(report)
    assert protocol_line(10) in table and "quality on toy" in table
    assert "candidate recall per channel: es@200 0.2000, ease@200 0.3000; union (all 550) 0.4000" in table


def test_the_source_cell_shows_a_tuned_baselines_pick_and_its_validation_score():
    lists = np.zeros((1, 1), np.int64)
    assert baseline_source("numpy", BaselineRun(lists, TUNING, 2.0)) == (
        "numpy; validation NDCG@10 0.1300: lam=500 interactions=rated"
    )
    no_params = dataclasses.replace(TUNING, chosen={})
    assert baseline_source("numpy", BaselineRun(lists, no_params, 2.0)) == "numpy; validation NDCG@10 0.1300"
    assert baseline_source("numpy", BaselineRun(lists, None, 2.0)) == "numpy"


def test_every_baseline_is_plotted_next_to_the_system():
    from mlrec.evaluation.baselines import BASELINES

    plotted = [name for name, _ in PLOTTED]
    assert plotted[0] == "system" and {b.name for b in BASELINES} <= set(plotted)
