"""Time and memory of one mlp evaluation at LLM-ish size (issue 17 item 3: no redistribution copies).

Model: a synthetic MLP 784-4096-4096-4096-768 (P = 3.99e7 encoder parameters, F32), T = 4 tasks
(10-class heads), 32 eval samples per task (one batch: a forward pass small next to the merge),
made by tests/eval/gen_mlp.py (seeded) and imported once with `mapmerge import`.
Per run: `mpiexec -n N /usr/bin/time -f %M mapmerge eval -map_store store.h5 -map_eval_data ...
-map_coeffs c.csv (K vectors) -log_view [extra]`. Per evaluation: the -log_view event times (max over
ranks) MapMergeApply (merge), MapEvalComm (redistribution), MapEvalLoss (forward + loss) / K; best of
R runs (by their sum). Peak RSS per rank = /usr/bin/time's %M (VmHWM), max over ranks. Also checks
that the output CSVs are the same bytes for every binary and rank count given.
usage: bench_eval_copies.py WORKDIR MAPMERGE[,MAPMERGE2] [--k 4] [--reps 3] [--nps 1,2] [--extra '...']"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1',
           OMPI_MCA_rmaps_base_oversubscribe='1', OPENBLAS_NUM_THREADS='1')
DIMS, T = '784,4096,4096,4096,768', 4


def prepare(d, mm):
    if os.path.exists(f'{d}/store.h5'):
        return
    subprocess.run([sys.executable, os.path.join(HERE, '..', '..', 'tests', 'eval', 'gen_mlp.py'), d, '--dims', DIMS,
                    '--classes', ','.join(['10'] * T), '--samples', ','.join(['32'] * T)], check=True)
    tasks = [f'task{t}' for t in range(T)]
    subprocess.run(['mpiexec', '-n', '1', mm, 'import', '-map_pretrained', f'{d}/pretrained.safetensors', '-map_tasks', ','.join(tasks),
                    '-map_task_models', ','.join(f'{d}/{t}.safetensors' for t in tasks), '-map_private_patterns', 'head.*',
                    '-map_store', f'{d}/store.h5'], env=ENV, check=True, capture_output=True)


def run(d, mm, np_, k, extra):
    with open(f'{d}/c.csv', 'w') as f:
        f.write(','.join(f'task{t}' for t in range(T)) + '\n')
        for i in range(k):
            f.write(','.join(repr(0.1 + 0.05 * i + 0.1 * t) for t in range(T)) + '\n')
    cmd = ['mpiexec', '-n', str(np_), '/usr/bin/time', '-f', 'HWM %M', mm, 'eval', '-map_store', f'{d}/store.h5', '-map_eval_data',
           ','.join(f'{d}/task{t}_val.safetensors' for t in range(T)), '-map_coeffs', f'{d}/c.csv', '-map_output', f'{d}/out.csv',
           '-log_view'] + extra
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    if p.returncode:
        sys.exit(f'failed: {" ".join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}')
    ev = {}
    for e in ('MapMergeApply', 'MapEvalComm', 'MapEvalLoss'):
        m = re.search(rf'^{e}\s+\d+\s+\S+\s+(\S+)', p.stdout, re.M)
        ev[e] = float(m.group(1)) / k if m else 0.0
    hwm = max(int(x) for x in re.findall(r'HWM (\d+)', p.stderr)) / 1024
    return ev, hwm, open(f'{d}/out.csv').read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('workdir')
    ap.add_argument('mapmerge')
    ap.add_argument('--k', type=int, default=4)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--nps', default='1,2')
    ap.add_argument('--extra', default='')
    a = ap.parse_args()
    mms = a.mapmerge.split(',')
    os.makedirs(a.workdir, exist_ok=True)
    prepare(a.workdir, mms[0])
    outs = set()
    print(f'load {open("/proc/loadavg").read().split()[0]}; MLP {DIMS}, T = {T}, K = {a.k}, best of {a.reps}')
    print('| binary | ranks | merge ms | redistribution ms | forward+loss ms | total ms/eval | peak RSS MiB/rank |')
    print('|---|---|---|---|---|---|---|')
    for mm in mms:
        for np_ in (int(x) for x in a.nps.split(',')):
            best = None
            for _ in range(a.reps):
                ev, hwm, out = run(a.workdir, mm, np_, a.k, a.extra.split())
                outs.add(out)
                if best is None or sum(ev.values()) < sum(best[0].values()):
                    best = (ev, hwm)
            ev, hwm = best
            print(f'| {mm} | {np_} | {1e3 * ev["MapMergeApply"]:.0f} | {1e3 * ev["MapEvalComm"]:.0f} | {1e3 * ev["MapEvalLoss"]:.0f} | '
                  f'{1e3 * sum(ev.values()):.0f} | {hwm:.0f} |', flush=True)
    print('outputs: ' + ('identical' if len(outs) == 1 else f'DIFFER ({len(outs)} variants)'))


if __name__ == '__main__':
    main()
