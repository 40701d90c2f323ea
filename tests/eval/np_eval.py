"""External evaluator for `-map_eval_type command` tests: a numpy forward pass of the MLP in the
safetensors file it is given (encoder.<k>.weight/bias + ReLU, head.weight/bias, softmax CE).
usage: np_eval.py --model M.safetensors --task NAME --data EVAL.safetensors
Prints some chatter, then the metrics as JSON on the last line (as lm-eval-like tools do)."""
import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stio  # noqa: E402  (tests/stio.py)


def score(m, d):
    """accuracy, loss and count of the MLP state dict m on the eval set d, in float64"""
    ks = sorted(int(re.match(r'encoder\.(\d+)\.weight$', n).group(1)) for n in m if re.match(r'encoder\.(\d+)\.weight$', n))
    h = d['inputs'].astype(np.float64)
    for k in ks:
        h = np.maximum(h @ m[f'encoder.{k}.weight'].astype(np.float64).T + m[f'encoder.{k}.bias'], 0)
    z = h @ m['head.weight'].astype(np.float64).T + m['head.bias']
    y = d['labels'].astype(np.int64)
    mx = z.max(axis=1, keepdims=True)
    lse = mx[:, 0] + np.log(np.exp(z - mx).sum(axis=1))
    return {'accuracy': float(np.mean(z.argmax(axis=1) == y)), 'loss': float(np.mean(lse - z[np.arange(len(y)), y])), 'count': int(len(y))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--task', required=True)
    ap.add_argument('--data', required=True)
    a = ap.parse_args()
    r = score(stio.load(a.model), stio.load(a.data))
    print(f'evaluating task {a.task} on {r["count"]} samples')
    print(json.dumps({'task': a.task, 'accuracy': r['accuracy'], 'loss': r['loss'], 'count': r['count']}))


if __name__ == '__main__':
    main()
