"""The `command` evaluation with and without -map_eval_stream, for model.py --eval-stream (issue 17, item 4).

    measure_eval_stream.py BUILD WORK [--P 5e7,2.5e8] [--T 4] [--ranks 1,2] [--reps 3] [--block-mb 64]

Per model size P (bench/store/gen_hf.py, BF16, T tasks, imported at 1 rank into a BF16 store): one
`mapmerge eval` of one coefficient vector (0.25 each) with the `command` evaluator and the program
read_model.sh (it reads the whole model file, as a real evaluator loads it, and prints a constant
score), at each rank count, `-map_eval_stream` (per task the store read block by block, merged and
written as an F32 model file) and without it (the store read into memory once, merged per task):
wall time with mpiexec, --reps times, the 1-minute load with each. Into WORK/eval_stream.json."""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from measure import load, rep, run  # noqa: E402  (the same environment, repetition and load records)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('build')
    ap.add_argument('work')
    ap.add_argument('--P', default='5e7,2.5e8')
    ap.add_argument('--T', type=int, default=4)
    ap.add_argument('--ranks', default='1,2')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--block-mb', type=float, default=64, help='-map_eval_block_mb')
    a = ap.parse_args()
    W = os.path.abspath(a.work)
    mapmerge = os.path.join(os.path.abspath(a.build), 'mapmerge')
    prog = os.path.join(HERE, 'read_model.sh')
    os.makedirs(W, exist_ok=True)
    res = {'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'T': a.T, 'reps': a.reps, 'block_mb': a.block_mb,
           'load_start': load(), 'points': []}
    for P in (int(float(x)) for x in a.P.split(',')):
        d, store, csv = os.path.join(W, f'model_P{P:g}'), os.path.join(W, f'store_P{P:g}.h5'), os.path.join(W, 'coeffs.csv')
        run([sys.executable, os.path.join(HERE, '..', 'store', 'gen_hf.py'), d, '--P', str(P), '--T', str(a.T), '--dtype', 'BF16',
             '--shard-size', '1G', '--writers', '2'])
        tasks = [f't{t}' for t in range(a.T)]
        if os.path.exists(store):
            os.remove(store)
        run(['mpiexec', '-n', '1', mapmerge, 'import', '-map_pretrained', f'{d}/pretrained', '-map_tasks', ','.join(tasks),
             '-map_task_models', ','.join(f'{d}/task{t}' for t in range(a.T)), '-map_store', store, '-map_store_dtype', 'bf16'])
        subprocess.run(['sync'], check=True)
        Pm = json.load(open(os.path.join(d, 'pretrained', 'model.safetensors.index.json')))['metadata']['total_size'] // 2
        with open(csv, 'w') as f:
            f.write(','.join(tasks) + '\n' + ','.join(['0.25'] * a.T) + '\n')
        for n in (int(x) for x in a.ranks.split(',')):
            for stream in (True, False):
                out = os.path.join(W, 'eval.csv')
                cmd = ['mpiexec', '-n', str(n), mapmerge, 'eval', '-map_store', store, '-map_coeffs', csv, '-map_output', out,
                       '-map_eval_type', 'command', '-map_eval_command', f'/bin/sh {prog} {{model}}', '-map_eval_tmpdir', W]
                if stream:
                    cmd += ['-map_eval_stream', '-map_eval_block_mb', f'{a.block_mb:g}']

                def once():
                    for x in (out, out[:-4] + '.h5'):
                        if os.path.exists(x):
                            os.remove(x)
                    t0 = time.perf_counter()
                    run(cmd)
                    return time.perf_counter() - t0
                r = {'P': Pm, 'np': n, 'stream': stream, 'eval': rep(once, a.reps)}
                res['points'].append(r)
                print('eval', json.dumps({'P': Pm, 'np': n, 'stream': stream, 'median': r['eval']['median'], 'min': r['eval']['min'],
                                          'load': [x['load'] for x in r['eval']['runs']]}), flush=True)
        subprocess.run(['rm', '-rf', d, store])
    res['load_end'] = load()
    with open(os.path.join(W, 'eval_stream.json'), 'w') as f:
        json.dump(res, f, indent=1)
    print(f'wrote {W}/eval_stream.json')


if __name__ == '__main__':
    main()
