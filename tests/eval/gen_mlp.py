"""Writes a random MLP zoo for the eval tests: pretrained + task models (encoder.<k> Linear layers,
per-task head with its own class count) and per-task eval sets. numpy only, seeded.
usage: gen_mlp.py OUTDIR --dims 20,33,17 --classes 5,7,3 --samples 1000,700,513 [--seed 1]"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stio  # noqa: E402  (tests/stio.py)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('outdir')
    ap.add_argument('--dims', default='20,33,17')
    ap.add_argument('--classes', default='5,7,3')
    ap.add_argument('--samples', default='1000,700,513')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--layer-step', type=int, default=2, help='k of encoder.<k>: 0, step, 2*step, ...')
    a = ap.parse_args()
    dims = [int(x) for x in a.dims.split(',')]
    classes = [int(x) for x in a.classes.split(',')]
    samples = [int(x) for x in a.samples.split(',')]
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.outdir, exist_ok=True)
    pre = {}
    for l in range(len(dims) - 1):
        k = l * a.layer_step
        pre[f'encoder.{k}.weight'] = (rng.standard_normal((dims[l + 1], dims[l])) / np.sqrt(dims[l])).astype(np.float32)
        pre[f'encoder.{k}.bias'] = (0.1 * rng.standard_normal(dims[l + 1])).astype(np.float32)
    H = dims[-1]
    pre_all = dict(pre)
    pre_all['head.weight'] = (rng.standard_normal((classes[0], H)) / np.sqrt(H)).astype(np.float32)
    pre_all['head.bias'] = np.zeros(classes[0], np.float32)
    stio.save(os.path.join(a.outdir, 'pretrained.safetensors'), pre_all)
    names = []
    for t, (C, n) in enumerate(zip(classes, samples)):
        name = f'task{t}'
        names.append(name)
        m = {k: (v + 0.3 * rng.standard_normal(v.shape) / np.sqrt(v.shape[-1])).astype(np.float32) for k, v in pre.items()}
        m['head.weight'] = (rng.standard_normal((C, H)) * 2 / np.sqrt(H)).astype(np.float32)
        m['head.bias'] = (0.1 * rng.standard_normal(C)).astype(np.float32)
        stio.save(os.path.join(a.outdir, f'{name}.safetensors'), m)
        x = rng.standard_normal((n, dims[0])).astype(np.float32)
        y = rng.integers(0, C, n).astype(np.int64 if t % 2 == 0 else np.int32)
        stio.save(os.path.join(a.outdir, f'{name}_val.safetensors'), {'inputs': x, 'labels': y})
    with open(os.path.join(a.outdir, 'tasks.txt'), 'w') as f:
        f.write(','.join(names) + '\n')


if __name__ == '__main__':
    main()
