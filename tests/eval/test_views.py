"""The evaluator registry and the Views (issue 15): an unknown -map_eval_type is an error that lists
the registered types; -map_eval_view and -map_pareto_view print the objects (stdout or ascii:FILE)
and change no result bit (results.h5 compared with tests/slurm/same_results.py)."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'slurm'))
import same_results  # noqa: E402

MAPMERGE = os.environ['MAPMERGE']
MPIEXEC = os.environ.get('MPIEXEC', 'mpiexec')
fails = 0


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print('FAIL:', what)


def mm(np_, cmd, *args):
    return subprocess.run([MPIEXEC, '-n', str(np_), MAPMERGE, cmd] + [str(a) for a in args], capture_output=True, text=True, timeout=300)


with tempfile.TemporaryDirectory(dir=os.environ.get('MAP_BINARY_DIR')) as d:
    with open(f'{d}/c.csv', 'w') as f:
        f.write('a,b,c\n0.5,0.25,0.1\n0,1,0.3\n')
    common = ['-map_eval_type', 'analytic', '-map_analytic_problem', 'nonconvex', '-map_tasks', 'a,b,c', '-map_coeffs', f'{d}/c.csv']

    p = mm(2, 'eval', *common[:1], 'bogus', *common[2:], '-map_output', f'{d}/bogus.csv')
    out = p.stdout + p.stderr
    check(p.returncode != 0 and '-map_eval_type bogus: unknown evaluator; one of mlp, command, analytic, lm, worker' in out,
          f'unknown type: exit {p.returncode}, message {out[-600:]}')
    check(not os.path.exists(f'{d}/bogus.csv'), 'an unknown type wrote output')

    # the names were matched ignoring case before the registry: still so
    p = mm(1, 'eval', '-map_eval_type', 'ANALYTIC', *common[2:], '-map_output', f'{d}/upper.csv')
    check(p.returncode == 0, f'-map_eval_type ANALYTIC: {p.stdout}{p.stderr}')

    p = mm(2, 'eval', *common, '-map_output', f'{d}/plain.csv')
    check(p.returncode == 0, f'plain eval: {p.stdout}{p.stderr}')
    p = mm(2, 'eval', *common, '-map_output', f'{d}/viewed.csv', '-map_eval_view')
    check(p.returncode == 0, f'eval -map_eval_view: {p.stdout}{p.stderr}')
    for want in ('MapEvaluator: type analytic', 'tasks (3): a, b, c', 'coefficients: 3', 'problem: nonconvex (-map_analytic_problem)'):
        check(p.stdout.count(want) == 1, f'-map_eval_view: "{want}" not printed once (by rank 0) in:\n{p.stdout}')
    check(open(f'{d}/plain.csv').read() == open(f'{d}/viewed.csv').read(), '-map_eval_view changed the CSV')
    p = mm(2, 'eval', *common, '-map_output', f'{d}/file.csv', '-map_eval_view', f'ascii:{d}/eval-view.txt')
    view = open(f'{d}/eval-view.txt').read() if os.path.exists(f'{d}/eval-view.txt') else ''
    check(p.returncode == 0 and 'MapEvaluator: type analytic' in view and 'MapEvaluator' not in p.stdout,
          f'-map_eval_view ascii:FILE: file holds {view!r}, stdout {p.stdout[-400:]}')

    run = ['-map_eval_type', 'analytic', '-map_tasks', 'a,b', '-map_reevaluate', 2]
    p = mm(2, 'run', *run, '-map_output', f'{d}/run-plain')
    check(p.returncode == 0, f'run: {p.stdout}{p.stderr}')
    p = mm(2, 'run', *run, '-map_output', f'{d}/run-viewed', '-map_pareto_view', '-map_eval_view')
    check(p.returncode == 0, f'run -map_pareto_view: {p.stdout}{p.stderr}')
    for want in ('MapPareto: chebyshev scalarisation (smooth max), 2 objectives over 2 coefficients', 'preferences: Das-Dennis lattice',
                 'TAO solves (0 failed)', 'ideal:', 'nadir:', 'MapEvaluator: type analytic'):
        check(p.stdout.count(want) == 1, f'run -map_pareto_view: "{want}" not printed once in:\n{p.stdout}')
    if fails == 0:
        for m in same_results.differences(f'{d}/run-plain/results.h5', f'{d}/run-viewed/results.h5'):
            check(False, f'-map_pareto_view changed results.h5: {m}')
print('FAILED' if fails else 'OK')
