#!/usr/bin/env bash
# A one-node SLURM on localhost for CI (tests/workflow/test_slurm.py) and for trying the profile by hand.
# No systemd, no slurmdbd (no accounting: the case of issue 18); munged, slurmctld and slurmd run as root
# from a private state directory and are stopped by PID with .ci/slurm/stop.sh. Outside that directory:
# munge's default key and socket (/etc/munge, /run/munge) and slurmd's configless cache /run/slurm/conf,
# which the commands inside jobs read.
#
#   .ci/slurm/start.sh [DIR]      # DIR defaults to $SLURM_CI_DIR or /tmp/saeflow-slurm
#   export SLURM_CONF=DIR/slurm.conf   # then sbatch/squeue/sinfo talk to this cluster
#   .ci/slurm/stop.sh [DIR]
#
# Environment: SLURM_CI_CPUS (default: nproc), SLURM_CI_MEM_MB (default 20000: the issue's 2-CPU/20 GB node),
# SLURM_CI_PORT (slurmctld port, default 6817; slurmd gets the next one), SLURM_CI_MIN_JOB_AGE (seconds squeue
# shows a finished job, default 3600: the squeue status command and the test's checks rely on it), SLURM_CI_INSTALL=1 installs
# slurmctld slurmd slurm-client munge with apt-get when missing (root only).
set -euo pipefail
DIR=${1:-${SLURM_CI_DIR:-/tmp/saeflow-slurm}}
CPUS=${SLURM_CI_CPUS:-$(nproc)}
MEM=${SLURM_CI_MEM_MB:-20000}
PORT=${SLURM_CI_PORT:-6817}
HOST=$(hostname -s)

need=()
for b in slurmctld slurmd sbatch munged; do command -v "$b" >/dev/null || need+=("$b"); done
if ((${#need[@]})); then
    if [[ ${SLURM_CI_INSTALL:-0} == 1 && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing slurm and munge from apt (missing: ${need[*]})" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends \
            slurmctld slurmd slurm-client munge >/dev/null
    else
        echo "SKIP: missing ${need[*]} (install: apt-get install slurmctld slurmd slurm-client munge, as root)" >&2
        exit 77
    fi
fi
[[ $(id -u) == 0 ]] || { echo "SKIP: slurmd must run as root" >&2; exit 77; }

if [[ -f $DIR/slurmctld.pid ]] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null; then
    echo "already running in $DIR (stop it with .ci/slurm/stop.sh $DIR)" >&2
    exit 1
fi
if pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null; then
    echo "SKIP: a slurmd/slurmctld already runs on this machine (one node per host: stop it first)" >&2
    exit 77
fi
mkdir -p "$DIR"/{state,spool,log}
chmod 755 "$DIR"

# munge: the Debian package's key and socket (/etc/munge/munge.key, /run/munge): slurmd in configless mode
# authenticates before it has a config, so only the default socket works. A munged already serving it is
# reused (and left running); otherwise ours runs with its pid file here, so that stop.sh ends it.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [[ -f /etc/munge/munge.key ]] || { mungekey --create 2>/dev/null || \
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
    chmod 600 /etc/munge/munge.key
    mkdir -p /run/munge
    munged --force --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge.seed"
fi

cat > "$DIR/slurm.conf" <<CONF
ClusterName=saeflow-ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MinJobAge=${SLURM_CI_MIN_JOB_AGE:-3600}
SlurmctldParameters=enable_configless
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$DIR/slurm.conf

slurmctld -f "$SLURM_CONF"
# configless: slurmd fetches the config from slurmctld and serves it to the commands of jobs under
# /run/slurm/conf (the executor plugin drops SLURM_* variables, SLURM_CONF included, inside jobs, so srun there
# finds the config only this way or in /etc/slurm)
slurmd --conf-server "127.0.0.1:$PORT"

# wait until the node takes jobs
for _ in $(seq 60); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1 || true)
    [[ $state == idle* || $state == mixed* || $state == allocated* ]] && break
    sleep 0.5
done
if [[ $state != idle* && $state != mixed* && $state != allocated* ]]; then
    echo "node $HOST not ready (state '${state:-?}'); see $DIR/log" >&2
    tail -5 "$DIR"/log/*.log >&2 || true
    exit 1
fi
echo "SLURM_CONF=$SLURM_CONF"
