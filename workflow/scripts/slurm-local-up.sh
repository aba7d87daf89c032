#!/usr/bin/env bash
# slurm-local-up.sh — a single-node SLURM cluster on this machine, for eftflow's `slurm` tests and CI
# (Debian 12 packages, Slurm 22.05; run as root; no systemd needed: the daemons are started by hand).
# Idempotent: safe to re-run; starts only what is not running, restarts Slurm if slurm.conf changed.
# Env: SLURM_NODE_CPUS (default: max(nproc, 4) — the node may advertise more CPUs than the machine
#        has (SlurmdParameters=config_overrides), so that a driver job plus two 1-core Dask worker
#        jobs, or `srun -n 3`, fit on a 2-core CI machine),
#      SLURM_NODE_MEM_MB (default: 85% of MemTotal),
#      SLURM_WITH_ACCOUNTING=1 to add MariaDB + slurmdbd so that `sacct` works.
# Stop everything again with workflow/scripts/slurm-local-down.sh.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }

ncpu=$(nproc); [ "$ncpu" -lt 4 ] && ncpu=4
CPUS=${SLURM_NODE_CPUS:-$ncpu}
MEM_MB=${SLURM_NODE_MEM_MB:-$(awk '/MemTotal/ {print int($2/1024*0.85)}' /proc/meminfo)}
ACCT=${SLURM_WITH_ACCOUNTING:-0}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop_pidfile() {  # stop the daemon whose PID is in file $1, wait for it to exit
  alive "$1" || return 0
  local p; p=$(cat "$1"); kill "$p"
  for _ in $(seq 60); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.25; done
  echo "warning: pid $p did not stop" >&2
}

# 1. packages (apt is skipped when everything is already installed)
pkgs="slurm-wlm munge"; [ "$ACCT" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
need=0; for b in slurmctld slurmd munged; do command -v $b >/dev/null || need=1; done
[ "$ACCT" = 1 ] && { command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null || need=1; }
if [ "$need" = 1 ]; then
  command -v apt-get >/dev/null || { echo "slurm is not installed and there is no apt-get" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs >/dev/null; }
fi

# 2. munge: dirs, key (0400 munge:munge), daemon running as user munge
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
    || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 40); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.25; done
fi
munge -n | unmunge >/dev/null

install -d -m 0755 /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm

# 3. optional accounting: MariaDB (unix socket only) + slurmdbd
if [ "$ACCT" = 1 ]; then
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  if ! mariadb -e 'select 1' >/dev/null 2>&1; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    setsid /usr/sbin/mariadbd --user=mysql --skip-networking --pid-file=/run/mysqld/mysqld.pid \
      </dev/null >/var/log/mariadbd-slurm.log 2>&1 &
    for _ in $(seq 120); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.25; done
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
              CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
  cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOF
  chmod 0600 /etc/slurm/slurmdbd.conf      # slurmdbd refuses a group/world-readable file
  alive /run/slurm/slurmdbd.pid || /usr/sbin/slurmdbd
  ACCT_CONF="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux"
else
  ACCT_CONF="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

# 4. slurm.conf
cat > /etc/slurm/slurm.conf.new <<EOF
# single-node test cluster, written by eftflow's workflow/scripts/slurm-local-up.sh
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
${ACCT_CONF}
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
if ! cmp -s /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf; then
  stop_pidfile /run/slurm/slurmd.pid; stop_pidfile /run/slurm/slurmctld.pid
fi
mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf

# 5. daemons (with accounting, the cluster must exist in slurmdbd first; sacctmgr reads slurm.conf,
#    so this can only run after slurm.conf says accounting_storage/slurmdbd)
if [ "$ACCT" = 1 ]; then
  for _ in $(seq 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.25; done
  clusters=$(sacctmgr -n -P list cluster format=cluster)   # (no pipe into grep -q: SIGPIPE + pipefail)
  grep -qw localcluster <<<"$clusters" || sacctmgr -i add cluster localcluster >/dev/null
fi
alive /run/slurm/slurmctld.pid || /usr/sbin/slurmctld
alive /run/slurm/slurmd.pid || /usr/sbin/slurmd -N localhost

# 6. wait until the node accepts jobs (resume it if a previous run left it down/drained)
for _ in $(seq 120); do
  state=$(sinfo -h -N -n localhost -o %T 2>/dev/null || true)
  case "$state" in
    idle*|mixed*|allocated*|completing*) break ;;
    down*|drain*) scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
sinfo -N -o "%N %T %c %m %P"
