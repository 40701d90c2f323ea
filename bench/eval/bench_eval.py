"""Throughput of the mlp evaluator against a PyTorch forward pass on the same model and data.

Model: 784-200-100-64 MLP (the zoo's shape), 10-class head; one task; N random samples.
mapmerge: `mapmerge eval` on K coefficient vectors with -log_view; the time per evaluation is
the sum of the MapMergeApply, MapEvalComm and MapEvalLoss events (merge + redistribution +
forward + loss; set-up and I/O excluded), best of R runs, at 1 and 2 MPI ranks with one
OpenBLAS thread per rank (-map_eval_groups automatic = one sample group per rank).
PyTorch: merge (pre + c * tau on the encoder) + forward + cross-entropy + argmax on the same
data under torch.no_grad(), 1 and 2 threads, best of K*R calls. The thread count is set with
torch.set_num_threads AND openblas_set_num_threads (Debian's torch runs these linears in OpenBLAS,
whose pool set_num_threads does not cap); the CPU/wall column (process CPU time over wall time of
the best call) shows how many cores PyTorch actually used.
Checks that both give the same correct count (up to samples whose two top logits are within 1e-5
relative, where float rounding may flip the argmax) and loss within 1e-5 (VALID/INVALID).
usage: bench_eval.py MAPMERGE [--n 10000] [--k 5] [--reps 3]"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests', 'eval'))
import stio  # noqa: E402

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1',
           OMPI_MCA_rmaps_base_oversubscribe='1', OPENBLAS_NUM_THREADS='1')


def mapmerge_time(mm, np_, d, k, reps):
    best, out = 1e300, None
    for _ in range(reps):
        p = subprocess.run(['mpiexec', '-n', str(np_), mm, 'eval', '-map_store', f'{d}/store.h5', '-map_eval_data',
                            f'{d}/task0_val.safetensors', '-map_coeffs', f'{d}/c.csv', '-map_output', f'{d}/out.csv',
                            '-log_view'], capture_output=True, text=True, env=ENV, check=True)
        t = 0.0
        for ev in ('MapMergeApply', 'MapEvalComm', 'MapEvalLoss'):
            m = re.search(rf'^{ev}\s+\d+\s+\S+\s+(\S+)', p.stdout, re.M)
            t += float(m.group(1)) if m else 0.0
        best = min(best, t / k)
        out = open(f'{d}/out.csv').read().splitlines()
    return best, out


def openblas():
    """The OpenBLAS that torch loaded (Debian: libblas.so.3 -> openblas-pthread), or None."""
    import ctypes
    for lib in sorted({ln.split()[-1] for ln in open('/proc/self/maps') if re.search(r'/lib(open)?blas[^/]*\.so', ln)}):
        try:
            h = ctypes.CDLL(lib)
            h.openblas_set_num_threads.argtypes = [ctypes.c_int]
            return h
        except (OSError, AttributeError):
            continue
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('mapmerge')
    ap.add_argument('--n', type=int, default=10000)
    ap.add_argument('--k', type=int, default=5)
    ap.add_argument('--reps', type=int, default=3)
    a = ap.parse_args()
    import torch
    blas = openblas()
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, os.path.join(HERE, '..', '..', 'tests', 'eval', 'gen_mlp.py'), d, '--dims',
                        '784,200,100,64', '--classes', '10', '--samples', str(a.n)], check=True)
        subprocess.run(['mpiexec', '-n', '1', a.mapmerge, 'import', '-map_pretrained', f'{d}/pretrained.safetensors', '-map_tasks',
                        'task0', '-map_task_models', f'{d}/task0.safetensors', '-map_store', f'{d}/store.h5'],
                       env=ENV, check=True, capture_output=True)
        cs = [0.1 + 0.8 * i / max(a.k - 1, 1) for i in range(a.k)]
        with open(f'{d}/c.csv', 'w') as f:
            f.write('task0\n' + ''.join(f'{c!r}\n' for c in cs))
        pre, tsk, ev = stio.load(f'{d}/pretrained.safetensors'), stio.load(f'{d}/task0.safetensors'), stio.load(f'{d}/task0_val.safetensors')
        P = {k: torch.from_numpy(v.copy()) for k, v in pre.items()}
        Tk = {k: torch.from_numpy(v.copy()) for k, v in tsk.items()}
        tau = {k: Tk[k] - P[k] for k in P if k.startswith('encoder.')}
        x, y = torch.from_numpy(ev['inputs'].copy()), torch.from_numpy(ev['labels'].copy())

        def torch_eval(c):
            with torch.no_grad():
                h = x
                for l in (0, 2, 4):
                    w = P[f'encoder.{l}.weight'] + c * tau[f'encoder.{l}.weight']
                    b = P[f'encoder.{l}.bias'] + c * tau[f'encoder.{l}.bias']
                    h = torch.relu(torch.nn.functional.linear(h, w, b))
                z = torch.nn.functional.linear(h, Tk['head.weight'], Tk['head.bias'])
                top = z.topk(2, dim=1).values
                near = int(((top[:, 0] - top[:, 1]) <= 1e-5 * top[:, 0].abs()).sum())  # near-ties: argmax may flip
                return float(torch.nn.functional.cross_entropy(z.double(), y)), int((z.argmax(1) == y).sum()), near

        rows = []
        ref = None
        for nt in (1, 2):
            torch.set_num_threads(nt)
            if blas:  # torch's linear goes to OpenBLAS here, whose thread pool set_num_threads does not cap
                blas.openblas_set_num_threads(nt)
            torch_eval(cs[0])
            best, cpu = 1e300, 0.0
            for _ in range(a.reps):
                for c in cs:
                    t, tc = time.perf_counter(), time.process_time()
                    torch_eval(c)
                    if time.perf_counter() - t < best:
                        best, cpu = time.perf_counter() - t, time.process_time() - tc
            ref = [torch_eval(c) for c in cs]
            tm, out = mapmerge_time(a.mapmerge, nt, d, a.k, a.reps)
            valid = True
            for line, (loss, corr, near) in zip(out[1:], ref):
                f = line.split(',')
                ok = abs(round(float(f[1]) * a.n) - corr) <= near and abs(float(f[2]) - loss) <= 1e-5 * loss
                if not ok:
                    print(f'mismatch: mapmerge {line}; torch loss {loss!r} correct {corr}', file=sys.stderr)
                valid &= ok
            rows.append((nt, tm, best, valid, cpu / best))
        print(f'model 784-200-100-64-10, {a.n} samples, {a.k} coefficient vectors, best of {a.reps}')
        print('| ranks / threads | mapmerge mlp ms/eval | samples/s | PyTorch ms/eval | samples/s | PyTorch CPU/wall | ratio | check |')
        print('|---|---|---|---|---|---|---|---|')
        for nt, tm, tt, v, cw in rows:
            print(f'| {nt} | {1e3 * tm:.1f} | {a.n / tm:,.0f} | {1e3 * tt:.1f} | {a.n / tt:,.0f} | {cw:.2f} | {tt / tm:.2f} | '
                  f'{"VALID" if v else "INVALID"} |')
        if not blas:
            print('warning: OpenBLAS not found in this process; PyTorch may use more BLAS threads than the row says')


if __name__ == '__main__':
    main()
