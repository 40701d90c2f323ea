"""`mapmerge eval` end to end: the command evaluator with a real external program (np_eval.py)
against the mlp evaluator, and clean failures: bad commands (not found, crash, garbage output,
hang past the timeout) and bad eval data (input width, label range, NaN, label dtype, count of
eval sets, missing head). Every failure must exit non-zero, name the task or file, and leave no
output and no temporary model behind."""
import csv
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import stio  # noqa: E402  (tests/stio.py)

MAPMERGE = os.environ['MAPMERGE']
MPIEXEC = os.environ.get('MPIEXEC', 'mpiexec')
PY = os.environ.get('PYTHON', '/usr/bin/python3')
fails = 0


def mm(np_, *args, timeout=120):
    return subprocess.run([MPIEXEC, '-n', str(np_), MAPMERGE] + list(args), capture_output=True, text=True, timeout=timeout)


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print('FAIL:', what)
    return cond


def expect_error(tag, np_, args, needles, out, tmpdir=None):
    p = mm(np_, *args)
    text = p.stdout + p.stderr
    ok = check(p.returncode != 0, f'{tag}: exit status {p.returncode}, expected non-zero')
    for n in needles:
        ok &= check(n in text, f'{tag}: message lacks "{n}":\n{text[-2500:]}')
    left = [f for f in glob.glob(out + '*') + glob.glob(os.path.join(os.path.dirname(out), '.*tmp*'))]
    ok &= check(not left, f'{tag}: left files behind: {left}')
    if tmpdir:
        t = glob.glob(os.path.join(tmpdir, '.mapmerge-eval-*')) + glob.glob(os.path.join(tmpdir, 'mapmerge-eval-*'))
        ok &= check(not t, f'{tag}: temporary model left: {t}')
    msg = [l for l in text.splitlines() if 'task' in l or 'eval set' in l or '-map_' in l]
    print(f'{tag}: {"ok" if ok else "BAD"}: {msg[0].strip() if msg else text.strip()[:200]}')


def main():
    with tempfile.TemporaryDirectory(dir=os.environ.get('MAP_BINARY_DIR')) as d:
        subprocess.run([PY, os.path.join(HERE, 'gen_mlp.py'), d, '--dims', '30,25,12', '--classes', '4,6,3',
                        '--samples', '400,300,200', '--seed', '3'], check=True)
        tasks = ['task0', 'task1', 'task2']
        p = mm(2, 'import', '-map_pretrained', f'{d}/pretrained.safetensors', '-map_tasks', ','.join(tasks),
               '-map_task_models', ','.join(f'{d}/{t}.safetensors' for t in tasks), '-map_store', f'{d}/store.h5')
        if not check(p.returncode == 0, 'import failed:\n' + p.stdout + p.stderr):
            sys.exit(1)
        with open(f'{d}/c.csv', 'w') as f:
            f.write('task0,task1,task2\n0.3,0.3,0.3\n1,0,0.5\n')
        data = ','.join(f'{d}/{t}_val.safetensors' for t in tasks)
        base = ['eval', '-map_store', f'{d}/store.h5', '-map_coeffs', f'{d}/c.csv']

        # reference: the built-in mlp
        p = mm(2, *base, '-map_eval_data', data, '-map_output', f'{d}/mlp.csv')
        check(p.returncode == 0, 'mlp eval failed:\n' + p.stdout + p.stderr)
        mlp = list(csv.DictReader(open(f'{d}/mlp.csv')))

        # a task subset in another order, with one eval set per store task (picked by name)
        with open(f'{d}/c0.csv', 'w') as f:
            f.write('task0,task1,task2\n0.3,0,0.6\n')
        p = mm(1, 'eval', '-map_store', f'{d}/store.h5', '-map_coeffs', f'{d}/c0.csv', '-map_eval_data', data, '-map_output', f'{d}/all.csv')
        check(p.returncode == 0, 'eval of all tasks failed:\n' + p.stdout + p.stderr)
        p = mm(2, 'eval', '-map_store', f'{d}/store.h5', '-map_coeffs', f'{d}/c0.csv', '-map_tasks', 'task2,task0', '-map_eval_data', data,
               '-map_output', f'{d}/sub.csv')
        if check(p.returncode == 0, 'eval of a task subset failed:\n' + p.stdout + p.stderr):
            a = list(csv.DictReader(open(f'{d}/all.csv')))[0]
            b = list(csv.DictReader(open(f'{d}/sub.csv')))[0]
            check(list(b) == ['c_task2', 'c_task0', 'acc_task2', 'acc_task0', 'loss_task2', 'loss_task0'], f'subset columns {list(b)}')
            for k in b:
                check(abs(float(a[k]) - float(b[k])) <= 1e-6 * max(abs(float(a[k])), 1e-300), f'subset {k}: {b[k]} vs {a[k]}')
            print('task subset task2,task0 (eval sets picked from the 3 store tasks): matches the full evaluation')

        # the command evaluator with a real program, at -n 2 (rank-parallel model write)
        cmd = f'{PY} {HERE}/np_eval.py --model {{model}} --task {{task}} --data {{data}}'
        p = mm(2, *base, '-map_eval_data', data, '-map_eval_type', 'command', '-map_eval_command', cmd,
               '-map_output', f'{d}/cmd.csv', '-map_eval_tmpdir', d)
        if check(p.returncode == 0, 'command eval failed:\n' + p.stdout + p.stderr):
            cmdr = list(csv.DictReader(open(f'{d}/cmd.csv')))
            worst = 0
            for a, b in zip(mlp, cmdr):
                for k in a:
                    if k.startswith('acc_') or k.startswith('loss_'):
                        rel = abs(float(a[k]) - float(b[k])) / max(abs(float(a[k])), 1e-300)
                        worst = max(worst, rel)
                        check(rel <= 1e-5, f'command vs mlp {k}: {b[k]} vs {a[k]}')
            print(f'command evaluator (np_eval.py) vs mlp: max relative difference {worst:.3g}')
        check(not glob.glob(f'{d}/.mapmerge-eval-*') and not glob.glob(f'{d}/mapmerge-eval-*'), 'temporary model files left after a good run')

        # bad commands
        bad = [('not found', 'no-such-program-xyz {model}', ['task task0', 'no-such-program-xyz', 'No such file']),
               ('crash', f"{PY} -c 'import sys; sys.stderr.write(\"boom on purpose\\n\"); sys.exit(3)' {{model}}",
                ['task task0', 'exit status 3', 'boom on purpose']),
               ('garbage', f"{PY} -c 'print(\"hello, no json here\")' {{model}}", ['task task0', 'not a JSON object', 'hello, no json']),
               ('missing key', f"{PY} -c 'print(\"{{\\\"accuracy\\\": 0.5}}\")' {{model}}", ['task task0', 'no "loss"']),
               ('hang', f"{PY} -c 'import time; time.sleep(60)' {{model}}", ['task task0', 'did not finish within 2 s'])]
        for tag, c, needles in bad:
            extra = ['-map_eval_timeout', '2'] if tag == 'hang' else []
            expect_error('command ' + tag, 2, base + ['-map_eval_type', 'command', '-map_eval_command', c, '-map_eval_tmpdir', d,
                                                      '-map_output', f'{d}/bad.csv'] + extra, needles, f'{d}/bad', tmpdir=d)

        # bad eval data
        rng = np.random.default_rng(0)
        stio.save(f'{d}/wide.safetensors', {'inputs': rng.standard_normal((50, 31)).astype(np.float32),
                                            'labels': np.zeros(50, np.int64)})
        lab = np.zeros(50, np.int64)
        lab[17] = 6
        stio.save(f'{d}/range.safetensors', {'inputs': rng.standard_normal((50, 30)).astype(np.float32), 'labels': lab})
        x = rng.standard_normal((50, 30)).astype(np.float32)
        x[33, 5] = np.nan
        stio.save(f'{d}/nan.safetensors', {'inputs': x, 'labels': np.zeros(50, np.int64)})
        stio.save(f'{d}/fl.safetensors', {'inputs': rng.standard_normal((50, 30)).astype(np.float32),
                                          'labels': np.zeros(50, np.float32)})
        v = [f'{d}/task0_val.safetensors', f'{d}/task1_val.safetensors', f'{d}/task2_val.safetensors']
        cases = [('input width', [f'{d}/wide.safetensors'] + v[1:], ['wide.safetensors', '31 features', 'takes 30']),
                 ('label range', v[:1] + [f'{d}/range.safetensors'] + v[2:], ['range.safetensors', 'labels[17] = 6', '[0, 6)']),
                 ('NaN input', v[:2] + [f'{d}/nan.safetensors'], ['nan.safetensors', 'inputs[33][5]', 'NaN']),
                 ('label dtype', [f'{d}/fl.safetensors'] + v[1:], ['fl.safetensors', 'I64 or I32']),
                 ('eval set count', v[:2], ['2 eval set(s)', '3 tasks'])]
        for tag, files, needles in cases:
            for np_ in (1, 3):
                expect_error(f'{tag} np{np_}', np_, base + ['-map_eval_data', ','.join(files), '-map_output', f'{d}/bad.csv'],
                             needles, f'{d}/bad')

        # a store without private heads (heads merged): the task is named
        subprocess.run([PY, os.path.join(HERE, 'gen_mlp.py'), f'{d}/same', '--dims', '30,25,12', '--classes', '4,4,4',
                        '--samples', '40,30,20'], check=True)
        p = mm(1, 'import', '-map_pretrained', f'{d}/same/pretrained.safetensors', '-map_tasks', ','.join(tasks),
               '-map_task_models', ','.join(f'{d}/same/{t}.safetensors' for t in tasks), '-map_store', f'{d}/same/store.h5',
               '-map_private_patterns', 'head.bias')
        check(p.returncode == 0, 'import (head.bias private) failed:\n' + p.stdout + p.stderr)
        expect_error('missing head', 2, ['eval', '-map_store', f'{d}/same/store.h5', '-map_coeffs', f'{d}/c.csv', '-map_eval_data',
                                         ','.join(f'{d}/same/{t}_val.safetensors' for t in tasks), '-map_output', f'{d}/bad.csv'],
                     ['task task0', 'head.weight'], f'{d}/bad')
    print('FAILED' if fails else 'OK')
    sys.exit(1 if fails else 0)


if __name__ == '__main__':
    main()
