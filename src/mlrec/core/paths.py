"""Every file the pipeline reads or writes, in one place.

All artifacts live under one folder, ``data_exchange_center/`` at the repository root by default,
or ``$MLREC_DATA_DIR`` when set (tests point it at a temp folder). A step never builds a path
itself: it asks :class:`Paths`, so renaming an artifact is a one-line change.
See ``data_exchange_center/README.md`` for what each artifact holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlrec.core.settings import DEFAULT_DATA_DIR, REPO_ROOT, Settings

__all__ = ["DEFAULT_DATA_DIR", "REPO_ROOT", "STEPS", "Paths", "script_path", "step_name"]

# -- the numbered scripts, relative to the repository root --------------------------------------
# Named in "not found, run ... first" errors, in tests and benchmarks; the Makefile runs them in
# STEPS order (tests/core/test_paths.py checks it), so a renamed script is a change here only.
DATA_SCRIPT = "offline/preprocess/s0_get_data.py"
SPLIT_SCRIPT = "offline/preprocess/s1_data_split.py"
TERMS_SCRIPT = "offline/preprocess/s2_term_trans.py"
TERM_RECALL_SCRIPT = "offline/recall/s3_term_recall.py"
VECTOR_RECALL_SCRIPT = "offline/recall/s4_vector_recall.py"
ITEM_RECALL_SCRIPT = "offline/recall/s5_item_recall.py"
FEATURES_SCRIPT = "offline/rank/s6_feature_engi.py"
RANK_SCRIPT = "offline/rank/s7_model_train.py"
REDIS_SCRIPT = "offline_to_online/recall/s1_user_to_redis.py"
ES_SCRIPT = "offline_to_online/recall/s2_item_to_es.py"
FEAST_SCRIPT = "offline_to_online/rank/s3_feature_to_feast.py"
TRITON_SCRIPT = "offline_to_online/rank/s4_model_to_triton.py"
PARITY_SCRIPT = "offline_to_online/rank/s5_check_offline_and_online.py"
SERVER_SCRIPT = "online/main/s1_server.py"
CLIENT_SCRIPT = "online/main/s2_client.py"
EVENT_WORKER_SCRIPT = "online/main/s5_event_worker.py"
EVAL_SCRIPT = "online/eval/s3_eval_quality.py"
STREAM_EVAL_SCRIPT = "online/eval/s4_eval_streaming.py"

# Stage -> its scripts in run order: `make offline` (with `make data` first), `make load`, then online.
STEPS: dict[str, tuple[str, ...]] = {
    "offline": (
        DATA_SCRIPT,
        SPLIT_SCRIPT,
        TERMS_SCRIPT,
        TERM_RECALL_SCRIPT,
        VECTOR_RECALL_SCRIPT,
        ITEM_RECALL_SCRIPT,
        FEATURES_SCRIPT,
        RANK_SCRIPT,
    ),
    "load": (REDIS_SCRIPT, ES_SCRIPT, FEAST_SCRIPT, TRITON_SCRIPT, PARITY_SCRIPT),
    "online": (SERVER_SCRIPT, CLIENT_SCRIPT, EVAL_SCRIPT, STREAM_EVAL_SCRIPT, EVENT_WORKER_SCRIPT),
}


def step_name(script: str) -> str:
    """``offline/preprocess/s1_data_split.py`` -> ``s1_data_split``: the step's key in ``metrics.json``."""
    return PurePosixPath(script).stem


def script_path(script: str) -> Path:
    """The script's absolute path in this checkout (to run it with ``sys.executable``)."""
    return REPO_ROOT / script


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> Paths:
        """The data dir of ``settings`` (default: from the environment and ``.env``)."""
        return cls((settings or Settings.from_env()).data_dir)

    # -- raw data: canonical ML-1M layout, one folder per dataset -------------------------------
    def raw_dir(self, dataset: str) -> Path:
        return self.root / "raw" / dataset

    @property
    def cache_dir(self) -> Path:
        """Downloads (ML-1M zip, recbole wheel) kept across runs."""
        return self.root / "cache"

    def logged_events(self, dataset: str) -> Path:
        """The events ``POST /ml/event`` logged, exported by the data step: the next run's new ratings."""
        return self.root / "events" / f"{dataset}.parquet"

    @property
    def dataset_marker(self) -> Path:
        """Names the dataset the artifacts below were built from."""
        return self.root / "dataset.json"

    # -- offline/common: split and point-in-time terms ------------------------------------------
    @property
    def common_dir(self) -> Path:
        return self.root / "offline" / "common"

    @property
    def offline_imp(self) -> Path:
        return self.common_dir / "offline_imp.parquet"

    @property
    def online_imp(self) -> Path:
        return self.common_dir / "online_imp.parquet"

    @property
    def pit_counts(self) -> Path:
        """Per offline row: genre impression/click counts over the user's previous events."""
        return self.common_dir / "pit_counts.parquet"

    @property
    def user_counts(self) -> Path:
        """Per user: genre counts over the latest window, for serving."""
        return self.common_dir / "user_counts.parquet"

    @property
    def user_filter(self) -> Path:
        return self.common_dir / "user_filter.parquet"

    @property
    def item_genres(self) -> Path:
        return self.common_dir / "item_genres.parquet"

    # -- offline_to_online: what the loaders push into the online stores -------------------------
    @property
    def o2o_dir(self) -> Path:
        return self.root / "offline_to_online"

    @property
    def user_term(self) -> Path:
        return self.o2o_dir / "recall" / "user_term.parquet"

    @property
    def item_term(self) -> Path:
        return self.o2o_dir / "recall" / "item_term.parquet"

    @property
    def user_vector(self) -> Path:
        return self.o2o_dir / "recall" / "user_vector.npy"

    @property
    def item_vector(self) -> Path:
        return self.o2o_dir / "recall" / "item_vector.npy"

    def neighbours(self, channel: str) -> tuple[Path, Path]:
        """(ids, weights) of an item-to-item channel's per-item neighbour lists (:mod:`mlrec.offline.neighbours`)."""
        base = self.o2o_dir / "recall" / f"neighbours_{channel}"
        return base.with_name(base.name + "_ids.npy"), base.with_name(base.name + "_weights.npy")

    @property
    def retrieval_params(self) -> Path:
        """The ALS setting chosen on validation: the training moments refit the same model."""
        return self.o2o_dir / "recall" / "retrieval.json"

    @property
    def user_recent(self) -> Path:
        """Per user: the most recent offline items, most recent first (drives the item-to-item channels)."""
        return self.o2o_dir / "recall" / "user_recent.parquet"

    @property
    def popular(self) -> Path:
        """The popularity channel: recently most popular items and their share (also the unknown-user fallback)."""
        return self.o2o_dir / "recall" / "popular.parquet"

    @property
    def feature_meta(self) -> Path:
        """The served ranker's feature contract (training, export, Feast, Triton and the server read it)."""
        return self.o2o_dir / "rank" / "feature_meta.json"

    @property
    def user_features(self) -> Path:
        return self.o2o_dir / "rank" / "user_features.parquet"

    @property
    def item_features(self) -> Path:
        return self.o2o_dir / "rank" / "item_features.parquet"

    # -- offline models and training sets ------------------------------------------------------
    @property
    def rank_dir(self) -> Path:
        return self.root / "offline" / "rank"

    @property
    def train_features(self) -> Path:
        return self.rank_dir / "train.parquet"

    @property
    def test_features(self) -> Path:
        return self.rank_dir / "test.parquet"

    @property
    def seed_feature_meta(self) -> Path:
        """The seed's 59-feature contract: the seed-protocol DeepFM (train/test above) only."""
        return self.rank_dir / "seed_feature_meta.json"

    @property
    def rank_examples(self) -> Path:
        """The served ranker's training set: recall candidates at two moments (:mod:`mlrec.offline.candidates`)."""
        return self.rank_dir / "rank_examples.parquet"

    @property
    def rank_model(self) -> Path:
        """The served ranker (candidate-trained DeepFM): exported to ONNX for Triton."""
        return self.rank_dir / "deepfm.pt"

    @property
    def seed_rank_model(self) -> Path:
        """The seed-protocol DeepFM (rating > 3 among rated items): its test AUC is reported, it is not served."""
        return self.rank_dir / "deepfm_seed.pt"

    @property
    def recall_model(self) -> Path:
        return self.root / "offline" / "recall" / "mf.pt"

    # -- online artifacts ----------------------------------------------------------------------
    @property
    def online_dir(self) -> Path:
        return self.root / "online"

    @property
    def feast_dir(self) -> Path:
        return self.online_dir / "feast"

    @property
    def triton_dir(self) -> Path:
        return self.online_dir / "triton"

    @property
    def metrics(self) -> Path:
        """Counts, AUCs and timings of every step, merged step by step."""
        return self.root / "metrics.json"
