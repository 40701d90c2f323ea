"""mlp evaluator, merged straight into row blocks: the finiteness check covers every merged piece,
including pieces a rank merges only to send them (its shard rows that another rank's row blocks
use). One task-vector element of encoder.2.weight is 3e38 (finite, imports fine); merged at c = 10
it overflows to Inf. At -n 1..3, with one sample group (rows split: the element's shard owner and
row owner differ at -n 3) and automatic groups, the run must fail on every rank naming that tensor
and element, with no output written. Then the same store at c = 0 (the element is not used: the
pretrained value) evaluates with the same bits at every rank count."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import stio  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAPMERGE = os.environ['MAPMERGE']
MPIEXEC = os.environ.get('MPIEXEC', 'mpiexec')
PY = os.environ.get('PYTHON', '/usr/bin/python3')
ROW, COL = 13, 5  # element ROW * in + COL of encoder.2.weight [17, 33]: in the last third of the rows


def main():
    fails = 0
    with tempfile.TemporaryDirectory(dir=os.environ.get('MAP_BINARY_DIR')) as d:
        subprocess.run([PY, os.path.join(HERE, 'gen_mlp.py'), d, '--dims', '20,33,17', '--classes', '5', '--samples', '300'], check=True)
        m = stio.load(f'{d}/task0.safetensors')
        m = {k: v.copy() for k, v in m.items()}
        m['encoder.2.weight'][ROW, COL] = 3e38
        stio.save(f'{d}/task0.safetensors', m)
        p = subprocess.run([MPIEXEC, '-n', '1', MAPMERGE, 'import', '-map_pretrained', f'{d}/pretrained.safetensors', '-map_tasks', 'task0',
                            '-map_task_models', f'{d}/task0.safetensors', '-map_private_patterns', 'head.*', '-map_store', f'{d}/store.h5'],
                           capture_output=True, text=True, timeout=120)
        if p.returncode:
            print(p.stdout, p.stderr)
            print('FAIL: import')
            return 1
        want = f'tensor encoder.2.weight element {ROW * 33 + COL} is Inf'
        refs = {}
        for c in ('10', '0'):
            with open(f'{d}/c{c}.csv', 'w') as f:
                f.write(f'task0\n{c}\n')
            for n in (1, 2, 3):
                for groups in (['-map_eval_groups', '1'], []):
                    out = f'{d}/out-{c}-{n}-{len(groups)}.csv'
                    p = subprocess.run([MPIEXEC, '-n', str(n), MAPMERGE, 'eval', '-map_store', f'{d}/store.h5', '-map_eval_data',
                                        f'{d}/task0_val.safetensors', '-map_coeffs', f'{d}/c{c}.csv', '-map_output', out,
                                        '-map_eval_row_block', '4'] + groups, capture_output=True, text=True, timeout=120)
                    tag = f'c = {c}, -n {n} {" ".join(groups) or "(automatic groups)"}'
                    if c == '10':
                        ok = p.returncode != 0 and want in p.stdout + p.stderr and not os.path.exists(out)
                        print(f'{"ok" if ok else "FAIL"}: {tag}: fails naming "{want}", no output')
                    else:
                        text = open(out).read() if p.returncode == 0 else None
                        refs.setdefault('ref', text)
                        ok = text is not None and text == refs['ref']
                        print(f'{"ok" if ok else "FAIL"}: {tag}: evaluates, the same bytes as -n 1')
                    if not ok:
                        print(p.stdout[-2000:], p.stderr[-2000:])
                        fails += 1
    print('FAILED' if fails else 'PASSED')
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
