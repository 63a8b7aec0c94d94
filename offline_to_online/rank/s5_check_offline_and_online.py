"""Prove online == offline: >= 1,000 (user, item) rows built from Feast's served features and scored
by Triton, against the offline feature tables scored by the PyTorch checkpoint. Exits non-zero when
any feature or score differs by more than the tolerance (1e-5).

Run:   python offline_to_online/rank/s5_check_offline_and_online.py [--users 20 --items 60]
"""

import argparse

from mlrec.core.cli import run
from mlrec.core.paths import Paths
from mlrec.core.settings import Settings
from mlrec.loaders.parity import check_parity

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--items", type=int, default=60, help="random candidate items per user")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    run(lambda a: check_parity(Paths.from_env(), Settings.from_env(), a.users, a.items, a.tolerance), parser)
