"""Export the ranker to ONNX (dynamic batch, sigmoid included) and load it into Triton.

Writes online/triton/model.onnx, online/triton/model_repository/ (Docker: onnxruntime backend) and
online/triton/model_repository_native/ (native: Python backend running the same ONNX file)
Check  ONNX vs PyTorch on test rows; the model is ready in the running Triton
Run:   python offline_to_online/rank/s4_model_to_triton.py
"""

import argparse

from mlrec.core.cli import run
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.loaders.triton_model import load_triton

if __name__ == "__main__":
    run(lambda args: load_triton(Paths.from_env(), Settings.from_env()), argparse.ArgumentParser(description=__doc__))
