"""BF16 vs F32 storage (`import -map_store_dtype`), measured in one run on the same checkpoints:
store bytes and import time; the collective read of every rank's shard (bench_store_read: first
read into fresh memory, cold and warm page cache, and re-reads) and one merge of it; and one
merge + eval pass of `mapmerge eval` on the small Fashion-MNIST zoo. Prints each figure for both
dtypes and the ratio BF16 / F32.

- synthetic family: bench/store/gen_model.py (P F32 parameters, T tasks = pretrained + 1e-3 noise).
- read: bench_store_read keeps a BF16 shard in BF16 (as MapModel does), so its bytes are half;
  before timing it checks the BF16 store against the F32 one (VALID: every value is the
  round-to-nearest-even of the F32 store's). Cold = the store evicted from the page cache by
  bench_store_read -cold (posix_fadvise DONTNEED) before the first read.
- merge + eval: `mapmerge eval` of K coefficient vectors on the small zoo's F32 and BF16 stores,
  best wall time of 3, and the -log_view events MapStoreRead, MapMergeApply, MapEvalLoss (max over ranks).
usage: bench_bf16.py BUILD_DIR WORKDIR [--P 50000000] [--T 4] [--np 2] [--zoo BUILD_DIR/zoo-small] [--K 20]"""
import argparse
import os
import re
import subprocess
import sys
import time

from bench_store import ENV, HERE, event, load

SRC = os.path.dirname(os.path.dirname(HERE))


def run(cmd, cwd=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=cwd)
    wall = time.perf_counter() - t
    if p.returncode:
        sys.exit(f'failed ({p.returncode}): {" ".join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}')
    return p.stdout, wall


def results(out):
    """RESULT lines of bench_store_read -> {what: [seconds, ...]}"""
    r = {}
    for what, sec in re.findall(r'^RESULT (\S+) (\S+)', out, re.M):
        r.setdefault(what, []).append(float(sec))
    return r


def row(label, f32, bf16, fmt='%.4f'):
    print(f'  {label:<44} {fmt % f32:>12} {fmt % bf16:>12} {bf16 / f32 if f32 else float("nan"):>8.3f}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('build')
    ap.add_argument('workdir')
    ap.add_argument('--P', type=int, default=50_000_000)
    ap.add_argument('--T', type=int, default=4)
    ap.add_argument('--np', type=int, default=2)
    ap.add_argument('--zoo', help='small zoo folder (default BUILD/zoo-small)')
    ap.add_argument('--K', type=int, default=20, help='coefficient vectors in the merge + eval pass')
    a = ap.parse_args()
    B, W, T, P, n = os.path.abspath(a.build), os.path.abspath(a.workdir), a.T, a.P, str(a.np)
    mm, rb = os.path.join(B, 'mapmerge'), os.path.join(B, 'bench_store_read')
    zoo = os.path.abspath(a.zoo or os.path.join(B, 'zoo-small'))
    os.makedirs(W, exist_ok=True)
    print(f'load average at start: {load()}; P = {P}, T = {T}, {n} ranks')
    model = os.path.join(W, 'model')
    stamp = os.path.join(model, f'P{P}_T{T}.done')
    if not os.path.exists(stamp):
        subprocess.run([sys.executable, os.path.join(HERE, 'gen_model.py'), model, '--P', str(P), '--T', str(T)], check=True)
        open(stamp, 'w').close()
    res = {}
    for dt in ('f32', 'bf16'):
        store = os.path.join(W, f'store_{dt}.h5')
        _, wall = run(['mpiexec', '-n', n, mm, 'import', '-map_pretrained', f'{model}/pretrained.safetensors', '-map_tasks',
                       ','.join(f't{t}' for t in range(T)), '-map_task_models', ','.join(f'{model}/task{t}.safetensors' for t in range(T)),
                       '-map_store', store, '-map_store_dtype', dt])
        res[dt] = {'import': wall, 'bytes': os.path.getsize(store)}
    for dt in ('f32', 'bf16'):
        store = os.path.join(W, f'store_{dt}.h5')
        ref = ['-reference', os.path.join(W, 'store_f32.h5')] if dt == 'bf16' else []
        cold, _ = run(['mpiexec', '-n', n, rb, '-store', store, '-reps', '1', '-cold'] + ref)
        if dt == 'bf16' and 'VALID:' not in cold:
            sys.exit('bench_store_read did not validate the BF16 store:\n' + cold)
        print('  ' + [l for l in cold.splitlines() if 'VALID' in l or 'dtype' in l][-1])
        warm, _ = run(['mpiexec', '-n', n, rb, '-store', store, '-reps', '3'])
        rc, rw = results(cold), results(warm)
        res[dt].update(cold=rc['read_fresh_cold'][0], fresh=rw['read_fresh'][0], reread=min(rw['reread']), merge=rw['merge'][0])

    # merge + eval on the small zoo: the yaml's zoo-small/... paths are relative to the zoo's parent
    if not os.path.exists(os.path.join(zoo, 'pretrained.safetensors')):
        sys.exit(f'no small zoo in {zoo}: build it (mapmerge zoo -options_file_yaml input/small.yaml -map_output {zoo})')
    small, cwd = os.path.join(SRC, 'input', 'small.yaml'), os.path.dirname(zoo)
    csv = os.path.join(W, 'coeffs.csv')
    with open(csv, 'w') as f:
        f.write('rot90,flip_v,permute,shift\n')
        for k in range(a.K):
            f.write(','.join('%.3f' % ((0.1 + 0.37 * (k + 1) * (i + 1)) % 1) for i in range(4)) + '\n')
    for dt in ('f32', 'bf16'):
        zstore = os.path.join(W, f'zoo_{dt}.h5')
        run(['mpiexec', '-n', n, mm, 'import', '-options_file_yaml', small, '-map_store', zstore, '-map_store_dtype', dt], cwd=cwd)
        best = None
        for _ in range(3):
            log, wall = run(['mpiexec', '-n', n, mm, 'eval', '-options_file_yaml', small, '-map_store', zstore, '-map_coeffs', csv,
                             '-map_output', os.path.join(W, f'eval_{dt}.h5'), '-log_view'], cwd=cwd)
            if best is None or wall < best[0]:
                best = (wall, event(log, 'MapStoreRead'), event(log, 'MapMergeApply'), event(log, 'MapEvalLoss'))
        res[dt].update(zoo_bytes=os.path.getsize(zstore), eval_wall=best[0], eval_read=best[1], eval_merge=best[2], eval_loss=best[3])

    f, b = res['f32'], res['bf16']
    print(f'\n  {"":<44} {"F32":>12} {"BF16":>12} {"BF16/F32":>8}')
    row('store file bytes', f['bytes'], b['bytes'], '%.0f')
    row('import wall s', f['import'], b['import'])
    row('read, fresh memory, cold cache s', f['cold'], b['cold'])
    row('read, fresh memory, warm cache s', f['fresh'], b['fresh'])
    row('re-read into the same memory s (best of 2)', f['reread'], b['reread'])
    row('merge of the read shards s (best of 3)', f['merge'], b['merge'])
    row('zoo store bytes (P = 52320, T = 4)', f['zoo_bytes'], b['zoo_bytes'], '%.0f')
    row(f'zoo eval of {a.K} vectors, wall s (best of 3)', f['eval_wall'], b['eval_wall'])
    row('  of which MapStoreRead s', f['eval_read'], b['eval_read'])
    row('  of which MapMergeApply s', f['eval_merge'], b['eval_merge'])
    row('  of which MapEvalLoss s', f['eval_loss'], b['eval_loss'])
    print(f'load average at end: {load()}')


if __name__ == '__main__':
    main()
