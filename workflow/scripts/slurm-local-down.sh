#!/usr/bin/env bash
# slurm-local-down.sh — stop the single-node SLURM cluster started by slurm-local-up.sh
# (every daemon by its PID file; packages and configuration stay). Safe to run when nothing is up.
set -uo pipefail
stop_pid() { local p=$1; kill "$p" 2>/dev/null || return 0
  for _ in $(seq 60); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.25; done
  echo "warning: pid $p did not stop" >&2; }
pids=""
for f in /run/slurm/slurmctld.pid /run/slurm/slurmd.pid; do [ -s "$f" ] && pids="$pids $(cat "$f")"; done
scancel --user=root >/dev/null 2>&1 || true
scontrol shutdown >/dev/null 2>&1 || true        # asks slurmctld and every slurmd to exit
for p in $pids; do stop_pid "$p"; done
for f in /run/slurm/slurmdbd.pid /run/mysqld/mysqld.pid /run/munge/munged.pid; do
  [ -s "$f" ] && stop_pid "$(cat "$f")"
done
echo "slurm stopped"
