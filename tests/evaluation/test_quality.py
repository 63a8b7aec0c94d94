"""The run: its argument checks, the stage summary, the report's shape, and its inputs on a real pipeline."""

import numpy as np
import pandas as pd
import pytest

from mlrec.core.constants import ITEMID, RECALL_SIZE, USERID
from mlrec.core.errors import MlrecError
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.evaluation.baselines import BASELINES, BaselineInputs, seen_mask
from mlrec.evaluation.inputs import read_inputs
from mlrec.evaluation.metrics import PAD
from mlrec.evaluation.quality import EvaluationError, QualityReport, evaluate_quality, stage_summary
from mlrec.evaluation.scoring import MethodScore
from mlrec.evaluation.stages import UNION, UNION_SIZE
from mlrec.evaluation.tuning import run_baselines
from mlrec.offline.channels import CHANNEL_K, CHANNELS


def test_evaluation_error_is_a_user_error_with_a_hint():
    err = EvaluationError("what is wrong", "how to fix it")
    assert isinstance(err, MlrecError)
    assert str(err) == "what is wrong; how to fix it"


@pytest.mark.parametrize(
    ("k", "concurrency", "flag"), [(0, 8, "--k"), (RECALL_SIZE + 1, 8, "--k"), (10, 0, "--concurrency")]
)
def test_bad_arguments_are_refused_before_any_artifact_is_read(tmp_path, k, concurrency, flag):
    # tmp_path holds no artifact: a check that ran after reading would raise ArtifactError instead
    with pytest.raises(EvaluationError, match=flag):
        evaluate_quality(Paths(tmp_path), Settings.from_env(), "http://127.0.0.1:9", k=k, concurrency=concurrency)


def method(name: str, **metrics: float) -> MethodScore:
    return MethodScore(name, name, "test", 3, dict(metrics), {}, [])


def test_stage_summary_reports_candidate_recall_lift_and_consistency():
    at, at_union = f"recall@{RECALL_SIZE}", f"recall@{UNION_SIZE}"
    by_name = {
        "system": method("system", **{"ndcg@10": 0.3, "ndcg@50": 0.2}),
        "recall_order": method("recall_order", **{"ndcg@10": 0.2, "ndcg@50": 0.0, at: 0.7, at_union: 0.8}),
        "vector_recall": method("vector_recall", **{at: 0.6}),
        "term_recall": method("term_recall", **{at: 0.4}),
        **{
            f"{c}_channel": method(f"{c}_channel", **{f"recall@{CHANNEL_K[c]}": r})
            for c, r in zip(CHANNELS, (0.61, 0.62, 0.5, 0.2), strict=True)
        },
    }
    served = np.array([[1, 2], [3, PAD]])
    stages = {
        "hybrid": np.array([[2, 1, 9], [4, 5, 6]]),
        "vector": np.array([[9, 2, 1], [4, 5, 7]]),
        UNION: np.array([[2, 1, 9], [4, 5, 6]]),
    }
    s = stage_summary(by_name, (10, 50), served, stages)
    assert s[f"candidate_recall@{RECALL_SIZE}"] == {"term": 0.4, "vector": 0.6, "union": 0.7}
    assert s["candidate_recall_per_channel"] == {
        f"{c}@{CHANNEL_K[c]}": r for c, r in zip(CHANNELS, (0.61, 0.62, 0.5, 0.2), strict=True)
    }
    assert s[f"candidate_recall_union@{UNION_SIZE}"] == 0.8
    lift = s["ranker_lift"]
    assert lift["ndcg@10_lift"] == pytest.approx(0.1) and lift["ndcg@10_lift_rel"] == pytest.approx(0.5)
    assert lift["ndcg@50_lift"] == pytest.approx(0.2) and lift["ndcg@50_lift_rel"] is None  # old value 0: no ratio
    assert (lift["ndcg@10_system"], lift["ndcg@10_recall_order"]) == (0.3, 0.2)
    assert s["served_within_union_candidates"] == pytest.approx(2 / 3)
    assert s["hybrid_same_set_as_vector"] == 0.5


def test_report_json_form_keys_methods_by_name_in_order_with_the_protocol():
    report = QualityReport("toy", "http://x", {"split": "s"}, "line", {"evaluated": 1}, [], {}, {}, {"k": 3})
    report.methods = [method("system"), method("mf")]
    d = report.to_dict()
    assert list(d["methods"]) == ["system", "mf"]
    assert d["methods"]["mf"]["protocol"] == "line" and d["methods"]["mf"]["name"] == "mf"
    assert report.method("mf") is report.methods[1]
    assert list(d) == ["dataset", "url", "protocol", "protocol_line", "users", "methods", "stages", "timing", "config"]


def test_read_inputs_of_the_pipeline_feed_baselines_that_never_return_a_seen_item(offline_run):
    """On the session's real offline artifacts: the held-out users, catalogue and vectors fit; every baseline tunes."""
    inp = read_inputs(offline_run.paths)
    assert inp.dataset == "synthetic"
    assert len(inp.held.userids) > 0 and (np.diff(inp.held.userids) > 0).all()
    assert (np.diff(inp.catalogue) > 0).all()
    base = BaselineInputs(
        userids=inp.held.userids,
        catalogue=inp.catalogue,
        seen=seen_mask(inp.seen, inp.held.userids, inp.catalogue),
        offline=inp.offline,
        user_vectors=inp.user_vectors,
        item_vectors=inp.item_vectors,
    )
    rated = inp.offline[[USERID, ITEMID]]
    runs = run_baselines(BASELINES, base, 20)
    for b in BASELINES:
        lists = runs[b.name].lists
        tuning = runs[b.name].tuning
        assert (tuning is None) == (b.grid is None)
        if tuning is not None:  # the pick is a grid point, scored on the validation users (not the held-out)
            assert tuning.chosen in [dict(p) for p in b.grid] and len(tuning.trials) == len(b.grid)
            assert 0 < tuning.validation["ndcg@10"] <= 1 and tuning.users > 0
        served = pd.DataFrame({USERID: np.repeat(inp.held.userids, 20), ITEMID: lists.ravel()}).query(
            f"{ITEMID} != {PAD}"
        )
        assert len(served) > 0
        assert served.merge(rated, on=[USERID, ITEMID]).empty, f"{b.name} recommended an item the user rated"
        assert set(served[ITEMID]) <= set(inp.catalogue.tolist())
