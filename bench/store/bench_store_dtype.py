"""F32 vs BF16 vs F16 storage (`import -map_store_dtype`), measured in one run on the same
checkpoints: store bytes and import time; the collective read of every rank's shard
(bench_store_read: first read into fresh memory, cold and warm page cache, and re-reads) and one
merge of it; and one merge + eval pass of `mapmerge eval` on the small Fashion-MNIST zoo. Prints
each figure for every dtype and the ratios BF16 / F32 and F16 / F32.

- synthetic family: bench/store/gen_model.py (P F32 parameters, T tasks = pretrained + 1e-3 noise).
- read: bench_store_read keeps a 16-bit shard 16-bit (as MapModel does), so its bytes are half;
  before timing it checks each 16-bit store against the F32 one (VALID: every value is the
  round-to-nearest-even of the F32 store's). Cold = the store evicted from the page cache by
  bench_store_read -cold (posix_fadvise DONTNEED) before the first read.
- merge + eval: `mapmerge eval` of K coefficient vectors on the small zoo's stores of each dtype,
  best wall time of 3, and the -log_view events MapStoreRead, MapMergeApply, MapEvalLoss (max over ranks).
usage: bench_store_dtype.py BUILD_DIR WORKDIR [--P 50000000] [--T 4] [--np 2] [--zoo BUILD_DIR/zoo-small] [--K 20]
       [--dtypes f32,bf16,f16]"""
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


def row(label, vals, fmt='%.4f'):
    """one figure per dtype (F32 first), then each other dtype's ratio to F32"""
    f32 = vals[0]
    cells = ''.join(f' {fmt % v:>12}' for v in vals) + ''.join(f' {v / f32 if f32 else float("nan"):>8.3f}' for v in vals[1:])
    print(f'  {label:<44}{cells}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('build')
    ap.add_argument('workdir')
    ap.add_argument('--P', type=int, default=50_000_000)
    ap.add_argument('--T', type=int, default=4)
    ap.add_argument('--np', type=int, default=2)
    ap.add_argument('--zoo', help='small zoo folder (default BUILD/zoo-small)')
    ap.add_argument('--K', type=int, default=20, help='coefficient vectors in the merge + eval pass')
    ap.add_argument('--dtypes', default='f32,bf16,f16', help='storage dtypes, F32 first (the reference of the ratios)')
    a = ap.parse_args()
    dtypes = a.dtypes.split(',')
    if dtypes[0] != 'f32' or len(dtypes) < 2:
        sys.exit('--dtypes must start with f32 and name at least one other dtype')
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
    for dt in dtypes:
        store = os.path.join(W, f'store_{dt}.h5')
        _, wall = run(['mpiexec', '-n', n, mm, 'import', '-map_pretrained', f'{model}/pretrained.safetensors', '-map_tasks',
                       ','.join(f't{t}' for t in range(T)), '-map_task_models', ','.join(f'{model}/task{t}.safetensors' for t in range(T)),
                       '-map_store', store, '-map_store_dtype', dt])
        res[dt] = {'import': wall, 'bytes': os.path.getsize(store)}
    for dt in dtypes:
        store = os.path.join(W, f'store_{dt}.h5')
        ref = ['-reference', os.path.join(W, 'store_f32.h5')] if dt != 'f32' else []
        cold, _ = run(['mpiexec', '-n', n, rb, '-store', store, '-reps', '1', '-cold'] + ref)
        if dt != 'f32' and not re.search(r'^VALID:', cold, re.M):
            sys.exit(f'bench_store_read did not validate the {dt} store:\n' + cold)
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
    for dt in dtypes:
        zstore = os.path.join(W, f'zoo_{dt}.h5')
        run(['mpiexec', '-n', n, mm, 'import', '-options_file_yaml', small, '-map_store', zstore, '-map_store_dtype', dt], cwd=cwd)
        best = None
        for _ in range(3):
            log, wall = run(['mpiexec', '-n', n, mm, 'eval', '-options_file_yaml', small, '-map_store', zstore, '-map_coeffs', csv,
                             '-map_output', os.path.join(W, f'eval_{dt}.h5'), '-log_view'], cwd=cwd)
            if best is None or wall < best[0]:
                best = (wall, event(log, 'MapStoreRead'), event(log, 'MapMergeApply'), event(log, 'MapEvalLoss'))
        res[dt].update(zoo_bytes=os.path.getsize(zstore), eval_wall=best[0], eval_read=best[1], eval_merge=best[2], eval_loss=best[3])

    names = [dt.upper() for dt in dtypes]
    print(f'\n  {"":<44}' + ''.join(f' {x:>12}' for x in names) + ''.join(f' {x + "/F32":>8}' for x in names[1:]))
    for label, key, fmt in (('store file bytes', 'bytes', '%.0f'), ('import wall s', 'import', '%.4f'),
                            ('read, fresh memory, cold cache s', 'cold', '%.4f'), ('read, fresh memory, warm cache s', 'fresh', '%.4f'),
                            ('re-read into the same memory s (best of 2)', 'reread', '%.4f'),
                            ('merge of the read shards s (best of 3)', 'merge', '%.4f'),
                            ('zoo store bytes (P = 52320, T = 4)', 'zoo_bytes', '%.0f'),
                            (f'zoo eval of {a.K} vectors, wall s (best of 3)', 'eval_wall', '%.4f'),
                            ('  of which MapStoreRead s', 'eval_read', '%.4f'), ('  of which MapMergeApply s', 'eval_merge', '%.4f'),
                            ('  of which MapEvalLoss s', 'eval_loss', '%.4f')):
        row(label, [res[dt][key] for dt in dtypes], fmt)
    print(f'load average at end: {load()}')


if __name__ == '__main__':
    main()
