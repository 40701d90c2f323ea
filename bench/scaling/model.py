"""Calibrated scaling model of mapmerge (issue 17, item 4): projects import, one merge + evaluation,
a full MAP run, the export and a run with the streamed `command` evaluation to N nodes, compares
with the physical limit, and checks itself against the measurements of this machine (measure.py).

    model.py --measured WORK/measure.json [--eval-stream WORK/eval_stream.json] [--node key=value ...] [--job key=value ...] [--here-cores N]

Each phase is a sum of resource terms, volume / rate (a roofline without overlap: mapmerge's phases
do not overlap I/O and compute). V_in = (T+1) P e_in, V_st = (T+1) P e_st, e = bytes per element:
  import      (V_in + X) / R_read + V_st / R_write + V_in / (min(ranks, ranges) sha_core)
              one pass (docs/storage.md, "Source digests"): each input is read once; its sha256 is
              computed as digests of R = 16 MiB ranges over the bytes the data pass reads, each range by
              one rank, so hashing runs on min(ranks, ranges per checkpoint) cores. X: the bytes read for
              the hash alone, the parts of a range that another rank's data pass reads, at most
              (ranks - 1) R per checkpoint and never more than the checkpoint: X = (T+1) min((ranks-1) R, P e_in)
  store read  V_st / R_read                                (once per run: the model then stays in memory)
  merge       ((T+1) e_st + 4) P / (eta_merge R_mem)       eta_merge = merge kernel / STREAM triad (bench_merge)
  evaluate    2 P tokens T / G  +  2 alpha log2(ranks)     forward passes on each rank's slices of the
              merged model (no redistribution of theta since main's mlp evaluation reads the store's
              layout), the metric allreduce
  MAP run     import + store read + E (merge + evaluate)
  export      V_st / R_read + ((T+1) e_st + 4) P / (eta_merge R_mem) + P e_out / R_write
              streamed (docs/export-streaming.md): the store read block by block, merged, written
  streamed command evaluation (-map_eval_stream), per evaluation:
              T [ V_st / R_read + ((T+1) e_st + 4) P / (eta_merge R_mem) + 4 P / R_write   (read, merge, F32 model file)
                  + 4 P / R_read + 2 P tokens / G ]                                        (the program: reads it, forward passes)
  MAP run, command streamed: import + E x streamed evaluation (no store read, memory O(block))
with R_read = min(N pfs_node_rd, pfs_agg_rd), R_write likewise, R_mem = N mem_bw, G = N gemm.
Calibration: import = start_i + f_import terms and export = start_e + f_export terms, each from two
points (the smallest and the largest P at 1 rank); store read and merge f = measured / modelled at
the largest P at 1 rank. f is mapmerge's overhead over the hardware terms (conversion, finiteness
checks, HDF5, page faults), assumed to carry over to the cluster; the streamed evaluation's
read-merge-write is the export's pipeline and gets f_export, no calibration of its own (--eval-stream
checks that against `mapmerge eval -map_eval_stream` runs of measure_eval_stream.py).
The forward passes are not calibrated (no LLM evaluator runs here): the stated sustained GEMM rate.
The physical limit: read each input once, write the store once, merge at the aggregate memory
bandwidth, forward passes at the GEMM rate, no hashing, no start-up, no software overhead (f = 1).
On this machine the same formulas run with its measured rates: R_read = dd warm read (the inputs and
the store are in the page cache, as right after they were written) x min(ranks, cores), R_write = dd
conv=fdatasync (1 writer, or 2 concurrent writers' aggregate at >= 2 ranks), R_mem = triad x
min(ranks, cores), sha_core = one process's sha256."""
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
# The job: Llama-3-8B's layout (gen_hf.py at --P 8e9), 8 tasks, BF16 checkpoints, BF16 store, BF16
# export; the import's digest ranges of 16 MiB (-map_import_digest_range), the export's and the
# streamed evaluation's blocks of 64 MiB per rank (-map_io_block_mb).
JOB = {'P': 8_030_261_248, 'T': 8, 'e_in': 2, 'e_st': 2, 'e_out': 2, 'E': 90, 'tokens': 65536, 'range': 16 << 20, 'block_mb': 64}
NODES = [1, 10, 100, 1000]
ONE = {'import': 1, 'read': 1, 'merge': 1, 'export': 1}


def terms(M, J, N, ranks, f):
    """seconds per phase (dict) for job J on N nodes of machine M with `ranks` MPI ranks in all;
    f: calibration factors and start-up times (ONE = the hardware terms alone)."""
    P, T = J['P'], J['T']
    used = min(ranks, N * M['cores'])
    rd = min(N * M['pfs_node_rd'] * M.get('rd_scale', lambda r: 1)(used), M['pfs_agg_rd'])
    wr = min(N * M['pfs_node_wr'] * M.get('wr_scale', lambda r: 1)(used), M['pfs_agg_wr'])
    mem = N * M['mem_bw'] * M.get('mem_scale', lambda r: 1)(used)
    vin, vst, ckpt = (T + 1) * P * J['e_in'], (T + 1) * P * J['e_st'], P * J['e_in']
    ranges = math.ceil(ckpt / J['range'])
    extra = 0 if J.get('limit') else (T + 1) * min((used - 1) * J['range'], ckpt)
    sha = vin / (min(used, ranges) * M['sha_core'])
    merge_hw = ((T + 1) * J['e_st'] + 4) * P / (M['eta_merge'] * mem)
    pipe = vst / rd + merge_hw  # read the store (whole or block by block) and merge it
    hw = {'import': (vin + extra) / rd + vst / wr + sha, 'export': pipe + P * J['e_out'] / wr}
    pc = f.get('percore', {})  # the variant: seconds per byte on one core, spread over the ranks

    def over(k, vol, t_hw):
        return pc[k] * vol / used + t_hw if k in pc else f[k] * t_hw
    out = {
        'import': f.get('start_import', 0) + over('import', vin, hw['import']),
        'read': f['read'] * vst / rd,
        'merge': f['merge'] * merge_hw,
        'eval': 2 * P * J['tokens'] * T / (N * M['gemm']) + 2 * M['net_lat'] * math.log2(max(used, 1)),
        'export': f.get('start_export', 0) + over('export', vst, hw['export']),
        'eval_stream': T * (over('export', vst, pipe + 4 * P / wr) + 4 * P / rd + 2 * P * J['tokens'] / (N * M['gemm'])),
    }
    out['merge+eval'] = out['merge'] + out['eval']
    out['run'] = out['import'] + out['read'] + J['E'] * out['merge+eval']
    out['run_stream'] = out['import'] + J['E'] * out['eval_stream']
    out['mem_per_node_GB'] = ((T + 1) * P * J['e_st'] + 4 * P) / N / 1e9  # the store's shards + theta
    out['mem_stream_per_node_GB'] = min(used, M['cores']) * J['block_mb'] * (1 << 20) / 1e9
    return out


def limit(M, J, N):
    m = dict(M, sha_core=float('inf'), eta_merge=1)
    return terms(m, dict(J, limit=True), N, N * M['cores'], ONE)


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


def fmt_f(f):
    pc = f.get('percore', {})
    return ', '.join([f'f_{k} = {v:.3g}' for k, v in f.items() if k not in pc and k != 'percore' and not k.startswith('start')] +
                     [f'{k}: {v * 1e9:.3g} s/GB on one core' for k, v in pc.items()] +
                     [f'{k} = {v:.3g} s' for k, v in f.items() if k.startswith('start')])


def print_machine(m, here):
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


def calibrate(m, here, percore=False):
    """f and start-up times from the 1-rank points: (f, cal, small, raw, raw_small, meas, meas_small);
    percore: import and export as start + hardware terms + c V / ranks instead of start + f terms"""
    ph = m['phases']
    one = [r for r in ph if r['np'] == 1]
    cal, small = max(one, key=lambda r: r['P']), min(one, key=lambda r: r['P'])
    raw, raw_small = terms(here, here_job(m, cal), 1, 1, ONE), terms(here, here_job(m, small), 1, 1, ONE)
    meas = {k: cal[MEAS[k]]['median'] for k in PHASES}
    meas_small = {k: small[MEAS[k]]['median'] for k in PHASES}
    f = {k: meas[k] / raw[k] for k in PHASES}
    for k in ('import', 'export'):  # start + f terms: the smallest and the largest P fix both
        if small is not cal:
            f[k] = (meas[k] - meas_small[k]) / (raw[k] - raw_small[k])
            f['start_' + k] = meas_small[k] - f[k] * raw_small[k]
    if percore and small is not cal:
        f['percore'] = {}
        for k in ('import', 'export'):  # V: the input bytes (import), the store's bytes (export)
            v, v_small = ((m['T'] + 1) * r['P'] * 2 for r in (cal, small))
            c = ((meas[k] - raw[k]) - (meas_small[k] - raw_small[k])) / (v - v_small)
            f['percore'][k] = c
            f['start_' + k] = meas_small[k] - raw_small[k] - c * v_small
    return f, cal, small, raw, raw_small, meas, meas_small


PHASES = ('import', 'read', 'merge', 'export')
MEAS = {'import': 'import', 'read': 'read_fresh', 'merge': 'merge', 'export': 'export'}


def here_job(m, r):
    return dict(JOB, P=r['P'], T=m['T'], block_mb=m.get('block_mb', 64))


def check(m, here, f, cal, small, table=True):
    """the model against every measured point (a table row each if `table`), then the median |error| per phase"""
    out = print if table else (lambda *a, **k: None)
    out('| phase | P | ranks | measured median (min) | model | error | load |\n|---|---|---|---|---|---|---|')
    errs = {}
    for r in m['phases']:
        pred = terms(here, here_job(m, r), 1, r['np'], f)
        for k in PHASES:
            if MEAS[k] not in r:
                continue
            mv = r[MEAS[k]]['median']
            e = (pred[k] - mv) / mv
            used = r is cal or (k in ('import', 'export') and r is small)
            if not used and mv >= 0.01:  # bench_store_read prints 0.1 ms: shorter times are not resolved
                errs.setdefault(k, ([], []))[r['np'] > 1].append(abs(e))
            out(f'| {k}{" (calibration)" if used else ""} | {r["P"]:.3g} | {r["np"]} | {mv:.3f} s ({r[MEAS[k]]["min"]:.3f}) | '
                  f'{pred[k]:.3f} s | {100 * e:+.0f} % | {r["load"]:.1f} |')
    # allreduce: alpha from 8 B, beta from 128-512 KiB at 2 ranks; checked at the other sizes and rank counts
    ar = {int(n): {int(b): s for b, s in v['median_of_medians'].items()} for n, v in m['allreduce'].items()}
    if 2 in ar:
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
                    out(f'| allreduce {b} B{" (calibration)" if used else ""} | - | {n} | {sizes[b] * 1e6:.1f} us | {pred * 1e6:.1f} us | '
                          f'{100 * e:+.0f} % | {m["allreduce"][str(n)]["load"]} |')
    print(f'\nMedian |error|, calibration points and times under 10 ms left out (cores free for the study assumed here: {here["cores"]}):\n')
    print('| phase | fewer ranks (1; allreduce: 2) | more ranks (2-4; allreduce: 4) |\n|---|---|---|')
    for k, (e1, en) in errs.items():
        print(f'| {k} | ' + ' | '.join(f'{100 * statistics.median(v):.0f} % (max {100 * max(v):.0f} %, {len(v)} points)' if v else '-'
                                       for v in (e1, en)) + ' |')
    print()


def command_eval(M, J, ranks, f, stream):
    """one `mapmerge eval` of one coefficient vector with the `command` evaluator on this machine
    (one node), the program reading its model file and computing nothing: streamed, the T model files
    are each merged from the store (the export's pipeline); in memory, the store is read once and
    each file merged from memory and written by the export's writer"""
    P, T = J['P'], J['T']
    t = terms(M, dict(J, tokens=0), 1, ranks, f)
    used = min(ranks, M['cores'])
    rd = M['pfs_node_rd'] * M['rd_scale'](used)
    wr = M['pfs_node_wr'] * M['wr_scale'](used)
    merge_hw = t['merge'] / f['merge']
    if stream:
        return f.get('start_export', 0) + t['eval_stream']
    return f.get('start_export', 0) + t['read'] + T * (f['export'] * (merge_hw + 4 * P / wr) + 4 * P / rd)


def check_eval_stream(path, m, here, f):
    es = json.load(open(path))
    print(f'\n## Check: the command evaluation, streamed and in memory ({path}, measured {es["date"]})\n')
    print('One `mapmerge eval` of one coefficient vector, `command` evaluator reading its F32 model file (read_model.sh), '
          'T = %d; model: start_export + T x (f_export [store read + merge + 4P / R_write] + 4P / R_read) streamed, '
          'start_export + f_read store read + T x (f_export [merge + 4P / R_write] + 4P / R_read) in memory; '
          'no new calibration.\n' % es['T'])
    print('| P | ranks | variant | measured median (min) | model | error | load |\n|---|---|---|---|---|---|---|')
    errs = {}
    for r in es['points']:
        J = dict(JOB, P=r['P'], T=es['T'], block_mb=es['block_mb'])
        pred, mv = command_eval(here, J, r['np'], f, r['stream']), r['eval']['median']
        e = (pred - mv) / mv
        errs.setdefault('streamed' if r['stream'] else 'in memory', ([], []))[r['np'] > 1].append(abs(e))
        print(f'| {r["P"]:.3g} | {r["np"]} | {"streamed" if r["stream"] else "in memory"} | {mv:.3f} s ({r["eval"]["min"]:.3f}) | '
              f'{pred:.3f} s | {100 * e:+.0f} % | {max(x["load"] for x in r["eval"]["runs"]):.1f} |')
    print('\n| command evaluation | 1 rank | 2 ranks |\n|---|---|---|')
    for k, (e1, en) in errs.items():
        print(f'| {k} | ' + ' | '.join(f'{100 * statistics.median(v):.0f} % (max {100 * max(v):.0f} %, {len(v)} points)' if v else '-'
                                       for v in (e1, en)) + ' |')
    print()


def project(node, job, f):
    print('## Projection: P = %.3g (%s), T = %d, %s store, E = %d evaluations of %d tokens per task\n' % (
        job['P'], 'Llama-3-8B layout', job['T'], {2: 'BF16', 4: 'F32'}[int(job['e_st'])], job['E'], job['tokens']))
    print('Stated node: ' + ', '.join(f'{k} = {v:g}' for k, v in node.items()) + '. Calibration from this machine: ' +
          fmt_f(f) + '.\n')
    print('### In-memory evaluation (mlp/analytic evaluators) and the export\n')
    print('| nodes | import | store read | merge | evaluate | merge+evaluate | MAP run (E = %d) | run / limit | export | memory per node |' % job['E'])
    print('|---|---|---|---|---|---|---|---|---|---|')
    rows = []
    for N in NODES:
        t, lim = terms(node, job, N, N * node['cores'], f), limit(node, job, N)
        rows.append((N, t, lim))
        cells = [f'{fmt_s(t[k])} ({fmt_s(lim[k])})' for k in ('import', 'read', 'merge', 'eval', 'merge+eval', 'run')]
        fits = 'fits' if t['mem_per_node_GB'] < node['mem_GB'] else 'DOES NOT FIT'
        print(f'| {N} | ' + ' | '.join(cells) + f' | {t["run"] / lim["run"]:.2f} | {fmt_s(t["export"])} ({fmt_s(lim["export"])}) | '
              f'{t["mem_per_node_GB"]:.3g} GB ({fits}) |')
    print('\n### Streamed `command` evaluation (-map_eval_stream: per evaluation and task, the store read block by block, '
          'merged, written as an F32 model file the program reads)\n')
    print('| nodes | one evaluation (T tasks) | of which the program\'s forward passes | MAP run (E = %d) | run / in-memory run | run / limit | memory per node |' % job['E'])
    print('|---|---|---|---|---|---|---|')
    for N, t, lim in rows:
        fwd = 2 * job['P'] * job['tokens'] * job['T'] / (N * node['gemm'])
        print(f'| {N} | {fmt_s(t["eval_stream"])} ({fmt_s(lim["eval_stream"])}) | {fmt_s(fwd)} | {fmt_s(t["run_stream"])} ({fmt_s(lim["run_stream"])}) | '
              f'{t["run_stream"] / t["run"]:.2f} | {t["run_stream"] / lim["run"]:.2f} | {t["mem_stream_per_node_GB"]:.3g} GB + the program |')
    print('\nEach cell: model (physical limit: one read of every input, one store write, aggregate memory and file-system bandwidth, '
          'GEMM at the stated rate, no hashing, no start-up, no software overhead). "run / limit": against the in-memory run\'s limit. '
          'Streamed memory: cores x -map_io_block_mb per node, plus the evaluation program\'s own (not modelled).\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--measured', required=True, help='measure.json from measure.py')
    ap.add_argument('--node', nargs='*', default=[], help='override a stated node parameter, e.g. pfs_agg_rd=5e12')
    ap.add_argument('--job', nargs='*', default=[], help='override a job parameter, e.g. tokens=1e6 E=30')
    ap.add_argument('--eval-stream', help='eval_stream.json from measure_eval_stream.py: also check the command evaluation')
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
    if 'export' not in m['phases'][0]:
        sys.exit(f'model.py: {a.measured} has no export measurements (measured before the streamed export; re-run measure.py)')
    loads = [r['load'] for k in ('dd_write_1', 'dd_write_2', 'dd_read_warm', 'sha256', 'gemm') for r in m[k]['runs']]
    loads += [r['load'] for r in m['phases']] + [x['load'] for r in m['phases'] for k in ('import', 'export') for x in r[k]['runs']]

    print(f'# mapmerge scaling model (measured {m["date"]} on {m["host"]}: {m["cores"]} cores, {m["cpu"]}, {m["mem_GB"]:.0f} GB)\n')
    print(f'Load average (1 min) during the measurements: {min(loads):.1f} to {max(loads):.1f} (median {statistics.median(loads):.1f}) on {m["cores"]} cores.\n')
    print_machine(m, here)
    f, cal, small, raw, raw_small, meas, meas_small = calibrate(m, here)
    print('\n## Calibration (P = %.3g, 1 rank; the start-ups of import and export from P = %.3g)\n' % (cal['P'], small['P']))
    print('| phase | measured | hardware terms | f = measured / terms |\n|---|---|---|---|')
    for k in PHASES:
        if small is not cal and k in ('import', 'export'):
            print(f'| {k}: start + f terms, at P = {small["P"]:.3g} and {cal["P"]:.3g} | {meas_small[k]:.3f} s, {meas[k]:.3f} s | '
                  f'{raw_small[k]:.4f} s, {raw[k]:.3f} s | f = {f[k]:.2f}, start = {f["start_" + k]:.3f} s |')
        else:
            print(f'| {k} | {meas[k]:.3f} s | {raw[k]:.3f} s | {f[k]:.2f} |')
    print('\n## Check: the model against this machine\'s measurements\n')
    check(m, here, f, cal, small)
    if a.eval_stream:
        check_eval_stream(a.eval_stream, m, here, f)
    project(node, job, f)
    # sensitivity: the same points with the import's and export's overhead as per-core work
    fp = calibrate(m, here, percore=True)[0]
    print('\n## Variant: the import\'s and export\'s overhead as per-core work \n')
    print('import / export = start + hardware terms + c V / ranks (V: input / store bytes; c and start from the same two '
          '1-rank points): the overhead is then CPU work that more ranks share, not a slowdown of the I/O. ' + fmt_f(fp) + '.\n')
    check(m, here, fp, cal, small, table=False)
    print('| nodes | import | export | MAP run (E = %d) | MAP run, command streamed |\n|---|---|---|---|---|' % job['E'])
    for N in NODES:
        t = terms(node, job, N, N * node['cores'], fp)
        print(f'| {N} | {fmt_s(t["import"])} | {fmt_s(t["export"])} | {fmt_s(t["run"])} | {fmt_s(t["run_stream"])} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
