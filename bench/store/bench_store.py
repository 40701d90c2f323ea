"""Store I/O benchmark (issue 2, "Performance"): import time, peak memory per rank, collective
HDF5 read of the whole store against dd (cold and warm page cache), export time and memory.

Every mapmerge process runs under `/usr/bin/time -v` (one per MPI rank: mpiexec starts
`sh -c 'exec /usr/bin/time -v -o PREFIX.$OMPI_COMM_WORLD_RANK mapmerge ...'`), with -log_view.
- import: MapImport event (whole import) and wall clock; peak RSS per rank vs the rank's shard.
- store read: `mapmerge export` with all T tasks reads /pretrained and /task_vectors whole (every
  rank its shard, MapStoreReadShard: collective hyperslab reads); its MapStoreRead event (max over
  ranks; it also covers MapStoreOpen, i.e. the index, a few ms) is the time of the store read.
  Against `dd if=store.h5 of=/dev/null bs=16M` on the same file.
- cold = the file's pages evicted from the page cache first (posix_fadvise DONTNEED on the file
  after sync, checked with fincore; falls back to /proc/sys/vm/drop_caches); warm = read just before.
  This is a VM: "cold" means not in the guest's page cache; the host may still cache the disk.
- baseline RSS: the same command on a tiny model (P = 1e5, same T), i.e. the libraries' footprint.
usage: bench_store.py MAPMERGE WORKDIR [--P 100000000] [--T 8] [--warm-reps 2]"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1',
           OMPI_MCA_rmaps_base_oversubscribe='1', OPENBLAS_NUM_THREADS='1')
HERE = os.path.dirname(os.path.abspath(__file__))


def load():
    return open('/proc/loadavg').read().split()[0]


def evict(path):
    """Drops path's pages from the page cache; returns how it was done."""
    subprocess.run(['sync'], check=True)
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    res = resident(path)
    if res is not None and res < 0.01 * os.path.getsize(path):
        return 'fadvise'
    try:
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3\n')
        return 'drop_caches'
    except OSError as e:
        sys.exit(f'cannot evict {path} from the page cache ({res} bytes resident after fadvise, drop_caches: {e})')


def resident(path):
    try:
        out = subprocess.run(['fincore', '-b', '-n', '-o', 'RES', path], capture_output=True, text=True, check=True).stdout
        return int(out.split()[0])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return None


def timev(path):
    t = open(path).read()
    rss = int(re.search(r'Maximum resident set size \(kbytes\): (\d+)', t).group(1))
    w = re.search(r'Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)', t).group(1).split(':')
    wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(w)))
    return rss, wall


def event(log, name):
    m = re.search(rf'^{name}\s+(\d+)\s+\S+\s+(\S+)', log, re.M)
    return float(m.group(2)) if m else None


def mm(np_, mapmerge, args, prefix):
    """Runs mapmerge on np_ ranks, each under /usr/bin/time -v; returns log, wall, [(rss_kB, wall)] per rank."""
    for r in range(np_):
        if os.path.exists(f'{prefix}.{r}'):
            os.remove(f'{prefix}.{r}')
    cmd = ['mpiexec', '-n', str(np_), 'sh', '-c', 'exec /usr/bin/time -v -o "$0.$OMPI_COMM_WORLD_RANK" "$@"', prefix, mapmerge] + args + ['-log_view']
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - t
    if p.returncode:
        sys.exit(f'failed ({p.returncode}): {" ".join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}')
    return p.stdout, wall, [timev(f'{prefix}.{r}') for r in range(np_)]


def dd(path):
    p = subprocess.run(['dd', f'if={path}', 'of=/dev/null', 'bs=16M'], capture_output=True, text=True, check=True)
    m = re.search(r'(\d+) bytes .* copied, ([\d.e+-]+) s', p.stderr)
    return int(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('mapmerge')
    ap.add_argument('workdir')
    ap.add_argument('--P', type=int, default=100_000_000)
    ap.add_argument('--T', type=int, default=8)
    ap.add_argument('--nps', default='1,2')
    ap.add_argument('--warm-reps', type=int, default=2)
    ap.add_argument('--read-bench', help='bench_store_read executable (default: next to MAPMERGE)')
    a = ap.parse_args()
    W, T, P = a.workdir, a.T, a.P
    nps = [int(x) for x in a.nps.split(',')]
    os.makedirs(W, exist_ok=True)
    res = {'P': P, 'T': T, 'load_start': load(), 'import': [], 'export': [], 'dd': {}, 'baseline': {}}
    for name, p in (('model', P), ('tiny', 100_000)):
        stamp = os.path.join(W, name, f'P{p}_T{T}.done')
        if not os.path.exists(stamp):
            subprocess.run([sys.executable, os.path.join(HERE, 'gen_model.py'), os.path.join(W, name), '--P', str(p), '--T', str(T)], check=True)
            open(stamp, 'w').close()

    def imp_args(d, store):
        return ['import', '-map_pretrained', f'{d}/pretrained.safetensors', '-map_tasks', ','.join(f't{t}' for t in range(T)),
                '-map_task_models', ','.join(f'{d}/task{t}.safetensors' for t in range(T)), '-map_store', store]

    def exp_args(store, out):
        return ['export', '-map_store', store, '-map_coeff', ','.join(['0.3'] * T), '-map_output', out]

    store, tstore, out = f'{W}/store.h5', f'{W}/tiny_store.h5', f'{W}/merged.safetensors'
    inputs = [f'{W}/model/pretrained.safetensors'] + [f'{W}/model/task{t}.safetensors' for t in range(T)]
    # baselines: the same commands on the tiny model (what the libraries alone take)
    for np_ in nps:
        _, _, r1 = mm(np_, a.mapmerge, imp_args(f'{W}/tiny', tstore), f'{W}/time.tiny_import.n{np_}')
        _, _, r2 = mm(np_, a.mapmerge, exp_args(tstore, out), f'{W}/time.tiny_export.n{np_}')
        res['baseline'][np_] = {'import_rss_kB': max(x[0] for x in r1), 'export_rss_kB': max(x[0] for x in r2)}

    for np_ in nps:
        for cache in ('cold', 'warm'):
            if os.path.exists(store):
                os.remove(store)
            how = '-'
            if cache == 'cold':
                for f in inputs:
                    how = evict(f)
            else:
                for f in inputs:
                    dd(f)
            ld = load()
            log, wall, ranks = mm(np_, a.mapmerge, imp_args(f'{W}/model', store), f'{W}/time.import.n{np_}.{cache}')
            t = time.perf_counter()
            subprocess.run(['sync'], check=True)
            sync = time.perf_counter() - t
            res['import'].append({'np': np_, 'cache': cache, 'evict': how, 'load': ld, 'wall': wall, 'sync_after': sync,
                                  'MapImport': event(log, 'MapImport'), 'MapStoreRead': event(log, 'MapStoreRead'),
                                  'MapStoreWrite': event(log, 'MapStoreWrite'), 'ranks': ranks,
                                  'line': next((l for l in log.splitlines() if l.startswith('import:')), '')})
            print(json.dumps(res['import'][-1]), flush=True)
    size = os.path.getsize(store)
    res['store_bytes'] = size
    res['vector_bytes'] = (T + 1) * P * 4

    # dd, cold then warm (best of 3)
    how = evict(store)
    n, t = dd(store)
    res['dd']['cold'] = {'bytes': n, 's': t, 'evict': how, 'load': load()}
    best = min(dd(store)[1] for _ in range(3))
    res['dd']['warm'] = {'bytes': n, 's': best, 'load': load()}
    print(json.dumps(res['dd']), flush=True)

    for np_ in nps:
        for cache in ['cold'] + ['warm'] * a.warm_reps:
            how = evict(store) if cache == 'cold' else (dd(store), '-')[1]
            ld = load()
            log, wall, ranks = mm(np_, a.mapmerge, exp_args(store, out), f'{W}/time.export.n{np_}.{cache}')
            res['export'].append({'np': np_, 'cache': cache, 'evict': how, 'load': ld, 'wall': wall, 'MapExport': event(log, 'MapExport'),
                                  'MapStoreRead': event(log, 'MapStoreRead'), 'MapMergeApply': event(log, 'MapMergeApply'),
                                  'ranks': ranks, 'line': next((l for l in log.splitlines() if l.startswith('export:')), '')})
            print(json.dumps(res['export'][-1]), flush=True)
    # the store read alone (bench_store_read): into fresh memory as export does, then re-reads into the same buffers
    rb = a.read_bench or os.path.join(os.path.dirname(a.mapmerge), 'bench_store_read')
    res['read'] = []
    if os.path.exists(rb):
        for np_ in nps:
            for cold in (True, False):
                if not cold:
                    dd(store)
                ld = load()
                p = subprocess.run(['mpiexec', '-n', str(np_), rb, '-store', store, '-reps', '3'] + (['-cold'] if cold else []),
                                   capture_output=True, text=True, env=ENV, check=True)
                r = {}
                for m in re.finditer(r'^RESULT (\S+) ([\d.]+)', p.stdout, re.M):
                    r[m.group(1)] = min(r.get(m.group(1), 1e300), float(m.group(2)))  # re-reads: best of 2
                r.update(np=np_, cold=cold, load=ld)
                res['read'].append(r)
                print(json.dumps(r), flush=True)
    else:
        print(f'{rb} not found: build the bench_store_read target for the read-only figures', flush=True)
    res['load_end'] = load()
    with open(f'{W}/results.json', 'w') as f:
        json.dump(res, f, indent=1)
    report(res)


def report(res):
    P, T = res['P'], res['T']
    GB = 1e9
    print(f'\nP = {P:,}, T = {T}; inputs {(T + 1) * P * 4 / GB:.2f} GB of F32 safetensors; store {res["store_bytes"] / GB:.3f} GB '
          f'(vectors {res["vector_bytes"] / GB:.2f} GB); load average {res["load_start"]} at start, {res["load_end"]} at end\n')
    print('| ranks | input cache | import wall (MapImport) | + sync after | GB/s in (MapImport) | peak RSS per rank | baseline (tiny model) | '
          'above baseline | one vector shard (P/n F32) | load |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for r in res['import']:
        np_ = r['np']
        base = res['baseline'][np_]['import_rss_kB'] / 1024
        rss = [x[0] / 1024 for x in r['ranks']]
        print(f'| {np_} | {r["cache"]} | {r["MapImport"]:.2f} s | {r["sync_after"]:.2f} s | {res["vector_bytes"] / r["MapImport"] / GB:.2f} | '
              f'{" / ".join(f"{x:.0f}" for x in rss)} MB | {base:.0f} MB | {max(rss) - base:.0f} MB | {P / np_ * 4 / 2**20:.0f} MB | {r["load"]} |')
    dc, dw = res['dd']['cold'], res['dd']['warm']
    print(f'\ndd bs=16M of the store ({dc["bytes"] / GB:.3f} GB): cold {dc["s"]:.2f} s = {dc["bytes"] / dc["s"] / GB:.2f} GB/s ({dc["evict"]}), '
          f'warm (best of 3) {dw["s"]:.2f} s = {dw["bytes"] / dw["s"] / GB:.2f} GB/s\n')
    print('| ranks | store cache | MapStoreRead | GB/s | vs dd same cache | vs dd warm | export wall (MapExport) | merge | peak RSS per rank | '
          'above baseline | T+2 shards (pre, tau, theta) | load |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    best = {}
    for r in res['export']:
        k = (r['np'], r['cache'])
        if k not in best or r['MapStoreRead'] < best[k]['MapStoreRead']:
            best[k] = r
    for (np_, cache), r in best.items():
        gbs = res['vector_bytes'] / r['MapStoreRead'] / GB
        dds = res['dd'][cache]
        ddw = res['dd']['warm']
        base = res['baseline'][np_]['export_rss_kB'] / 1024
        rss = [x[0] / 1024 for x in r['ranks']]
        nwarm = sum(1 for x in res['export'] if x['np'] == np_ and x['cache'] == cache)
        print(f'| {np_} | {cache}{f" (best of {nwarm})" if nwarm > 1 else ""} | {r["MapStoreRead"]:.2f} s | {gbs:.2f} | '
              f'{gbs / (dds["bytes"] / dds["s"] / GB):.2f} | {gbs / (ddw["bytes"] / ddw["s"] / GB):.2f} | {r["MapExport"]:.2f} s | '
              f'{r["MapMergeApply"]:.2f} s | {" / ".join(f"{x:.0f}" for x in rss)} MB | {max(rss) - base:.0f} MB | '
              f'{(T + 2) * P / np_ * 4 / 2**20:.0f} MB | {r["load"]} |')
    if res.get('read'):
        ddw = res['dd']['warm']['bytes'] / res['dd']['warm']['s'] / GB
        ddc = res['dd']['cold']['bytes'] / res['dd']['cold']['s'] / GB
        vb = res['vector_bytes'] / GB
        print('\nbench_store_read (MapStoreReadShard of all vectors; GB/s of the (T+1) x P x 4 bytes; ratios to dd warm / dd cold):\n')
        print('| ranks | first read, into fresh memory | re-read into the same memory (best of 2) | vs dd warm | memset of a new buffer of that size, after the reads (recycled pages) | load |')
        print('|---|---|---|---|---|---|')
        for r in res['read']:
            first = r.get('read_fresh_cold', r.get('read_fresh'))
            rr = r['reread']
            print(f'| {r["np"]} | {"cold" if r["cold"] else "warm"}: {first:.3f} s = {vb / first:.2f} GB/s '
                  f'({vb / first / (ddc if r["cold"] else ddw):.2f} of dd {"cold" if r["cold"] else "warm"}) | {rr:.3f} s = {vb / rr:.2f} GB/s | '
                  f'{vb / rr / ddw:.2f} | {r["touch"]:.3f} s = {vb / r["touch"]:.2f} GB/s | {r["load"]} |')


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--report':
        report(json.load(open(sys.argv[2])))
    else:
        main()
