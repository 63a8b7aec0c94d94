#!/bin/sh
# The compose `feast` service's command (docker-compose.yml runs `sh /feature_repo/compose_serve.sh`).
#
# Every file feast writes lives in the host's data dir, mounted at $MLREC_DATA_DIR (/data). The
# image's own user (uid 1001) could not write there on a Linux host, and root would leave files the
# host user cannot replace, so the container starts as root only to create the data dirs, then runs
# feast as the data dir's owner: the uid:gid that the loaders' `docker compose exec --user` uses too
# (mlrec.loaders.feast_cli). The Triton mount's folders are created here as well: a bind-mount
# source that does not exist yet would otherwise be created by the Docker daemon, owned by root.
set -eu

data=${MLREC_DATA_DIR:-/data}
repo=$(cd "$(dirname "$0")" && pwd)
owner=$(stat -c %u "$data")
group=$(stat -c %g "$data")
for dir in online online/feast online/triton online/triton/model_repository; do
    install -d -o "$owner" -g "$group" "$data/$dir" 2>/dev/null || mkdir -p "$data/$dir"
done

# The same choice as mlrec.loaders.feast_cli.feature_store_yaml (MLREC_FEAST_ONLINE_STORE).
yaml=$repo/feature_store.yaml
if [ "${MLREC_FEAST_ONLINE_STORE:-sqlite}" = redis ]; then
    yaml=$repo/feature_store.redis.yaml
fi

# Run a command as uid:gid (argv 1, 2) when root; the image has Python but no su-exec/gosu.
as_owner='import os, sys
uid, gid = int(sys.argv[1]), int(sys.argv[2])
if os.getuid() == 0:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
os.execvp(sys.argv[3], sys.argv[3:])'

# An empty registry is enough to serve: create it on the first start, before any loader ran.
if [ ! -f "$data/online/feast/registry.db" ]; then
    python -c "$as_owner" "$owner" "$group" feast -c "$repo" -f "$yaml" apply
fi
# As the native server (mlrec_runtime.feast_server): registry re-read every 5 s, one worker, no recycling.
exec python -c "$as_owner" "$owner" "$group" feast -c "$repo" -f "$yaml" serve -h 0.0.0.0 -p 6566 \
    --no-access-log --registry_ttl_sec 5 --workers 1 --max-requests 0
