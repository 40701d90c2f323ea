#!/bin/bash
# down.sh [DIR] - stop the SLURM started by up.sh DIR: cancel all jobs, then stop slurmd, slurmctld
# and munged by the pids in DIR/run (each checked against /proc/<pid>/comm, so a stale pid file
# never kills an unrelated process). Safe to call twice, or after a failed up.sh.
set -u
R=${1:-${R:-}}
if [ -z "$R" ]; then echo "usage: $0 DIR   (or R=DIR $0)" >&2; exit 1; fi
[ -d "$R" ] || exit 0
export PATH=$PATH:/usr/sbin:/sbin
export SLURM_CONF=$R/etc/slurm.conf

alive() { # alive PID NAME: PID runs a program called NAME
  [ -n "$1" ] && [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}
if [ -f "$SLURM_CONF" ] && alive "$(cat "$R/run/slurmctld.pid" 2>/dev/null)" slurmctld; then
  timeout 10 scancel --user="$(id -un)" >/dev/null 2>&1
  # give running steps a moment to end so slurmd does not leave slurmstepd behind
  for _ in $(seq 30); do
    [ -z "$(timeout 5 squeue -h -t R,CG -o %i 2>/dev/null)" ] && break
    sleep 0.2
  done
fi
for d in slurmd slurmctld munged; do
  pid=$(cat "$R/run/$d.pid" 2>/dev/null)
  alive "$pid" "$d" || continue
  kill -TERM "$pid"
  for _ in $(seq 100); do alive "$pid" "$d" || break; sleep 0.1; done
  if alive "$pid" "$d"; then echo "down.sh: $d ($pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2; kill -KILL "$pid"; fi
done
exit 0
