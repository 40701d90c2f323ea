"""Calibrated scaling model of mapmerge (issue 17, item 4): projects import, one merge + evaluation
and a full MAP run to N nodes, compares with the physical limit, and checks itself against the
measurements of this machine (measure.py).

    model.py --measured WORK/measure.json [--node key=value ...] [--job key=value ...]

Each phase is a sum of resource terms, volume / rate (a roofline without overlap, since mapmerge's
phases do not overlap I/O and compute today):
  import      rho (T+1) P e_in / R_read + (T+1) P e_st / R_write + (T+1) P e_in / (min(ranks, files) sha_core)
              rho = 2: every input read twice (a sha256 pass, then the data pass), as in the binaries the
              calibration measured; rho = 1 and files = inf since the one-pass import (range digests hashed by
              all ranks over the data pass's reads, docs/storage.md): the 'after' scenario below
  store read  (T+1) P e_st / R_read                       (once per run: the model then stays in memory)
  merge       ((T+1) e_st + 4) P / (eta_merge R_mem)      eta_merge = merge kernel / STREAM triad (bench_merge)
  evaluate    2 P tokens T / G  +  6 x 4 P / R_mem  +  4 P / (N net_bw) + alpha (N - 1)  +  2 alpha log2(ranks)
              forward passes; today's redistribution of theta (three copies of it through memory, an
              Alltoallv of 4 P / N bytes per node, one message per peer); the metric allreduce
  MAP run     import + store read + E (merge + evaluate)
with R_read = min(N pfs_node_rd, pfs_agg_rd), R_write likewise, R_mem = N mem_bw, G = N gemm. Each of
import, store read and merge gets one calibration factor f = measured / modelled at the calibration
point (the largest P at 1 rank here; the import also a fixed start-up time, fitted with the smallest
P at 1 rank): f is mapmerge's overhead over the hardware terms (conversion,
finiteness checks, HDF5, page faults), assumed to carry over to the cluster. The evaluation is not
calibrated (no LLM evaluator runs here): its GEMM rate is the stated sustained rate.
The physical limit: read each input once, write the store once, merge at the aggregate memory
bandwidth, forward passes at the GEMM rate, no redistribution, no software overhead (f = 1).
On this machine the same formulas run with its measured rates: R_read = dd warm read (the inputs
and the store are in the page cache, as right after they were written) x min(ranks, cores),
R_write = dd conv=fdatasync (1 writer, or 2 concurrent writers' aggregate at >= 2 ranks), R_mem =
triad x min(ranks, cores), sha_core = one process's sha256."""
import argparse
import json
import math
import statistics
import sys

# The stated cluster node: a current dual-socket CPU node (e.g. 2 x 64-core AMD EPYC Genoa, 12
# DDR5 channels per socket, one 200 Gb/s InfiniBand HDR port) on a mid-size Lustre file system.
NODE = {
    'cores': 128,            # ranks per node
    'mem_GB': 768,           # node memory
    'mem_bw': 600e9,         # STREAM triad per node, B/s (of ~920 GB/s peak)
    'gemm': 6e12,            # sustained FP32 GEMM per node, FLOP/s (of ~10 TFLOP/s peak AVX-512)
    'pfs_node_rd': 10e9,     # parallel file system, one client node: read, B/s
    'pfs_node_wr': 8e9,      # ... write, B/s
    'pfs_agg_rd': 1e12,      # aggregate over all clients: read, B/s
    'pfs_agg_wr': 0.8e12,    # ... write, B/s
    'net_lat': 2e-6,         # MPI latency per message / allreduce step, s
    'net_bw': 25e9,          # injection bandwidth per node, B/s
}
# The job: Llama-3-8B's layout (gen_hf.py at --P 8e9), 8 tasks, BF16 checkpoints and BF16 store.
JOB = {'P': 8_030_261_248, 'T': 8, 'e_in': 2, 'e_st': 2, 'E': 90, 'tokens': 65536, 'shards': 4}
NODES = [1, 10, 100, 1000]


def terms(M, J, N, ranks, f):
    """seconds per phase (dict) for job J on N nodes of machine M with `ranks` MPI ranks in all;
    f: calibration factors (1 = the hardware terms alone)."""
    P, T = J['P'], J['T']
    used = min(ranks, N * M['cores'])
    rd = min(N * M['pfs_node_rd'] * M.get('rd_scale', lambda r: 1)(used), M['pfs_agg_rd'])
    wr = min(N * M['pfs_node_wr'] * M.get('wr_scale', lambda r: 1)(used), M['pfs_agg_wr'])
    mem = N * M['mem_bw'] * M.get('mem_scale', lambda r: 1)(used)
    vin, vst = (T + 1) * P * J['e_in'], (T + 1) * P * J['e_st']
    files = (T + 1) * J['shards']
    out = {
        'import': f.get('start', 0) + f['import'] * (J.get('rho', 2) * vin / rd + vst / wr + vin / (min(used, files) * M['sha_core'])),
        'read': f['read'] * vst / rd,
        'merge': f['merge'] * ((T + 1) * J['e_st'] + 4) * P / (M['eta_merge'] * mem),  # the limit: eta_merge = 1
        'eval': 2 * P * J['tokens'] * T / (N * M['gemm']) + J.get('redist', 1) * (
            6 * 4 * P / mem + (4 * P / (N * M['net_bw']) + M['net_lat'] * (N - 1) if N > 1 else 0)) + 2 * M['net_lat'] * math.log2(max(used, 1)),
    }
    out['merge+eval'] = out['merge'] + out['eval']
    out['run'] = out['import'] + out['read'] + J['E'] * out['merge+eval']
    out['mem_per_node_GB'] = ((T + 1) * P * J['e_st'] + 4 * P * (1 + 4 * J.get('redist', 1))) / N / 1e9
    return out


def limit(M, J, N):
    lim = dict(J, rho=1, redist=0)
    m = dict(M, sha_core=float('inf'), eta_merge=1)
    return terms(m, lim, N, N * M['cores'], {'import': 1, 'read': 1, 'merge': 1})


def here_machine(m, cores=None):
    """this machine's rates from measure.json, in the form terms() takes (one 'node'); cores: the
    cores free for the study (default: all of the machine's)"""
    GB = lambda k: m[k]['bytes'] / m[k]['median']  # noqa: E731
    cores = cores or m['cores']
    bm = m['bench_merge']['GBs']
    w1, w2 = GB('dd_write_1'), GB('dd_write_2')
    return {
        'cores': cores, 'mem_GB': m['mem_GB'],
        'mem_bw': bm['triad'] * 1e9, 'mem_scale': lambda r: min(r, cores),
        'eta_merge': bm['bf16_fast'] / bm['triad'],
        'pfs_node_rd': GB('dd_read_warm'), 'rd_scale': lambda r: min(r, cores),
        'pfs_node_wr': w1, 'wr_scale': lambda r: 1 if r < 2 else w2 / w1,
        'pfs_agg_rd': float('inf'), 'pfs_agg_wr': float('inf'),
        'sha_core': GB('sha256'),
        'gemm': m['gemm']['flops'] / m['gemm']['median'] * cores,
        'net_lat': 0, 'net_bw': float('inf'),
    }


def fmt_s(s):
    if s < 1:
        return f'{s * 1e3:.3g} ms'
    if s < 3600:
        return f'{s:.3g} s'
    return f'{s / 3600:.3g} h'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--measured', required=True, help='measure.json from measure.py')
    ap.add_argument('--node', nargs='*', default=[], help='override a stated node parameter, e.g. pfs_agg_rd=5e12')
    ap.add_argument('--job', nargs='*', default=[], help='override a job parameter, e.g. tokens=1e6 E=30')
    ap.add_argument('--here-cores', type=int, help='cores free for the measured runs on this machine (default: all; '
                    'on a shared, loaded machine 1 tells the model that a second rank gets no core of its own)')
    a = ap.parse_args()
    m = json.load(open(a.measured))
    node, job = dict(NODE), dict(JOB)
    for kv in a.node:
        k, v = kv.split('=')
        node[k] = float(v)
    for kv in a.job:
        k, v = kv.split('=')
        job[k] = float(v)
    here = here_machine(m, a.here_cores)
    node['sha_core'] = here['sha_core']      # the same class of core (SHA-NI) as here
    node['eta_merge'] = here['eta_merge']    # the merge kernel reaches the same fraction of STREAM
    loads = [r['load'] for k in ('dd_write_1', 'dd_write_2', 'dd_read_warm', 'sha256', 'gemm') for r in m[k]['runs']]

    # calibration: the largest P at 1 rank
    ph = m['phases']
    cal = max((r for r in ph if r['np'] == 1), key=lambda r: r['P'])
    hjob = lambda r: dict(JOB, P=r['P'], T=m['T'], shards=next(x['files'] for x in m['models'] if x.get('P') == r['P']) // (m['T'] + 1))  # noqa: E731
    small = min((r for r in ph if r['np'] == 1), key=lambda r: r['P'])
    raw = terms(here, hjob(cal), 1, 1, {'import': 1, 'read': 1, 'merge': 1})
    raw_small = terms(here, hjob(small), 1, 1, {'import': 1, 'read': 1, 'merge': 1})
    meas = {'import': cal['import']['median'], 'read': cal['read_fresh']['median'], 'merge': cal['merge']['median']}
    # import = start + f terms: two points (smallest and largest P at 1 rank) fix both
    f = {k: meas[k] / raw[k] for k in meas}
    if small is not cal:
        f['import'] = (meas['import'] - small['import']['median']) / (raw['import'] - raw_small['import'])
        f['start'] = small['import']['median'] - f['import'] * raw_small['import']

    print(f'# mapmerge scaling model (measured {m["date"]} on {m["host"]}: {m["cores"]} cores, {m["cpu"]}, {m["mem_GB"]:.0f} GB)\n')
    print(f'Load average (1 min) during the measurements: {min(loads + [r["load"] for r in ph]):.1f} to {max(loads + [r["load"] for r in ph]):.1f} '
          f'on {m["cores"]} cores: the machine was shared, so every figure below was taken under load.\n')
    print('## This machine (measured; median of', m['reps'], 'runs, best in brackets)\n')
    print('| quantity | value |\n|---|---|')
    for k, lab in (('dd_write_1', 'dd conv=fdatasync write, 1 writer'), ('dd_write_2', 'dd conv=fdatasync write, 2 concurrent writers (aggregate)'),
                   ('dd_read_warm', 'dd read, page cache (warm)'), ('dd_read_cold', 'dd read, evicted (cold)'), ('sha256', 'sha256, one process (OpenSSL)')):
        print(f'| {lab} | {m[k]["bytes"] / m[k]["median"] / 1e9:.2f} GB/s ({m[k]["bytes"] / m[k]["min"] / 1e9:.2f}) |')
    print(f'| GEMM, numpy float32 n=2048, 1 OpenBLAS thread | {m["gemm"]["flops"] / m["gemm"]["median"] / 1e9:.1f} GFLOP/s ({m["gemm"]["flops"] / m["gemm"]["min"] / 1e9:.1f}) |')
    bm = m['bench_merge']['GBs']
    print(f'| STREAM triad, 1 core (bench_merge) | {bm["triad"]:.2f} GB/s |')
    print(f'| merge kernel BF16 / F32, 1 core (bench_merge, P = 2e7, T = 8) | {bm["bf16_fast"]:.2f} / {bm["f32_fast"]:.2f} GB/s = {here["eta_merge"]:.2f} of the triad (eta_merge) |')
    for n, v in m['allreduce'].items():
        mm = {int(b): s for b, s in v['median_of_medians'].items()}
        big = max(mm)
        print(f'| MPI_Allreduce, {n} ranks: 8 B latency; {big >> 20} MiB bus bandwidth | {mm[8] * 1e6:.1f} us; '
              f'{2 * (int(n) - 1) / int(n) * big / mm[big] / 1e9:.2f} GB/s (load {v["load"]}) |')
    for x in m['models']:
        g = ', '.join(f'{w} writer(s) {x["input_bytes"] / r["median"] / 1e9:.3f} GB/s' for w, r in x['gen'].items())
        print(f'| gen_hf.py P = {x["P"]:.3g} (T = {m["T"]}, BF16, {x["input_bytes"] / 1e9:.2f} GB, {x["files"]} files) | {g} |')

    print('\n## Calibration (P = %.3g, 1 rank; the import\'s start-up from P = %.3g)\n' % (cal['P'], small['P']))
    print('| phase | measured | hardware terms | f = measured / terms |\n|---|---|---|---|')
    for k in meas:
        print(f'| {k} | {meas[k]:.3f} s | {raw[k]:.3f} s | {f[k]:.2f} |')
    if 'start' in f:
        print(f'| import start-up (mpiexec, MPI/PETSc/HDF5 initialisation, index parsing): start = t_small - f t_terms,small | '
              f'{small["import"]["median"]:.3f} s | {raw_small["import"]:.4f} s | start = {f["start"]:.3f} s |')

    print('\n## Check: the model against this machine\'s measurements\n')
    print('| phase | P | ranks | measured median (min) | model | error | load |\n|---|---|---|---|---|---|---|')
    errs = {}
    for r in ph:
        pred = terms(here, hjob(r), 1, r['np'], f)
        for k, mk in (('import', 'import'), ('read', 'read_fresh'), ('merge', 'merge')):
            mv = r[mk]['median']
            e = (pred[k] - mv) / mv
            used = r is cal or (k == 'import' and r is small)
            if not used and mv >= 0.01:  # bench_store_read prints 0.1 ms: shorter times are not resolved
                errs.setdefault(k, ([], []))[r['np'] > 1].append(abs(e))
            cal_mark = ' (calibration)' if used else ''
            print(f'| {k}{cal_mark} | {r["P"]:.3g} | {r["np"]} | {mv:.3f} s ({r[mk]["min"]:.3f}) | {pred[k]:.3f} s | {100 * e:+.0f} % | {r["load"]:.1f} |')
    # allreduce: alpha from 8 B, beta from the largest message at 2 ranks; checked at the other sizes and rank counts
    ar = {int(n): {int(b): s for b, s in v['median_of_medians'].items()} for n, v in m['allreduce'].items()}
    if 2 in ar:
        # 2 ranks: alpha = the 8-byte time; beta (s per byte a ring moves per rank, 2 (n-1)/n of the
        # message) = the median over 128 and 512 KiB. Checked at every other size and rank count
        # (beyond ~1 MiB both ranks must run at once for the copy pipeline: on a loaded machine
        # that costs scheduler time slices, which no alpha-beta model describes).
        alpha = ar[2][8]
        beta = statistics.median((t - alpha) / b for b, t in ar[2].items() if 1 << 17 <= b <= 1 << 19)
        for n, sizes in sorted(ar.items()):
            for b in sorted(sizes):
                if b in (8, 2048, 32768, 524288, 2097152, max(sizes)):
                    pred = alpha * math.log2(n) + 2 * (n - 1) / n * b * beta
                    e = (pred - sizes[b]) / sizes[b]
                    used = n == 2 and (b == 8 or 1 << 17 <= b <= 1 << 19)
                    if not used:
                        errs.setdefault('allreduce', ([], []))[n > 2].append(abs(e))
                    print(f'| allreduce {b} B{" (calibration)" if used else ""} | - | {n} | {sizes[b] * 1e6:.1f} us | {pred * 1e6:.1f} us | '
                          f'{100 * e:+.0f} % | {m["allreduce"][str(n)]["load"]} |')
    print(f'\nMedian |error|, calibration points and times under 10 ms left out (cores free for the study assumed here: {here["cores"]}):\n')
    print('| phase | fewer ranks (1; allreduce: 2) | more ranks (2-4; allreduce: 4) |\n|---|---|---|')
    for k, (e1, en) in errs.items():
        print(f'| {k} | ' + ' | '.join(f'{100 * statistics.median(v):.0f} % (max {100 * max(v):.0f} %, {len(v)} points)' if v else '-'
                                       for v in (e1, en)) + ' |')
    print()

    print('## Projection: P = %.3g (%s), T = %d, %s store, E = %d evaluations of %d tokens per task\n' % (
        job['P'], 'Llama-3-8B layout', job['T'], {2: 'BF16', 4: 'F32'}[int(job['e_st'])], job['E'], job['tokens']))
    print('Stated node: ' + ', '.join(f'{k} = {v:g}' for k, v in node.items()) + '. Calibration from this machine: ' +
          ', '.join(f'f_{k} = {v:.2f}' for k, v in f.items() if k != 'start') + (f', import start-up {f["start"]:.2f} s' if 'start' in f else '') + '.\n')
    print('| nodes | import | store read | merge | evaluate | merge+evaluate | MAP run (E = %d) | run / limit | '
          'MAP run after items 1-3 | memory per node |' % job['E'])
    print('|---|---|---|---|---|---|---|---|---|---|')
    # after issue 17 items 1-3: one read of each input, hashing shared by all ranks (byte ranges), no redistribution
    after = dict(job, rho=1, redist=0, shards=float('inf'))
    for N in NODES:
        t, lim, aft = terms(node, job, N, N * node['cores'], f), limit(node, job, N), terms(node, after, N, N * node['cores'], f)
        cells = [f'{fmt_s(t[k])} ({fmt_s(lim[k])})' for k in ('import', 'read', 'merge', 'eval', 'merge+eval', 'run')]
        fits = 'fits' if t['mem_per_node_GB'] < node['mem_GB'] else 'DOES NOT FIT'
        print(f'| {N} | ' + ' | '.join(cells) + f' | {t["run"] / lim["run"]:.2f} | {fmt_s(aft["run"])} ({aft["run"] / lim["run"]:.2f} of the limit) | '
              f'{t["mem_per_node_GB"]:.3g} GB ({fits}) |')
    print('\nEach cell: model (physical limit: one read of every input, one store write, aggregate memory and file-system bandwidth, '
          'GEMM at the stated rate, no redistribution, no software overhead). "After items 1-3": the same calibration, '
          'one read of each input, sha256 shared by all ranks, no redistribution copies in the evaluation.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
