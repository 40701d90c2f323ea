"""A numpy worker (protocol 1) for the worker-evaluator tests, with failures injected on demand:
--fail MODE --at ID --state FILE makes request ID fail once (the state file remembers it across the
restart): exit (status 3), hang (sleeps), garbage (a non-JSON line), badjson (a '{' line that does
not parse), wrongid, error (an "error" answer), die (SIGKILL to itself); --fail always makes every
request exit; --protocol N says another version in the hello. Metrics: numpy's forward pass of the
zoo MLP (as tests/eval/np_eval.py), so they also check the model and private files."""
import argparse, json, os, signal, sys, time


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stio  # noqa: E402  (tests/stio.py)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "eval"))
import np_eval  # noqa: E402  (tests/eval/np_eval.py: the same numpy forward pass)


def metrics(model, head, data):
    m = dict(stio.load(model))
    m.update(stio.load(head))
    return np_eval.score(m, stio.load(data))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--fail', default='')
    ap.add_argument('--at', type=int, default=2)
    ap.add_argument('--state', default='')
    ap.add_argument('--protocol', type=int, default=1)
    ap.add_argument('--tag', default='')
    ap.add_argument('--sleep', type=float, default=0.0, help='seconds per request (a slow scorer, for bench/worker)')
    a = ap.parse_args()
    print(f'np_worker {os.getpid()} starting, tag {a.tag}, CUDA_VISIBLE_DEVICES={os.environ.get("CUDA_VISIBLE_DEVICES", "")}',
          file=sys.stderr, flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get('mapmerge') == 'shutdown':
            break
        if msg.get('mapmerge') == 'hello':
            out = {'hello': 'np_worker', 'protocol': a.protocol, 'data_per_request': True}  # it scores each request's data file
        else:
            once = a.fail not in ('', 'always') and msg['id'] == a.at and not os.path.exists(a.state)
            if once:
                open(a.state, 'w').close()
            if a.fail == 'always' or once:
                print(f'np_worker: injected failure {a.fail} at request {msg["id"]}', file=sys.stderr, flush=True)
                mode = 'exit' if a.fail == 'always' else a.fail
                if mode == 'exit':
                    sys.exit(3)
                if mode == 'hang':
                    time.sleep(1000)
                if mode == 'die':
                    os.kill(os.getpid(), signal.SIGKILL)
                out = {'garbage': 'this is not json', 'badjson': '{"id": 1, "metrics": ', 'wrongid': {'id': -5, 'metrics': {}},
                       'error': {'id': msg['id'], 'error': 'CUDA out of memory (injected)'}}[mode]
                sys.stdout.write((out if isinstance(out, str) else json.dumps(out)) + '\n')
                sys.stdout.flush()
                continue
            print('chatter on stdout that is not a protocol line', flush=True)
            time.sleep(a.sleep)
            out = {'id': msg['id'], 'metrics': {t['name']: metrics(msg['model'], t['private'], t['data']) for t in msg['tasks']}}
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
