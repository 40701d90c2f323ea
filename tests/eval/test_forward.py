"""mlp evaluator: the same bits at np 1, 2 and 4, for any number of sample groups and both
kernels, and within 1e-6 (loss) / equal counts of the double-precision reference.
Runs tests/eval/gen_mlp.py, imports the store once, then test_mlp under mpiexec."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MPIEXEC = os.environ.get('MPIEXEC', 'mpiexec')
PY = os.environ.get('PYTHON', '/usr/bin/python3')
TEST = sys.argv[1]  # path of eval_test_mlp
COEFFS = '0,0,0;0.3,0.2,0.5;1,1,1;-0.5,2,0.1;0.25,0.25,0.25'


def run(np_, args, tag):
    cmd = [MPIEXEC, '-n', str(np_), TEST] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    if p.returncode != 0 or 'FAIL' in p.stdout:
        print(p.stdout[-4000:], p.stderr[-4000:])
        print(f'FAIL: {tag}: exit {p.returncode}')
        sys.exit(1)
    return p.stdout


def main():
    fails = 0
    with tempfile.TemporaryDirectory(dir=os.environ.get('MAP_BINARY_DIR')) as d:
        for cfg, dims, classes, samples in [('small', '20,33,17', '5,7,3', '1000,700,513'),
                                            ('zoo', '784,200,100,64', '10,10,10', '600,300,257')]:
            z = os.path.join(d, cfg)
            subprocess.run([PY, os.path.join(HERE, 'gen_mlp.py'), z, '--dims', dims, '--classes', classes,
                            '--samples', samples], check=True)
            tasks = ['task0', 'task1', 'task2']
            base = ['-map_store', os.path.join(z, 'store.h5'), '-map_tasks', ','.join(tasks), '-map_eval_data',
                    ','.join(os.path.join(z, f'{t}_val.safetensors') for t in tasks), '-coeffs', COEFFS]
            imp = ['-import', '-map_pretrained', os.path.join(z, 'pretrained.safetensors'), '-map_task_models',
                   ','.join(os.path.join(z, f'{t}.safetensors') for t in tasks), '-map_private_patterns', 'head.*']
            outs = {}
            # -map_eval_row_block 8 splits even the small layers between ranks; the default (128)
            # splits the zoo's first layer; the ref kernel is split-independent by construction
            rb = ['-map_eval_row_block', '8']
            runs = [(1, rb, True), (2, rb + ['-map_eval_groups', '1'], True), (4, rb + ['-map_eval_groups', '1'], True),
                    (3, rb + ['-map_eval_groups', '1'], False), (4, rb + ['-map_eval_groups', '2'], False),
                    (1, [], False), (2, ['-map_eval_groups', '1'], False), (2, ['-map_eval_groups', '2'], False),
                    (4, ['-map_eval_groups', '3'], False), (4, [], False),
                    (1, ['-map_eval_kernel', 'ref'], False), (4, ['-map_eval_kernel', 'ref', '-map_eval_groups', '1'], False)]
            for i, (np_, extra, ref) in enumerate(runs):
                o = os.path.join(z, f'out{i}.txt')
                args = (imp if i == 0 else []) + base + extra + ['-out', o] + (['-ref'] if ref else [])
                log = run(np_, args, f'{cfg} np {np_} {extra}')
                for line in log.splitlines():
                    if 'max relative' in line:
                        print(f'{cfg} np {np_} {" ".join(extra)}: {line}')
                outs[(np_, tuple(extra))] = open(o).read()
            classes_ = {}
            for key, text in outs.items():
                kern = 'ref' if 'ref' in key[1] else ('blas, row block 8' if '8' in key[1] else 'blas, row block 128')
                classes_.setdefault(kern, []).append((key, text))
            for kern, lst in classes_.items():
                k0, t0 = lst[0]
                for k, t in lst[1:]:
                    if t != t0:
                        print(f'FAIL: {cfg} {kern}: metrics of {k} differ from {k0}:\n{t}\nvs\n{t0}')
                        fails += 1
                print(f'{cfg} kernel {kern}: {len(lst)} runs (np {sorted(set(k[0] for k, _ in lst))}) give identical bits')
    print('FAILED' if fails else 'OK')
    sys.exit(1 if fails else 0)


if __name__ == '__main__':
    main()
