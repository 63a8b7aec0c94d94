"""The ranker as ONNX: the trained logits model plus its sigmoid, with a dynamic batch axis."""

from __future__ import annotations

from mlrec.core import io
from mlrec.core.paths import Paths
from mlrec.offline.feature_meta import FeatureMeta


class ExportError(RuntimeError):
    """The checkpoint and the feature meta disagree; the message says which step to re-run."""


def export_onnx(paths: Paths, onnx_path=None):
    """The ranker with its sigmoid, as ONNX with a dynamic batch axis; returns (path, meta, model)."""
    import torch

    from mlrec.models import WithSigmoid, load_checkpoint

    meta = FeatureMeta.load(paths.feature_meta)
    model, ckpt = load_checkpoint(paths.rank_model)
    if list(ckpt.get("extra", {}).get("feature_names", [])) != meta.names:
        raise ExportError(
            f"{paths.rank_model}: trained on other features than {paths.feature_meta}; "
            "re-run offline/rank/s6_model_train.py"
        )
    onnx_path = onnx_path or paths.triton_dir / "model.onnx"
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = WithSigmoid(model).eval()
    with io.atomic_path(onnx_path) as tmp:
        torch.onnx.export(
            wrapped,
            (torch.zeros(2, meta.n_features),),
            str(tmp),
            input_names=["ml_input"],
            output_names=["ml_output"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"ml_input": {0: "batch"}, "ml_output": {0: "batch"}},
        )
    return onnx_path, meta, wrapped
