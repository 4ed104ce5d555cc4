#!/usr/bin/env bash
# Stop the daemons .ci/slurm/start.sh started, by the PIDs in their pid files (nothing else is touched).
set -uo pipefail
DIR=${1:-${SLURM_CI_DIR:-/tmp/saeflow-slurm}}
for d in slurmd slurmctld munged; do
    f=$DIR/$d.pid
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$f"
done
