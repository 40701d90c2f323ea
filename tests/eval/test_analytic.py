"""`mapmerge eval -map_eval_type analytic` (no store): -n 1 and -n 2 give the same CSV; the CSV
and HDF5 outputs agree; OUT.csv names the pair; a typo in an option is an error with no output."""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

MAPMERGE = os.environ['MAPMERGE']
MPIEXEC = os.environ.get('MPIEXEC', 'mpiexec')
fails = 0


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print('FAIL:', what)


def mm(np_, *args):
    return subprocess.run([MPIEXEC, '-n', str(np_), MAPMERGE, 'eval'] + list(args), capture_output=True, text=True, timeout=120)


with tempfile.TemporaryDirectory(dir=os.environ.get('MAP_BINARY_DIR')) as d:
    with open(f'{d}/c.csv', 'w') as f:
        f.write('c_b,c_a\n0.5,0.25\n0,1\n0.1,0.7\n')  # columns in another order than -map_tasks
    outs = []
    for np_ in (1, 2):
        p = mm(np_, '-map_eval_type', 'analytic', '-map_analytic_problem', 'quadratic', '-map_tasks', 'a,b',
               '-map_coeffs', f'{d}/c.csv', '-map_output', f'{d}/r{np_}.csv')
        check(p.returncode == 0, f'np {np_}: {p.stdout}{p.stderr}')
        outs.append(open(f'{d}/r{np_}.csv').read())
    check(outs[0] == outs[1], 'np 1 and np 2 differ')
    lines = outs[0].splitlines()
    check(lines[0] == 'c_a,c_b,acc_a,acc_b,loss_a,loss_b', f'header {lines[0]}')
    check(lines[1].startswith('0.25,0.5,'), f'first row {lines[1]}')
    rows = np.array([[float(x) for x in l.split(',')] for l in lines[1:]])
    with h5py.File(f'{d}/r1.h5') as f:
        check(np.array_equal(f['coeffs'][:], rows[:, :2]), 'h5 coeffs != csv')
        check(np.array_equal(f['accuracy'][:], rows[:, 2:4]), 'h5 accuracy != csv')
        check(np.array_equal(f['loss'][:], rows[:, 4:6]), 'h5 loss != csv')
        check([t.decode() for t in f['tasks'][:]] == ['a', 'b'], 'h5 tasks')
    p = mm(1, '-map_eval_type', 'analytic', '-map_tasks', 'a,b', '-map_coeffs', f'{d}/c.csv', '-map_output', f'{d}/typo.csv',
           '-map_eval_timeuot', '3')
    check(p.returncode != 0 and 'map_eval_timeuot' in p.stdout + p.stderr, 'typo not reported')
    check(not os.path.exists(f'{d}/typo.csv') and not os.path.exists(f'{d}/typo.h5'), 'typo run wrote output')
    p = mm(1, '-map_eval_type', 'mlp', '-map_tasks', 'a,b', '-map_coeffs', f'{d}/c.csv', '-map_output', f'{d}/x.csv')
    check(p.returncode != 0 and '-map_store' in p.stdout + p.stderr, 'mlp without a store not reported')
    p = mm(1, '-help')
    check(p.returncode == 0 and '-map_eval_command' in p.stdout and '-map_coeffs' in p.stdout, 'eval -help does not list the options')
print('FAILED' if fails else 'OK')
sys.exit(1 if fails else 0)
