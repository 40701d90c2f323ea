"""Measurements for the scaling model (bench/scaling/model.py), on this machine, into WORK/measure.json.

    measure.py BUILD WORK [--P 1e6,1e7,5e7,2.5e8] [--T 4] [--ranks 1,2,4] [--max-p-4 5e7] [--reps 3] [--dd-mb 1024]

Every figure is repeated --reps times (median and min kept) and records the 1-minute load average
at its start, since the machine may be shared. What is measured (all real runs):
- disk: dd if=/dev/zero bs=16M conv=fdatasync (1 writer, and 2 concurrent writers: aggregate);
  dd read of the file warm (in the page cache) and cold (evicted with posix_fadvise, see bench/store)
- sha256 of a cached file in one process (Python's hashlib = OpenSSL, the library mapmerge uses)
- GEMM: numpy float32 matmul n = 2048, one OpenBLAS thread
- MPI_Allreduce latency and bandwidth (allreduce.c, built by run.sh) at each rank count
- merge kernel: bench_merge (best of reps, alternating with a STREAM triad)
- per model size P (bench/store/gen_hf.py, BF16, T tasks; its own write time with 1 and 2 writers at
  the smallest P and 2 writers otherwise): `mapmerge import -map_store_dtype bf16` + sync at each rank
  count, then bench_store_read (collective read of the whole store into fresh memory, re-read, one merge),
  then `mapmerge export` of theta_pre + sum 0.25 tau_k (the streamed export, -map_io_block_mb 64 by
  default: the store read block by block, merged, written as a BF16 model folder) + sync at the same
  rank count; wall time (with mpiexec's start-up, like the import) and the export's own clock."""
import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'store'))
from bench_store import ENV, evict  # noqa: E402  (same environment and page-cache eviction as the store benchmark)


def load():
    return float(open('/proc/loadavg').read().split()[0])


def rep(fn, reps):
    """runs fn() reps times; fn returns seconds (or a dict with 's'); keeps all, the median and the min"""
    runs = []
    for _ in range(reps):
        ld = load()
        r = fn()
        r = r if isinstance(r, dict) else {'s': r}
        r['load'] = ld
        runs.append(r)
    s = [r['s'] for r in runs]
    return {'median': statistics.median(s), 'min': min(s), 'runs': runs}


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, **kw)
    if p.returncode:
        sys.exit(f'measure.py: failed ({p.returncode}): {" ".join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}')
    return p.stdout + p.stderr


def timed(cmd):
    t = time.perf_counter()
    run(cmd)
    return time.perf_counter() - t


def dd_write(paths, mb):
    """concurrent dd writers, one per path; seconds until the last one has synced"""
    t = time.perf_counter()
    ps = [subprocess.Popen(['dd', 'if=/dev/zero', f'of={p}', 'bs=16M', f'count={mb // 16}', 'conv=fdatasync'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in paths]
    if any(p.wait() for p in ps):
        sys.exit(f'measure.py: dd to {paths} failed (disk full?)')
    return time.perf_counter() - t


def dd_read(path):
    return timed(['dd', f'if={path}', 'of=/dev/null', 'bs=16M'])


def sha(path):
    t = time.perf_counter()
    h = hashlib.sha256()
    with open(path, 'rb', buffering=0) as f:
        while True:
            b = f.read(16 << 20)
            if not b:
                break
            h.update(b)
    return time.perf_counter() - t


def gemm(n=2048):
    out = subprocess.run([sys.executable, '-c', f'''
import time, numpy as np
a = np.random.default_rng(0).standard_normal(({n}, {n}), dtype=np.float32); b = a.T.copy(); a @ b
t = time.perf_counter(); a @ b; print(time.perf_counter() - t)'''], capture_output=True, text=True,
                         env=dict(ENV, OPENBLAS_NUM_THREADS='1', OMP_NUM_THREADS='1'), check=True).stdout
    return float(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('build')
    ap.add_argument('work')
    ap.add_argument('--P', default='1e6,1e7,5e7,2.5e8')
    ap.add_argument('--T', type=int, default=4)
    ap.add_argument('--ranks', default='1,2,4')
    ap.add_argument('--max-p-4', type=float, default=5e7, help='largest P run at more than 2 ranks (shape only on 2 cores)')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--dd-mb', type=int, default=1024)
    ap.add_argument('--block-mb', type=float, default=64, help='export -map_io_block_mb')
    a = ap.parse_args()
    B, W, R = os.path.abspath(a.build), os.path.abspath(a.work), a.reps
    mapmerge, readb, mergeb = (os.path.join(B, x) for x in ('mapmerge', 'bench_store_read', 'bench_merge'))
    allr = os.path.join(W, 'allreduce')
    for x in (mapmerge, readb, mergeb, allr):
        if not os.access(x, os.X_OK):
            sys.exit(f'measure.py: {x} not found; build the targets mapmerge bench_store_read bench_merge (run.sh builds allreduce)')
    os.makedirs(W, exist_ok=True)
    ranks = [int(x) for x in a.ranks.split(',')]
    res = {'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'host': os.uname().nodename, 'cores': os.cpu_count(),
           'cpu': next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?'),
           'mem_GB': os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1e9, 'load_start': load(), 'T': a.T, 'reps': R,
           'block_mb': a.block_mb}

    def note(k, v):
        res[k] = v
        print(k, json.dumps({x: y for x, y in v.items() if x != 'runs'} if isinstance(v, dict) else v), flush=True)

    # disk baseline
    f1, f2 = os.path.join(W, 'dd1.bin'), os.path.join(W, 'dd2.bin')
    mb = a.dd_mb
    note('dd_write_1', dict(rep(lambda: dd_write([f1], mb), R), bytes=mb << 20))
    note('dd_write_2', dict(rep(lambda: dd_write([f1, f2], mb // 2), R), bytes=mb << 20))
    dd_write([f1], mb)
    note('dd_read_warm', dict(rep(lambda: (dd_read(f1), dd_read(f1))[1], R), bytes=mb << 20))

    def cold():
        how = evict(f1)
        return {'s': dd_read(f1), 'evict': how}
    note('dd_read_cold', dict(rep(cold, R), bytes=mb << 20))
    dd_read(f1)
    note('sha256', dict(rep(lambda: sha(f1), R), bytes=mb << 20))
    os.remove(f1)
    os.path.exists(f2) and os.remove(f2)
    note('gemm', dict(rep(gemm, R), flops=2 * 2048 ** 3))
    # MPI
    res['allreduce'] = {}
    for n in ranks:
        if n < 2:
            continue
        runs = [run(['mpiexec', '-n', str(n), allr, str(16 << 20), '20']) for _ in range(R)]
        sizes = {}
        for out in runs:
            for m in re.finditer(r'^RESULT allreduce (\d+) (\S+) (\S+)', out, re.M):
                sizes.setdefault(int(m.group(1)), []).append(float(m.group(3)))
        res['allreduce'][n] = {'load': load(), 'median_of_medians': {b: statistics.median(v) for b, v in sizes.items()}}
        print('allreduce', n, json.dumps(res['allreduce'][n]), flush=True)
    # merge kernel, single core
    ld = load()
    out = run([mergeb, '-P', '20000000', '-T', '8', '-reps', str(R), '-ref_reps', '1'])
    res['bench_merge'] = {'P': 20_000_000, 'T': 8, 'load': ld, 'GBs': {m.group(1): float(m.group(2)) for m in re.finditer(r'^RESULT (\S+) (\S+) (\S+)', out, re.M)}}
    print('bench_merge', json.dumps(res['bench_merge']), flush=True)

    # the mapmerge phases at each P
    res['phases'] = []
    Ps = [int(float(x)) for x in a.P.split(',')]
    for P in Ps:
        d = os.path.join(W, f'model_P{P:g}')
        gen = [sys.executable, os.path.join(HERE, '..', 'store', 'gen_hf.py'), d, '--P', str(P), '--T', str(a.T), '--dtype', 'BF16', '--shard-size', '1G']
        ph = {'P_target': P, 'gen': {}}

        def gen_once(w):
            s = float(re.search(r' in ([\d.]+) s', run(gen + ['--writers', str(w)])).group(1))
            subprocess.run(['sync'], check=True)
            return s
        for w in ((1, 2) if P == Ps[0] else (2,)):  # writer scaling at the smallest P only: generating is not the study
            ph['gen'][w] = rep(lambda: gen_once(w), 1)
        cfg = json.load(open(os.path.join(d, 'pretrained', 'model.safetensors.index.json')))
        ph['P'] = cfg['metadata']['total_size'] // 2
        ph['input_bytes'] = (a.T + 1) * cfg['metadata']['total_size']
        ph['files'] = (a.T + 1) * len(set(cfg['weight_map'].values()))
        store = os.path.join(W, f'store_P{P:g}.h5')
        imp = ['import', '-map_pretrained', f'{d}/pretrained', '-map_tasks', ','.join(f't{t}' for t in range(a.T)),
               '-map_task_models', ','.join(f'{d}/task{t}' for t in range(a.T)), '-map_store', store, '-map_store_dtype', 'bf16']
        for n in ranks:
            if n > 2 and P > a.max_p_4:
                continue

            def one_import():
                if os.path.exists(store):
                    os.remove(store)
                subprocess.run(['sync'])
                for t in range(a.T + 1):  # inputs warm, as right after gen_hf
                    sub = 'pretrained' if t == 0 else f'task{t - 1}'
                    for f in os.listdir(os.path.join(d, sub)):
                        dd_read(os.path.join(d, sub, f))
                t0 = time.perf_counter()
                run(['mpiexec', '-n', str(n), mapmerge] + imp)
                subprocess.run(['sync'], check=True)
                return time.perf_counter() - t0
            r = {'P': ph['P'], 'np': n, 'import': rep(one_import, R)}
            out = [run(['mpiexec', '-n', str(n), readb, '-store', store, '-reps', '3']) for _ in range(R)]
            for what in ('read_fresh', 'reread', 'merge', 'touch'):
                v = [float(m.group(1)) for o in out for m in re.finditer(rf'^RESULT {what} (\S+)', o, re.M)]
                r[what] = {'median': statistics.median(v), 'min': min(v), 'n': len(v)}
            outdir = os.path.join(W, f'export_P{P:g}')
            exp = ['export', '-map_store', store, '-map_coeff', ','.join(['0.25'] * a.T), '-map_output', outdir,
                   '-map_io_block_mb', f'{a.block_mb:g}']

            def one_export():
                shutil.rmtree(outdir, ignore_errors=True)
                subprocess.run(['sync'])
                t0 = time.perf_counter()
                out = run(['mpiexec', '-n', str(n), mapmerge] + exp)
                subprocess.run(['sync'], check=True)
                s = time.perf_counter() - t0
                own = re.search(r'^export: wrote .*; ([\d.]+) s$', out, re.M)
                return {'s': s, 'own_s': float(own.group(1)) if own else None,
                        'out_bytes': sum(os.path.getsize(os.path.join(outdir, f)) for f in os.listdir(outdir) if f.endswith('.safetensors'))}
            r['export'] = rep(one_export, R)
            r['export']['out_bytes'] = r['export']['runs'][-1]['out_bytes']
            shutil.rmtree(outdir, ignore_errors=True)
            r['load'] = load()
            r['store_bytes'] = os.path.getsize(store)
            res['phases'].append(r)
            print('phase', json.dumps({k: (v['median'] if isinstance(v, dict) and 'median' in v else v) for k, v in r.items()}), flush=True)
        ph['store_bytes'] = os.path.getsize(store)
        res.setdefault('models', []).append(ph)
        print('model', json.dumps(ph), flush=True)
    res['load_end'] = load()
    with open(os.path.join(W, 'measure.json'), 'w') as f:
        json.dump(res, f, indent=1)
    print(f'wrote {W}/measure.json')


if __name__ == '__main__':
    main()
