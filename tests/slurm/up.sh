#!/bin/bash
# up.sh [DIR] - bring up a private single-node SLURM (munged + slurmctld + slurmd on localhost).
#
# All state (munge key and socket, slurm.conf, spool, pid and log files) lives under DIR (or $R);
# nothing touches /etc or /var. On success it writes DIR/env.sh; `source DIR/env.sh` sets
# SLURM_CONF so sbatch/squeue/scontrol talk to this cluster. Stop it with down.sh DIR.
#
# Exit status: 0 up and the node idle; 77 (ctest "skipped") when SLURM or munge is not installed
# or cannot start here (logs printed); 1 on a usage error.
#
# Environment: MAP_SLURM_CTLD_PORT / MAP_SLURM_SLURMD_PORT (default: two free ports),
#              MAP_SLURM_CRED_EXPIRE (seconds, default 5: also the requeue delay),
#              MAP_SLURM_CPUS (default nproc).
set -u
R=${1:-${R:-}}
if [ -z "$R" ]; then echo "usage: $0 DIR   (or R=DIR $0)" >&2; exit 1; fi
mkdir -p "$R" && R=$(cd "$R" && pwd) || exit 1
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIP: $*" >&2; exit 77; }

for prog in munged mungekey munge unmunge slurmctld slurmd sbatch squeue sinfo scontrol scancel; do
  command -v "$prog" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$prog" >/dev/null 2>&1 ||
    skip "'$prog' is not installed (apt-get install slurm-wlm munge)"
done
export PATH=$PATH:/usr/sbin:/sbin

mkdir -p "$R"/{munge,etc,spool/ctld,spool/d,run,log} || exit 1
chmod 755 "$R/munge" # munged insists on o+x on the socket directory and on every parent
chmod go+x "$R" # (mktemp -d makes 0700)

# --- munge ---------------------------------------------------------------------------------
sock=$R/munge/munge.socket.2
if [ ! -f "$R/munge/munge.key" ]; then
  mungekey --create --keyfile="$R/munge/munge.key" 2>"$R/log/mungekey.log" ||
    { dd if=/dev/urandom of="$R/munge/munge.key" bs=1024 count=1 2>/dev/null && chmod 400 "$R/munge/munge.key"; } ||
    skip "cannot create a munge key (see $R/log/mungekey.log)"
fi
munged --key-file="$R/munge/munge.key" --socket="$sock" --pid-file="$R/run/munged.pid" \
  --log-file="$R/log/munged.log" --seed-file="$R/munge/munged.seed" 2>>"$R/log/munged.log" ||
  { cat "$R/log/munged.log" >&2; skip "munged did not start"; }
ok=0
for _ in $(seq 50); do
  if munge -n -S "$sock" 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
[ $ok = 1 ] || { cat "$R/log/munged.log" >&2; "$here/down.sh" "$R" >/dev/null 2>&1; skip "munge credential round trip failed"; }

# --- slurm.conf ----------------------------------------------------------------------------
free_port() { # a currently free TCP port on localhost
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null
}
ctld_port=${MAP_SLURM_CTLD_PORT:-$(free_port)}
slurmd_port=${MAP_SLURM_SLURMD_PORT:-$(free_port)}
[ -n "$ctld_port" ] || ctld_port=6817
[ -n "$slurmd_port" ] && [ "$slurmd_port" != "$ctld_port" ] || slurmd_port=$((ctld_port + 1))
cpus=${MAP_SLURM_CPUS:-$(nproc)}
sed -e "s|@R@|$R|g" -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
    -e "s|@CPUS@|$cpus|g" -e "s|@CRED_EXPIRE@|${MAP_SLURM_CRED_EXPIRE:-5}|g" \
    "$here/slurm.conf.in" > "$R/etc/slurm.conf" || exit 1
export SLURM_CONF=$R/etc/slurm.conf
echo "export SLURM_CONF=$SLURM_CONF" > "$R/env.sh"

# --- daemons -------------------------------------------------------------------------------
fail() {
  echo "---- slurmctld.log" >&2; tail -n 20 "$R/log/slurmctld.log" >&2 2>/dev/null
  echo "---- slurmd.log" >&2; tail -n 20 "$R/log/slurmd.log" >&2 2>/dev/null
  "$here/down.sh" "$R" >/dev/null 2>&1
  skip "$*"
}
slurmctld -f "$SLURM_CONF" 2>>"$R/log/slurmctld.stderr" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" -N localhost 2>>"$R/log/slurmd.stderr" || fail "slurmd did not start"
dead() { # dead NAME: pid file run/NAME.pid written, but no NAME runs under that pid
  local pid
  pid=$(cat "$R/run/$1.pid" 2>/dev/null) || return 1 # not written yet
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$1" ]
}
state=
deadline=$(($(date +%s) + 20)) # usually idle after about 1 s
while [ "$(date +%s)" -lt $deadline ]; do
  sleep 0.2
  # a daemon that died (e.g. its port is taken) would make sinfo retry for minutes
  for d in slurmctld slurmd; do dead $d && fail "$d exited during start-up"; done
  state=$(timeout 5 sinfo -h -n localhost -o %T 2>/dev/null)
  [ "$state" = idle ] && break
done
[ "$state" = idle ] || fail "node localhost is not idle after 20 s (state '$state')"
echo "SLURM up: SLURM_CONF=$SLURM_CONF (ports $ctld_port/$slurmd_port, $cpus CPUs)"
