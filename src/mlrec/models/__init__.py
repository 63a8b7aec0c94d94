"""The models, a name -> class registry, and checkpoints that rebuild them.

A checkpoint stores the state_dict plus the constructor arguments (nanoGPT style), not a pickled
module: it loads with ``torch.load(weights_only=True)`` — no arbitrary code runs on load — and
survives refactors of the classes as long as the argument names and parameter names stay.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlrec.core.errors import MlrecError
from mlrec.core.io import atomic_path
from mlrec.core.paths import RANK_SCRIPT, VECTOR_RECALL_SCRIPT
from mlrec.models.deepfm import DeepFM, DeepFMEnsemble, WithSigmoid
from mlrec.models.mf import MatrixFactorization

MODELS: dict[str, type[nn.Module]] = {
    "mf": MatrixFactorization,
    "deepfm": DeepFM,
    "deepfm_ensemble": DeepFMEnsemble,
}
CHECKPOINT_FORMAT = 1
_RERUN = f"re-run the training script ({VECTOR_RECALL_SCRIPT} for mf, {RANK_SCRIPT} for deepfm)"

__all__ = [
    "MODELS",
    "CheckpointError",
    "DeepFM",
    "DeepFMEnsemble",
    "MatrixFactorization",
    "WithSigmoid",
    "build_model",
    "load_checkpoint",
    "save_checkpoint",
]


class CheckpointError(MlrecError, RuntimeError):
    """A model checkpoint is missing, unreadable, or does not match its model class."""


def build_model(model_name: str, model_args: dict[str, Any]) -> nn.Module:
    """Instantiate a registered model from its constructor arguments."""
    if model_name not in MODELS:
        raise KeyError(f"unknown model {model_name!r}; registered: {sorted(MODELS)}")
    return MODELS[model_name](**model_args)


def _plain(value: Any, where: str) -> Any:
    """Convert to what ``torch.load(weights_only=True)`` accepts: dict/list/str/num/bool/None/tensor."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value), where)
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"checkpoint field {where} has type {type(value).__name__}; store plain data (dict/list/str/number)"
    )


def save_checkpoint(
    path: Path,
    model: nn.Module,
    model_name: str,
    model_args: dict[str, Any],
    config: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write weights + constructor args + training config atomically (tmp file, then rename).

    ``model_args`` must rebuild ``model`` via ``MODELS[model_name](**model_args)``; every model here
    keeps them in ``model.hparams``. ``config``/``extra`` hold e.g. the TrainConfig and metrics.
    """
    if model_name not in MODELS:
        raise KeyError(f"unknown model {model_name!r}; registered: {sorted(MODELS)}")
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model_name": model_name,
        "model_args": _plain(dict(model_args), "model_args"),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "config": _plain(dict(config or {}), "config"),
        "extra": _plain(dict(extra or {}), "extra"),
        "torch_version": str(torch.__version__),
    }
    with atomic_path(Path(path)) as tmp, tmp.open("wb") as fh:
        torch.save(ckpt, fh)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from a checkpoint; returns ``(model in eval mode, checkpoint dict)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found", _RERUN)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError... for a bad file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})", _RERUN) from exc
    if not isinstance(ckpt, dict) or not {"model_name", "model_args", "state_dict"} <= ckpt.keys():
        raise CheckpointError(f"{path}: checkpoint lacks model_name/model_args/state_dict", _RERUN)
    try:
        model = build_model(ckpt["model_name"], ckpt["model_args"])
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: checkpoint does not match model {ckpt['model_name']!r} ({exc})", _RERUN
        ) from exc
    model.eval()
    return model, ckpt
