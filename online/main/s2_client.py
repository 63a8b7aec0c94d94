"""Ask the running service for a user's recommendations and print them.

Run:   python online/main/s2_client.py 1            # top 50 for user 1
       python online/main/s2_client.py 1 --size 10 --url http://127.0.0.1:5000
Same as: curl -s -X POST http://127.0.0.1:5000/ml/rec -H 'Content-Type: application/json' -d '{"userid": 1}'
"""

import argparse
import sys

import requests

from mlrec.core.constants import RESPONSE_SIZE
from mlrec.core.paths import SERVER_SCRIPT
from mlrec.core.settings import Settings

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("userid", type=int)
    parser.add_argument("--size", type=int, default=RESPONSE_SIZE)
    parser.add_argument("--url", default=Settings.from_env().server_url)
    args = parser.parse_args()
    try:
        resp = requests.post(f"{args.url}/ml/rec", json={"userid": args.userid, "size": args.size}, timeout=10)
    except requests.ConnectionError:
        sys.exit(f"error: no service at {args.url}; start it with `python {SERVER_SCRIPT}` (or `make server-up`)")
    body = resp.json()
    if resp.status_code != 200:
        sys.exit(f"error: HTTP {resp.status_code}: {body}")
    note = f" (fallback: {body['fallback']})" if body.get("fallback") else ""
    print(f"user {body['userid']}: {len(body['item_list'])} items{note}  [{resp.headers.get('Server-Timing', '')}]")
    for rank, item in enumerate(body["item_list"], start=1):
        print(f"{rank:3d}  item {item['itemid']:6d}  score {item['score']:.4f}")
