"""Offline -> online: push the offline artifacts into Redis, Elasticsearch, Feast and Triton.

One function per loader script under ``offline_to_online/``. Each ends with the seed's kind of
validation — reading back what it wrote from the real service — and raises :class:`LoadCheckError`
(the script exits non-zero) when the online copy disagrees with the offline artifact.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from mlrec import io
from mlrec.constants import ISTEST, ITEMID, LABEL, USERID
from mlrec.feature_meta import FeatureMeta
from mlrec.log import summary, timed
from mlrec.online import es_index, redis_store
from mlrec.online.assemble import FeatureAssembler
from mlrec.online.feast_store import ITEM_SERVICE, USER_SERVICE, FeastClient, FeastError, export_tables
from mlrec.online.triton_ranker import TritonRanker
from mlrec.paths import (
    FEATURES_SCRIPT, SPLIT_SCRIPT, TERM_RECALL_SCRIPT, TERMS_SCRIPT, VECTOR_RECALL_SCRIPT, Paths,
)
from mlrec.settings import Settings

POPULAR_TOP = 500


class LoadCheckError(RuntimeError):
    """What the online store returned differs from the offline artifact."""


def popular_items(offline: pd.DataFrame, top: int = POPULAR_TOP) -> tuple[np.ndarray, np.ndarray]:
    """Most-clicked items in train (ids, share of train clicks), best first; ties by item id."""
    clicks = offline.loc[(offline[ISTEST] == 0) & (offline[LABEL] == 1), ITEMID].to_numpy()
    ids, counts = np.unique(clicks, return_counts=True)
    order = np.lexsort((ids, -counts))[:top]
    return ids[order], (counts[order] / max(len(clicks), 1)).astype(np.float32)


# -- Redis ---------------------------------------------------------------------------------------
def load_redis(paths: Paths, settings: Settings) -> dict:
    """Users' terms, vectors and seen-item filters -> one hash per user; popularity fallback list."""
    with timed() as t:
        terms = io.read_pickle(paths.user_term, TERM_RECALL_SCRIPT)
        vectors = io.read_npy(paths.user_vector, VECTOR_RECALL_SCRIPT)
        seen = io.read_pickle(paths.user_filter, TERMS_SCRIPT)
        offline = io.read_parquet(paths.offline_imp, SPLIT_SCRIPT, columns=[ITEMID, LABEL, ISTEST])
        client = redis_store.connect(settings, timeout=10.0)
        n = redis_store.write_users(client, terms, vectors, seen)
        pop_ids, pop_scores = popular_items(offline)
        redis_store.write_popular(client, pop_ids, pop_scores)
    sample = min(seen)
    got = redis_store.read_user(client, sample)
    if got is None or got.terms != terms.get(sample, []) or not np.array_equal(got.vector, vectors[sample]) \
            or not np.array_equal(got.seen, seen[sample]):
        raise LoadCheckError(f"redis: user{sample} read back differs from the offline artifacts")
    print(f"redis check: HGETALL user{sample} -> term={got.terms} vector[:4]={[round(float(v), 4) for v in got.vector[:4]]} "
          f"filter={len(got.seen)} items (matches offline)")
    fields = dict(users=n, popular=len(pop_ids), sample_user=sample, seconds=t["seconds"])
    summary("s1_user_to_redis", paths.metrics, **fields)
    return fields


# -- Elasticsearch -------------------------------------------------------------------------------
def load_es(paths: Paths, settings: Settings) -> dict:
    """Items' genre terms and MF vectors -> a new index behind the alias, then two checks."""
    with timed() as t:
        item_terms = io.read_pickle(paths.item_term, TERM_RECALL_SCRIPT)
        vectors = io.read_npy(paths.item_vector, VECTOR_RECALL_SCRIPT)
        es = es_index.connect(settings, timeout=60)
        result = es_index.load_items(es, settings.es_index, item_terms, vectors)
    # term check (the seed's): hits for one genre == items that have it
    genre = 2
    true_count = sum(1 for g in item_terms.values() if genre in g)
    hits = es_index.term_hit_count(es, settings.es_index, genre)
    # vector check: kNN top-10 for an item's own vector == brute-force max inner product top-10
    ids = np.array(sorted(item_terms))
    probe = int(ids[len(ids) // 2])
    brute = ids[np.argsort(-(vectors[ids] @ vectors[probe]), kind="stable")[:10]]
    knn = es_index.knn_ids(es, settings.es_index, vectors[probe], k=10)
    print(f"es check: genre {genre}: true {true_count}, hit {hits}; "
          f"item {probe}: kNN top-1 {knn[0] if len(knn) else None}, brute-force top-1 {brute[0]}, "
          f"top-10 overlap {len(set(knn) & set(brute))}/10")
    if hits != true_count or len(knn) == 0 or knn[0] != brute[0]:
        raise LoadCheckError("elasticsearch: term or vector check failed (see the line above)")
    fields = dict(index=result.index, documents=result.documents, replaced=len(result.replaced),
                  term_check=f"{hits}/{true_count}", knn_top10_overlap=len(set(knn) & set(brute)),
                  seconds=t["seconds"])
    summary("s2_item_to_es", paths.metrics, **fields)
    return fields


# -- Feast ---------------------------------------------------------------------------------------
def _served_matches(client: FeastClient, table: pd.DataFrame, key: str, service: str) -> bool:
    sample = table.iloc[: min(5, len(table))]
    try:
        got = client.get(service, key, sample[key].to_numpy())
    except FeastError:
        return False
    cols = [c for c in table.columns if c not in (key, "event_timestamp", "created")]
    return all(c in got and np.allclose(got[c], sample[c].to_numpy(np.float32)) for c in cols)


def load_feast(paths: Paths, settings: Settings, wait_s: float = 30.0) -> dict:
    """Feature tables -> parquet with timestamps -> ``feast apply`` + ``materialize-incremental``."""
    from mlrec.services import restart, run_feast

    with timed() as t:
        n_users, n_items = export_tables(paths)
        run_feast(["apply"], settings=settings, paths=paths)
        end = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        run_feast(["materialize-incremental", end], settings=settings, paths=paths)
    with timed() as served:
        client = FeastClient(settings.feast_url, timeout_s=5.0)
        users = pd.read_parquet(paths.feast_dir / paths.user_features.name)
        deadline = time.monotonic() + wait_s
        while not _served_matches(client, users, USERID, USER_SERVICE):
            if time.monotonic() > deadline:  # the server kept an old registry: restart it once
                restart(settings, ["feast"], paths)
                if not _served_matches(client, users, USERID, USER_SERVICE):
                    raise LoadCheckError("feast: served user features differ from the offline table")
                break
            time.sleep(1.0)
    uid = int(users[USERID].iloc[0])
    print(f"feast check: curl -s -X POST {settings.feast_url}/get-online-features "
          f"-H 'Content-Type: application/json' "
          f"-d '{{\"feature_service\": \"{USER_SERVICE}\", \"entities\": {{\"userid\": [{uid}]}}}}'  (matches offline)")
    fields = dict(users=n_users, items=n_items, seconds=t["seconds"], served_after_s=served["seconds"])
    summary("s1_feature_to_feast", paths.metrics, **fields)
    return fields


# -- Triton --------------------------------------------------------------------------------------
def export_onnx(paths: Paths, onnx_path=None):
    """The ranker with its sigmoid, as ONNX with a dynamic batch axis; returns (path, meta, model)."""
    import torch

    from mlrec.models import WithSigmoid, load_checkpoint

    meta = FeatureMeta.load(paths.feature_meta)
    model, ckpt = load_checkpoint(paths.rank_model)
    if list(ckpt.get("extra", {}).get("feature_names", [])) != meta.names:
        raise LoadCheckError(f"{paths.rank_model}: trained on other features than {paths.feature_meta}; "
                             "re-run offline/rank/s2_model_train.py")
    onnx_path = onnx_path or paths.triton_dir / "model.onnx"
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = WithSigmoid(model).eval()
    with io.atomic_path(onnx_path) as tmp:
        torch.onnx.export(wrapped, (torch.zeros(2, meta.n_features),), str(tmp), input_names=["ml_input"],
                          output_names=["ml_output"], opset_version=17, dynamo=False,
                          dynamic_axes={"ml_input": {0: "batch"}, "ml_output": {0: "batch"}})
    return onnx_path, meta, wrapped


def load_triton(paths: Paths, settings: Settings, repo_root: Path | None = None) -> dict:
    """PyTorch -> ONNX -> both model repositories -> (re)load in the running Triton.

    ``repo_root`` is the folder holding the repositories the running Triton serves (default:
    ``paths.triton_dir``, where ``make services-up`` points it); tests pass the serving one while
    their artifacts live in a temp data dir.
    """
    import onnxruntime as ort
    import torch

    from mlrec.triton_repo import write_model_repositories

    with timed() as t:
        onnx_path, meta, wrapped = export_onnx(paths)
        docker_repo, native_repo = write_model_repositories(onnx_path, repo_root or paths.triton_dir,
                                                            settings.triton_model, meta.n_features)
        test = io.read_parquet(paths.test_features, FEATURES_SCRIPT).iloc[:2000]
        x = test[meta.names].to_numpy(np.float32, copy=True)
        onnx_scores = ort.InferenceSession(str(onnx_path)).run(None, {"ml_input": x})[0].reshape(-1)
        with torch.no_grad():
            torch_scores = wrapped(torch.from_numpy(x)).numpy().reshape(-1)
        onnx_diff = float(np.abs(onnx_scores - torch_scores).max())
        ranker = TritonRanker(settings.triton_grpc_url, settings.triton_model, timeout_s=10.0)
        ranker.load()
        if not ranker.ready():
            raise LoadCheckError(f"triton: model {settings.triton_model} not ready after load")
    print(f"triton check: ONNX vs PyTorch max |diff| {onnx_diff:.2e} on {len(x)} test rows; "
          f"model {settings.triton_model} ready at {settings.triton_grpc_url}")
    fields = dict(onnx=str(onnx_path), docker_repo=str(docker_repo), native_repo=str(native_repo),
                  onnx_max_diff=onnx_diff, seconds=t["seconds"])
    summary("s2_model_to_triton", paths.metrics, **fields)
    return fields


# -- online == offline ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ParityReport:
    rows: int
    users: int
    feature_max_diff: float
    score_max_diff: float
    tolerance: float


def check_parity(paths: Paths, settings: Settings, n_users: int = 20, items_per_user: int = 60,
                 tolerance: float = 1e-5, seed: int = 0) -> ParityReport:
    """Rows built from Feast's served features, scored by Triton, vs the offline tables scored by PyTorch."""
    from mlrec.offline_scorer import OfflineScorer

    reference = OfflineScorer(paths)
    rng = np.random.default_rng(seed)
    uids = rng.choice(reference.user_ids, size=min(n_users, len(reference.user_ids)), replace=False)
    feast = FeastClient(settings.feast_url, timeout_s=10.0)
    online = FeatureAssembler(reference.meta, feast.get(ITEM_SERVICE, ITEMID, reference.item_ids))
    served_users = feast.get(USER_SERVICE, USERID, uids)
    ranker = TritonRanker(settings.triton_grpc_url, settings.triton_model, timeout_s=10.0)

    feature_diff, score_diff, rows = 0.0, 0.0, 0
    for k, uid in enumerate(uids):
        cand = rng.choice(reference.item_ids, size=min(items_per_user, len(reference.item_ids)), replace=False)
        x_on = online.build(int(uid), online.user_row(served_users, k), cand)
        x_off = reference.features(int(uid), cand)
        feature_diff = max(feature_diff, float(np.abs(x_on - x_off).max()))
        score_diff = max(score_diff, float(np.abs(ranker.score(x_on) - reference.score_features(x_off)).max()))
        rows += len(cand)
    ranker.close()
    report = ParityReport(rows, len(uids), feature_diff, score_diff, tolerance)
    summary("s3_check_offline_and_online", paths.metrics, **asdict(report),
            passed=feature_diff <= tolerance and score_diff <= tolerance)
    if feature_diff > tolerance or score_diff > tolerance:
        raise LoadCheckError(f"online != offline: feature max diff {feature_diff:.2e}, "
                             f"score max diff {score_diff:.2e} (tolerance {tolerance:g})")
    return report
