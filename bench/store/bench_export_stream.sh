#!/bin/sh
# Streaming export (issue 17, item 1): export wall time, MB/s of the written file, ratio to
# `dd bs=16M conv=fdatasync` (and plain dd) of the same byte count measured right before each export,
# and peak RSS per rank (VmHWM, via /usr/bin/time %M), for the in-memory export (BEFORE binary, e.g. a
# build of main before the change; and this build's -map_io_block_mb 0) and the streaming one (default
# 64 MiB). Also checks every output against the BEFORE one: the same data bytes and the same header
# but for __metadata__.mapmerge_git_commit (two builds; safetensors_same.py).
# usage: bench/store/bench_export_stream.sh AFTER_BIN BEFORE_BIN [WORK=/tmp/mapmerge-bench-export] [P=50000000] [T=4] [REPS=3] [DTYPE=f32]
# DTYPE: the store's dtype (import -map_store_dtype) and the export's (-map_export_dtype).
set -eu
AFTER=$1
BEFORE=$2
WORK=${3:-/tmp/mapmerge-bench-export}
P=${4:-50000000}
T=${5:-4}
REPS=${6:-3}
DTYPE=${7:-f32}
HERE=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$WORK"
date -u '+%Y-%m-%d %H:%M UTC'
df -h "$WORK" | tail -1
TASKS=$(seq -s, 0 $((T - 1)) | sed 's/\([0-9]*\)/t\1/g')
MODELS=$(for t in $(seq 0 $((T - 1))); do printf "%s/model/task%d.safetensors," "$WORK" "$t"; done | sed 's/,$//')
COEFF=$(for t in $(seq 1 "$T"); do printf "0.%d," "$t"; done | sed 's/,$//')
if [ ! -f "$WORK/store.h5" ]; then
  /usr/bin/python3 "$HERE/gen_model.py" "$WORK/model" --P "$P" --T "$T"
  mpiexec -n 1 "$AFTER" import -map_pretrained "$WORK/model/pretrained.safetensors" -map_tasks "$TASKS" -map_task_models "$MODELS" \
    -map_store "$WORK/store.h5" -map_store_dtype "$DTYPE" | tail -1
  rm -rf "$WORK/model"
fi
echo "# export_s: the export's own elapsed time (its last line), MB/s = output bytes / export_s"
echo "variant ranks rep uptime_load1 bytes dd_fdatasync_s dd_s export_s export_MBps ratio_dd_fdatasync ratio_dd peak_rss_MB_per_rank identical"
for rep in $(seq 1 "$REPS"); do
  for n in 1 2; do
    for v in before block0 stream64; do
      case $v in
        before) BIN=$BEFORE; OPT= ;;
        block0) BIN=$AFTER; OPT="-map_io_block_mb 0" ;;
        stream64) BIN=$AFTER; OPT="-map_io_block_mb 64" ;;
      esac
      OUT="$WORK/out_$v.safetensors"
      rm -f "$OUT"
      load=$(cut -d' ' -f1 /proc/loadavg)
      BYTES=$(( P * $([ "$DTYPE" = f32 ] && echo 4 || echo 2) + 200000 ))
      t0=$(date +%s.%N)
      dd if=/dev/zero of="$WORK/dd.bin" bs=16M count=$(( (BYTES + 16777215) / 16777216 )) conv=fdatasync 2>/dev/null
      t1=$(date +%s.%N)
      rm -f "$WORK/dd.bin"
      dd if=/dev/zero of="$WORK/dd.bin" bs=16M count=$(( (BYTES + 16777215) / 16777216 )) 2>/dev/null
      t2=$(date +%s.%N)
      rm -f "$WORK/dd.bin"
      # the export's own clock (its last line), without mpiexec's start-up
      mpiexec -n "$n" sh -c 'exec /usr/bin/time -f "RSS %M" -o "$0/rss.$OMPI_COMM_WORLD_RANK" "$@"' "$WORK" "$BIN" export -map_store "$WORK/store.h5" \
        -map_coeff "$COEFF" -map_output "$OUT" -map_export_dtype "$DTYPE" $OPT >"$WORK/out.txt" 2>&1 || { cat "$WORK/out.txt"; exit 1; }
      t3=$(awk -v t2="$t2" '/^export: wrote/ {sub(/ s$/, ""); printf "%.3f", t2 + $NF}' "$WORK/out.txt")
      rss=$(cat "$WORK"/rss.* | awk '/RSS/ {printf "%s%.0f", sep, $2 / 1024; sep = "/"}')
      rm -f "$WORK"/rss.*
      bytes=$(stat -c %s "$OUT")
      same=-
      [ "$v" = before ] || same=$(/usr/bin/python3 "$HERE/safetensors_same.py" "$OUT" "$WORK/out_before.safetensors")
      echo "$v $n $rep $load $bytes $t0 $t1 $t2 $t3 $rss $same" | awk '{dds = $7 - $6; dd = $8 - $7; ex = $9 - $8;
        printf "%s %d %d %s %d %.2f %.2f %.2f %.0f %.2f %.2f %s %s\n", $1, $2, $3, $4, $5, dds, dd, ex, $5 / 1e6 / ex, dds / ex, dd / ex, $10, $11}'
    done
  done
done
rm -f "$WORK"/out_*.safetensors
