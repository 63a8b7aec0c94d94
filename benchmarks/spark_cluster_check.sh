#!/usr/bin/env bash
# `make spark-cluster-check`: the prep steps under spark-submit on a real standalone Spark cluster (one master,
# one worker, started here from PySpark's own scripts), on ML-100K in a temp data dir; then every artifact is
# compared with the numpy engine's. What the README's "Scaling out" commands do, minus the second machine.
set -euo pipefail
cd "$(dirname "$0")/.."
B=.venv/bin
DATA=$(mktemp -d /tmp/mlrec-spark-cluster-XXXX)
REF=$DATA/numpy-artifacts
LOGS=$DATA/logs
mkdir -p "$REF" "$LOGS"
export MLREC_DATA_DIR=$DATA MLREC_PROGRESS=0 SPARK_LOCAL_IP=127.0.0.1
export SPARK_HOME=$($B/python -c "import os, pyspark; print(os.path.dirname(pyspark.__file__))")
export PYSPARK_PYTHON=$PWD/$B/python
PREP=("offline/preprocess/s1_data_split.py" "offline/preprocess/s2_term_trans.py" "offline/rank/s6_feature_engi.py --seed-only")

$B/python offline/preprocess/s0_get_data.py --dataset ml-100k --no-events
for step in "${PREP[@]}"; do $B/python $step --engine numpy; done
mv "$DATA"/offline/common/*.parquet "$DATA"/offline/rank/*.parquet "$REF"/

$B/spark-class org.apache.spark.deploy.master.Master --host 127.0.0.1 --port 7077 --webui-port 8090 > "$LOGS/master.log" 2>&1 &
MASTER=$!
trap 'kill $MASTER ${WORKER:-} 2>/dev/null || true' EXIT
sleep 5
$B/spark-class org.apache.spark.deploy.worker.Worker spark://127.0.0.1:7077 --cores 2 --memory 3g --webui-port 8091 \
  > "$LOGS/worker.log" 2>&1 &
WORKER=$!
sleep 5
for step in "${PREP[@]}"; do
  $B/spark-submit --master spark://127.0.0.1:7077 --driver-memory 2g $step --engine spark 2> "$LOGS/submit.log" \
    || { tail -30 "$LOGS/submit.log"; exit 1; }
done
echo "executors the worker launched: $(grep -c 'Asked to launch executor' "$LOGS/worker.log")"

$B/python - "$REF" "$DATA" <<'PY'
import sys
from pathlib import Path

import pandas as pd

ref, data = Path(sys.argv[1]), Path(sys.argv[2])
for want in sorted(ref.glob("*.parquet")):
    got = next(data.glob(f"offline/*/{want.name}"))
    a, b = pd.read_parquet(want), pd.read_parquet(got)
    if want.name in ("train.parquet", "test.parquet"):  # float features: SQL sums the means in another order
        pd.testing.assert_frame_equal(b, a, rtol=1e-6, atol=1e-6)
    else:
        pd.testing.assert_frame_equal(b.astype(str), a.astype(str))  # id lists compared as text
    print(f"spark-cluster-check: {want.name} equal to numpy's ({len(a)} rows)")
PY
rm -rf "$DATA"
