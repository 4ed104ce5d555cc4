#!/usr/bin/env bash
# Stop the daemons .ci/slurm/start.sh started, by the PIDs in their pid files, and remove the configless-cache
# link slurmd made to this cluster (nothing else is touched).
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
# slurmd's configless cache link (/run/slurm/conf -> DIR/spool/conf-cache) outlives it; left in place, every later
# scontrol reads it and waits ~9 s for the stopped controller, and the SLURM executor plugin runs one whenever
# Snakemake builds its command line (any executor)
link=/run/slurm/conf
if [[ -L $link && $(readlink "$link") == "$DIR"/* ]]; then
    rm -f "$link"
fi
