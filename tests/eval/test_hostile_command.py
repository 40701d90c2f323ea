"""Hostile external evaluators (issue 12: A4, B14, B15, C21), each a real program run by a real
`mapmerge eval`/`run` under mpiexec:
  tmpdir   the temporary model lives in a private mkdtemp folder (0700) under $TMPDIR, not beside
           the store, and is gone afterwards;
  flood    a program that keeps stdout and stderr full is still killed at -map_eval_timeout;
  escape   a program whose child leaves its process group (setsid, double fork) leaves nothing alive;
  sigterm  SIGTERM to every process of the job step (ranks and program) while the program runs:
           exit 85 (checkpointed), the finished evaluations journaled, no results.
Every case must end within seconds and leave no output behind."""
import glob
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_errors import PY, mm, check, expect_error  # noqa: E402
import test_errors  # noqa: E402

# the program: argv = mode, marker folder, model path; prints the metrics line unless told otherwise
PROGRAM = r'''
import json, os, sys, time
mode, mark, model = sys.argv[1], sys.argv[2], sys.argv[3]
def ok():
    print(json.dumps({"accuracy": 0.5, "loss": 1.0}), flush=True)
if mode == "record":
    with open(os.path.join(mark, "models.txt"), "a") as f:
        f.write(model + "\n")
    ok()
elif mode == "flood":
    line = b"x" * 4095 + b"\n"
    while True:
        os.write(1, line)
        os.write(2, line)
elif mode == "escape":
    if os.fork() == 0:          # child: a new session, then a grandchild that outlives it
        os.setsid()
        if os.fork() == 0:
            with open(os.path.join(mark, "escaped.%d" % os.getpid()), "w") as f:
                f.write("x")
            time.sleep(300)
        os._exit(0)
    time.sleep(0.3)
    ok()
elif mode == "slow":            # the first evaluation (two tasks, two calls) answers, the next waits for the signal
    n = len(os.listdir(os.path.join(mark, "calls")))
    open(os.path.join(mark, "calls", str(n)), "w").close()
    if n >= 2:
        with open(os.path.join(mark, "sleeper"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    ok()
'''


def alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def pids_with(arg):
    """processes whose command line holds arg (the ranks of one run)"""
    out = []
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                with open(f'/proc/{p}/cmdline', 'rb') as f:
                    cl = f.read().split(b'\0')
            except OSError:
                continue
            if arg.encode() in cl and os.environ['MAPMERGE'].encode() in cl:
                out.append(int(p))
    return out


def main():
    with tempfile.TemporaryDirectory(dir=os.environ.get('MAP_BINARY_DIR')) as d:
        subprocess.run([PY, os.path.join(HERE, 'gen_mlp.py'), d, '--dims', '12,8,4', '--classes', '3,3',
                        '--samples', '40,40', '--seed', '5'], check=True)
        tasks = ['task0', 'task1']
        p = mm(1, 'import', '-map_pretrained', f'{d}/pretrained.safetensors', '-map_tasks', ','.join(tasks),
               '-map_task_models', ','.join(f'{d}/{t}.safetensors' for t in tasks), '-map_store', f'{d}/store.h5')
        if not check(p.returncode == 0, 'import failed:\n' + p.stdout + p.stderr):
            sys.exit(1)
        with open(f'{d}/prog.py', 'w') as f:
            f.write(PROGRAM)
        with open(f'{d}/c.csv', 'w') as f:
            f.write('task0,task1\n0.3,0.3\n')
        mark = f'{d}/mark'
        os.makedirs(f'{mark}/calls')
        tmp = f'{d}/nodetmp'
        os.makedirs(tmp)
        os.environ['TMPDIR'] = tmp  # inherited by mpiexec and the ranks
        base = ['eval', '-map_store', f'{d}/store.h5', '-map_coeffs', f'{d}/c.csv', '-map_eval_type', 'command']

        def cmd(mode):
            return f'{PY} {d}/prog.py {mode} {mark} {{model}}'

        # A4: private folder under $TMPDIR, unique names, nothing left
        p = mm(2, *base, '-map_eval_command', cmd('record'), '-map_output', f'{d}/rec.csv')
        if check(p.returncode == 0, 'record eval failed:\n' + p.stdout + p.stderr):
            models = open(f'{mark}/models.txt').read().split()
            check(len(models) == 2 and len(set(models)) == 2, f'one model file per evaluation, got {models}')
            for mpath in models:
                folder = os.path.dirname(mpath)
                check(os.path.dirname(folder) == tmp and os.path.basename(folder).startswith('mapmerge-eval-'),
                      f'model {mpath} is not in a private folder under $TMPDIR={tmp}')
            check(not os.listdir(tmp), f'left in $TMPDIR: {os.listdir(tmp)}')
            check(not glob.glob(f'{d}/.mapmerge-eval*') and not glob.glob(f'{d}/mapmerge-eval*'), 'temporary model beside the store')
            print(f'tmpdir: ok: models in {os.path.dirname(models[0])} (removed afterwards)')
        # the folder is private while it exists: the program checks it sees mode 0700
        probe = (f"{PY} -c 'import os,sys,stat,json; m=os.stat(os.path.dirname(sys.argv[1])).st_mode; "
                 f"print(json.dumps({{\"accuracy\": 1.0 if stat.S_IMODE(m)==0o700 else 0.0, \"loss\": 0}}))' {{model}}")
        p = mm(1, *base, '-map_eval_command', probe, '-map_output', f'{d}/mode.csv')
        if check(p.returncode == 0, 'mode probe failed:\n' + p.stdout + p.stderr):
            row = open(f'{d}/mode.csv').read().splitlines()[1]
            check(',1,' in row or row.split(',')[2] == '1', f'private folder is not mode 0700: {row}')

        # B14: a flood of stdout and stderr is still killed at the timeout
        t0 = time.time()
        expect_error('flood', 2, base + ['-map_eval_command', cmd('flood'), '-map_eval_timeout', '2', '-map_output', f'{d}/bad.csv'],
                     ['task task0', 'did not finish within 2 s'], f'{d}/bad')
        dt = time.time() - t0
        check(dt < 20, f'flood: the run took {dt:.1f} s for a 2-s timeout')
        print(f'flood: ended after {dt:.1f} s (timeout 2 s)')
        check(not os.listdir(tmp), f'flood left in $TMPDIR: {os.listdir(tmp)}')

        # C21: a descendant that left the process group (setsid + double fork) is ended too
        p = mm(1, *base, '-map_eval_command', cmd('escape'), '-map_output', f'{d}/esc.csv')
        check(p.returncode == 0, 'escape eval failed:\n' + p.stdout + p.stderr)
        esc = [int(f.rsplit('.', 1)[1]) for f in glob.glob(f'{mark}/escaped.*')]
        time.sleep(0.2)
        check(len(esc) == 2, f'escape: expected 2 escaped grandchildren, saw {esc}')
        left = [q for q in esc if alive(q)]
        for q in left:
            os.kill(q, signal.SIGKILL)
        check(not left, f'escape: processes outlived the run: {left}')
        print(f'escape: {len(esc)} setsid grandchildren, none alive after the run')

        # B15: SIGTERM to the ranks and the program (a job step signalled as a whole)
        run = f'{d}/runsig'
        args = ['run', '-map_store', f'{d}/store.h5', '-map_output', run, '-map_eval_type', 'command',
                '-map_eval_command', cmd('slow'), '-map_eval_timeout', '100']
        q = subprocess.Popen([test_errors.MPIEXEC, '-n', '2', os.environ['MAPMERGE']] + args, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        t0 = time.time()
        while not os.path.exists(f'{mark}/sleeper') and q.poll() is None and time.time() - t0 < 60:
            time.sleep(0.05)
        time.sleep(0.2)
        ranks = [r for r in pids_with(run) if r != q.pid]
        if check(os.path.exists(f'{mark}/sleeper') and len(ranks) == 2, f'sigterm: the run did not reach its third evaluation '
                                                                         f'(ranks {ranks})'):
            sleeper = int(open(f'{mark}/sleeper').read())
            t1 = time.time()
            for r in ranks + [sleeper]:
                os.kill(r, signal.SIGTERM)
            try:
                out, _ = q.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                q.kill()
                out, _ = q.communicate()
                check(False, 'sigterm: the run did not end within 30 s')
            dt = time.time() - t1
            check(q.returncode == 85, f'sigterm: exit status {q.returncode}, expected 85:\n{out[-2000:]}')
            check('resume with -map_resume' in out, f'sigterm: no resume hint:\n{out[-2000:]}')
            check('error' not in out.lower(), f'sigterm: reported as an error:\n{out[-2000:]}')
            # evaluation lines only: the journal's first line is its binding header (what produced it)
            nj = sum('"kind"' in l and '"kind":"header"' not in l for l in open(f'{run}/journal.jsonl').read().splitlines()) if os.path.exists(f'{run}/journal.jsonl') else -1
            check(nj == 1, f'sigterm: {nj} journaled evaluations, expected the finished one (two tasks, two calls)')
            check(not os.path.exists(f'{run}/results.h5'), 'sigterm: results.h5 written by an interrupted run')
            check(not os.listdir(tmp), f'sigterm left in $TMPDIR: {os.listdir(tmp)}')
            print(f'sigterm: exit {q.returncode} after {dt:.1f} s, {nj} evaluations journaled')
        else:
            q.kill()
            print(q.communicate()[0][-2000:])
    print('FAILED' if test_errors.fails else 'OK')
    sys.exit(1 if test_errors.fails else 0)


if __name__ == '__main__':
    main()
