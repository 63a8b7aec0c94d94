"""The ranker as ONNX: the trained logits model plus its sigmoid, with a dynamic batch axis."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from mlrec.core import io
from mlrec.core.contracts import TRITON_INPUT, TRITON_OUTPUT
from mlrec.core.errors import MlrecError
from mlrec.core.paths import RANK_SCRIPT, Paths
from mlrec.offline.feature_meta import FeatureMeta


class ExportError(MlrecError, RuntimeError):
    """The checkpoint and the feature meta disagree; the hint says which step to re-run."""


def export_onnx(paths: Paths, onnx_path: Path | None = None) -> tuple[Path, FeatureMeta, nn.Module]:
    """The ranker with its sigmoid, as ONNX with a dynamic batch axis; returns (path, meta, model).

    An ensemble is exported as its fused single DeepFM (:meth:`~mlrec.models.DeepFMEnsemble.fused`),
    the same scores with one member's graph; the returned model is the checkpoint's, so a caller
    comparing ONNX against it checks the fusion too."""
    import torch

    from mlrec.models import DeepFMEnsemble, WithSigmoid, load_checkpoint

    meta = FeatureMeta.load(paths.feature_meta)
    model, ckpt = load_checkpoint(paths.rank_model)
    if list(ckpt.get("extra", {}).get("feature_names", [])) != meta.names:
        raise ExportError(
            f"{paths.rank_model}: trained on other features than {paths.feature_meta}", f"re-run `python {RANK_SCRIPT}`"
        )
    onnx_path = onnx_path or paths.triton_dir / "model.onnx"
    wrapped = WithSigmoid(model).eval()
    exported = WithSigmoid(model.fused() if isinstance(model, DeepFMEnsemble) else model).eval()
    with io.atomic_path(onnx_path) as tmp:
        torch.onnx.export(
            exported,
            (torch.zeros(2, meta.n_features),),
            str(tmp),
            input_names=[TRITON_INPUT],
            output_names=[TRITON_OUTPUT],
            opset_version=17,
            dynamo=False,
            dynamic_axes={TRITON_INPUT: {0: "batch"}, TRITON_OUTPUT: {0: "batch"}},
        )
    return onnx_path, meta, wrapped
