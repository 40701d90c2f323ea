#!/bin/sh
# LLM size on one machine (issue 17, item 6): a synthetic BF16 Llama-layout family from gen_hf.py (default
# P = 3e9, T = 2) imported (BF16 store), merged and exported (streamed) as a sharded HF folder, then
# evaluated: `mapmerge eval` of one coefficient vector with -map_eval_stream (the merged model written
# block by block straight from the store, BF16, for the program) and a cheap evaluator program
# (bench/store/header_worker.py: checks the file is complete, scores the RMS of a slice of its largest
# tensor); the exported folder is checked the same way. Each phase against `dd if=/dev/zero bs=16M
# conv=fdatasync` of the bytes the phase writes; then a whole MAP run (streamed evaluations) and the export of
# its pick, timed (DD_GB > 0: of DD_GB GB instead) with as many writers as ranks,
# measured right before it. Per phase: wall, + sync of the output, MB/s written, dd
# MB/s, peak RSS and CPU s per rank (/usr/bin/time), rchar per rank (/proc/<pid>/io), load.
# usage: bench/store/bench_llm.sh MAPMERGE WORK [P=3e9] [T=2] [RANKS=2] [DD_GB=0] [--keep]
set -eu
MM=$1
WORK=$2
P=${3:-3e9}
T=${4:-2}
N=${5:-2}
DDGB=${6:-0}
KEEP=${7:-}
HERE=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$WORK"
echo "$(date -u '+%Y-%m-%d %H:%M UTC') P = $P, T = $T, ranks = $N; $(df -h "$WORK" | tail -1); $(free -g | awk '/Mem/ {print "RAM " $2 " GiB, available " $7}')"
if [ ! -f "$WORK/hf/task$((T - 1))/model.safetensors.index.json" ]; then
  t0=$(date +%s.%N)
  /usr/bin/python3 "$HERE/gen_hf.py" "$WORK/hf" --P "$P" --T "$T" --dtype BF16 --writers 2 --seed 0 | tail -1
  echo "gen_hf: $(echo "$(date +%s.%N) - $t0" | bc) s"
fi
TASKS=$(seq -s, 0 $((T - 1)) | sed 's/\([0-9]*\)/t\1/g')
MODELS=$(for t in $(seq 0 $((T - 1))); do printf "%s/hf/task%d," "$WORK" "$t"; done | sed 's/,$//')
COEFF=$(for t in $(seq 1 "$T"); do printf "0.%d," "$((t + 2))"; done | sed 's/,$//')
INBYTES=$(du -cb "$WORK"/hf/*/*.safetensors | tail -1 | cut -f1)

dd_rate() { # MB/s of N concurrent writers of $1 bytes in all (or DDGB GB)
  count=$(( ($1 / N + 16777215) / 16777216 ))
  [ "$DDGB" -gt 0 ] && count=$((DDGB * 1024 / 16 / N))
  t0=$(date +%s.%N)
  for w in $(seq 1 "$N"); do dd if=/dev/zero of="$WORK/dd$w.bin" bs=16M count=$count conv=fdatasync status=none & done
  wait
  t1=$(date +%s.%N)
  rm -f "$WORK"/dd*.bin
  echo "$count * $N * 16.777216 / ($t1 - $t0)" | bc -l | xargs printf "%.0f"
}
# MB/s of one `dd bs=16M` reading FILES... to /dev/null, whatever of them the page cache holds (the phase's
# own inputs, read right before it, as it will read them)
ddread_rate() {
  t0=$(date +%s.%N)
  for f in "$@"; do dd if="$f" of=/dev/null bs=16M status=none; done
  t1=$(date +%s.%N)
  echo "$(du -cb "$@" | tail -1 | cut -f1) / 1000000 / ($t1 - $t0)" | bc -l | xargs printf "%.0f"
}
# phase NAME OUTPUT BYTES INPUTS CMD...: runs CMD on N ranks, syncs OUTPUT, prints one row; BYTES written (empty:
# the size of OUTPUT); INPUTS: the files it reads (a glob, quoted), for the copy bound: bound_s = input bytes /
# dd's read rate + bytes written / dd's write rate, bound_over_run = bound_s / (run + sync)
phase() {
  name=$1 out=$2 bytes=$3 inputs=$4
  shift 4
  # shellcheck disable=SC2086  # the glob is meant
  inb=$(du -cb $inputs | tail -1 | cut -f1)
  rdm=$(ddread_rate $inputs)
  ddm=$(dd_rate "${bytes:-$expect}")
  load=$(cut -d' ' -f1 /proc/loadavg)
  rm -f "$WORK"/rss.* "$WORK"/io.*
  t0=$(date +%s.%N)
  mpiexec -n "$N" sh -c 'exec 3>"$0/io.$OMPI_COMM_WORLD_RANK"; /usr/bin/time -f "%M %U %S" -o "$0/rss.$OMPI_COMM_WORLD_RANK" "$@"; rc=$?; cat /proc/$$/io >&3; exit $rc' \
    "$WORK" "$MM" "$@" >"$WORK/$name.log" 2>&1 || { tail -30 "$WORK/$name.log"; exit 1; }
  t1=$(date +%s.%N)
  sync -f "$out"
  t2=$(date +%s.%N)
  [ -n "$bytes" ] || bytes=$(du -cb "$out" | tail -1 | cut -f1)
  rss=$(cat "$WORK"/rss.* | awk '{printf "%s%.0f", sep, $1 / 1024; sep = "/"}')
  cpu=$(cat "$WORK"/rss.* | awk '{printf "%s%.0f", sep, $2 + $3; sep = "/"}')
  rchar=$(cat "$WORK"/io.* | awk '/^rchar/ {printf "%s%.2f", sep, $2 / 1e9; sep = "/"}')
  bound=$(echo "$inb / 1000000 / $rdm + $bytes / 1000000 / $ddm" | bc -l)
  echo "$name $load $(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1" | bc) $((bytes / 1000000)) $(echo "$bytes / 1000000 / ($t2 - $t0)" | bc -l | xargs printf "%.0f") $ddm $(echo "$bytes / 1000000 / ($t2 - $t0) / $ddm" | bc -l | xargs printf "%.2f") $rss $cpu $rchar $rdm $(printf "%.1f" "$bound") $(echo "$bound / ($t2 - $t0)" | bc -l | xargs printf "%.2f")"
  grep -E "^import: wrote|^import: source|^export: wrote|^eval: " "$WORK/$name.log" | cut -c1-200 || true
}
echo "inputs: $((INBYTES / 1000000)) MB"
echo "phase load run_s sync_s written_MB MBps dd_MBps ratio_dd peak_rss_MB_per_rank cpu_s_per_rank rchar_GB_per_rank ddread_MBps bound_s bound_over_run"
rm -f "$WORK/store.h5"
expect=$INBYTES # dd writes about what the phase will
phase import "$WORK/store.h5" "" "$WORK/hf/*/*.safetensors" import -map_pretrained "$WORK/hf/pretrained" -map_tasks "$TASKS" -map_task_models "$MODELS" \
  -map_store "$WORK/store.h5" -map_store_dtype bf16
rm -rf "$WORK/merged"
expect=$((INBYTES / (T + 1)))
phase export "$WORK/merged" "" "$WORK/store.h5" export -map_store "$WORK/store.h5" -map_coeff "$COEFF" -map_output "$WORK/merged" -map_export_shard_size 5G
# one evaluation: the merged model (BF16, the store's dtype) written for the program straight from the store
echo "$TASKS" >"$WORK/coeffs.csv"
echo "$COEFF" >>"$WORK/coeffs.csv"
MODELBYTES=$(du -cb "$WORK"/merged/*.safetensors | tail -1 | cut -f1)
rm -f "$WORK/eval.csv" "$WORK/eval.h5"
phase eval "$WORK/eval.csv" "$MODELBYTES" "$WORK/store.h5" eval -map_store "$WORK/store.h5" -map_coeffs "$WORK/coeffs.csv" -map_output "$WORK/eval.csv" \
  -map_eval_type worker -map_eval_worker "/usr/bin/python3 $HERE/header_worker.py" -map_eval_worker_dtype store -map_eval_stream \
  -map_eval_tmpdir "$WORK"
cat "$WORK/eval.csv"
# a whole MAP run on it (the default design, re-evaluations and the pick, every evaluation streamed as above),
# then its pick exported as a model folder
rm -rf "$WORK/run" "$WORK/pick"
t0=$(date +%s.%N)
mpiexec -n "$N" "$MM" run -map_store "$WORK/store.h5" -map_output "$WORK/run" -map_eval_type worker \
  -map_eval_worker "/usr/bin/python3 $HERE/header_worker.py" -map_eval_worker_dtype store -map_eval_stream -map_eval_tmpdir "$WORK" \
  >"$WORK/run.log" 2>&1 || { tail -30 "$WORK/run.log"; exit 1; }
echo "MAP run: $(echo "$(date +%s.%N) - $t0" | bc) s, load $(cut -d' ' -f1 /proc/loadavg)"
grep -E "^models evaluated|^pick for|^time per phase" "$WORK/run.log"
t0=$(date +%s.%N)
mpiexec -n "$N" "$MM" export -map_store "$WORK/store.h5" -map_run "$WORK/run" -map_output "$WORK/pick" -map_export_shard_size 5G | grep "^export: wrote" | cut -c1-200
echo "export of the pick: $(echo "$(date +%s.%N) - $t0" | bc) s"
t0=$(date +%s.%N)
/usr/bin/python3 -c "
import json, os, sys
sys.path.insert(0, '$HERE'); import header_worker
d = '$WORK/merged'; idx = json.load(open(os.path.join(d, 'model.safetensors.index.json')))
files = sorted(set(idx['weight_map'].values()))
for f in files: header_worker.check(os.path.join(d, f))
print('check of the exported folder (header_worker): %d shards, %d tensors, %.2f GB' % (len(files), len(idx['weight_map']), idx['metadata']['total_size'] / 1e9))"
echo "folder check: $(echo "$(date +%s.%N) - $t0" | bc) s"
ls -la "$WORK/merged" | head -12
if [ "$KEEP" != "--keep" ]; then rm -rf "$WORK"; echo "removed $WORK"; fi
