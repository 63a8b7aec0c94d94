"""Load items into Elasticsearch: genre terms + 16-dim MF vectors (HNSW, max inner product).

Each run writes a new index and moves the alias (`item_index`) to it atomically; the old index is
deleted only after the swap, so a failed load never leaves a half-loaded index serving.
Reads  offline_to_online/recall/{item_term.parquet,item_vector.npy}
Check  hits for one genre == items with that genre; kNN top-1 for an item vector == brute force
Run:   python offline_to_online/recall/s2_item_to_es.py
"""

import argparse

from mlrec.core.cli import run
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.loaders.es_items import load_es

if __name__ == "__main__":
    run(lambda args: load_es(Paths.from_env(), Settings.from_env()), argparse.ArgumentParser(description=__doc__))
