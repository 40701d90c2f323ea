"""Synthetic model family for the store benchmark: a pretrained checkpoint and T fine-tuned ones,
each a single-file safetensors of P F32 parameters in a few large tensors, plus a small private
head per file (head.weight [10, 4096], head.bias [10]; `head.*` is private by default).

The header is built by hand (8-byte little-endian length + JSON + raw data, docs/design.md §2) and the
data is written in 16M-element chunks, so memory stays at ~P floats (the pretrained vector, kept
to derive the tasks) whatever T is. Task t = pretrained + 1e-3 * uniform noise (seeded per task).
usage: gen_model.py OUTDIR [--P 100000000] [--T 8]"""
import argparse
import json
import os
import struct
import time

import numpy as np

CHUNK = 1 << 24


def layout(P):
    """Tensor shapes summing to exactly P: two large matrices and a vector for the remainder."""
    a = min(8192, int((0.67 * P) ** 0.5))
    b = max(1, (P - a * a) // 8000 // 2)
    shapes = [('layers.0.weight', [a, a]), ('layers.1.weight', [b, 8000])]
    rest = P - a * a - b * 8000
    assert rest > 0
    shapes.append(('layers.1.bias', [rest]))
    return shapes


def write(path, shapes, chunks, head):
    hdr, off = {}, 0
    for name, shape in shapes + [('head.weight', [10, 4096]), ('head.bias', [10])]:
        n = int(np.prod(shape))
        hdr[name] = {'dtype': 'F32', 'shape': shape, 'data_offsets': [off, off + 4 * n]}
        off += 4 * n
    hdr['__metadata__'] = {'format': 'pt'}
    h = json.dumps(hdr, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for c in chunks:
            c.astype('<f4', copy=False).tofile(f)
        head[0].astype('<f4').tofile(f)
        head[1].astype('<f4').tofile(f)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('outdir')
    ap.add_argument('--P', type=int, default=100_000_000)
    ap.add_argument('--T', type=int, default=8)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    shapes = layout(a.P)
    assert sum(int(np.prod(s)) for _, s in shapes) == a.P
    t0 = time.time()
    rng = np.random.default_rng(0)
    pre = np.empty(a.P, dtype=np.float32)
    for j in range(0, a.P, CHUNK):
        pre[j:j + CHUNK] = rng.standard_normal(min(CHUNK, a.P - j), dtype=np.float32)
        pre[j:j + CHUNK] *= np.float32(0.02)

    def head(seed):
        r = np.random.default_rng(1000 + seed)
        return r.standard_normal((10, 4096), dtype=np.float32), r.standard_normal(10, dtype=np.float32)

    write(os.path.join(a.outdir, 'pretrained.safetensors'), shapes, (pre[j:j + CHUNK] for j in range(0, a.P, CHUNK)), head(0))
    for t in range(a.T):
        r = np.random.default_rng(1 + t)

        def chunks():
            for j in range(0, a.P, CHUNK):
                x = r.random(min(CHUNK, a.P - j), dtype=np.float32)
                x -= np.float32(0.5)
                x *= np.float32(2e-3)
                x += pre[j:j + CHUNK]
                yield x
        write(os.path.join(a.outdir, f'task{t}.safetensors'), shapes, chunks(), head(1 + t))
    print(f'gen_model: P = {a.P}, T = {a.T}, tensors {shapes}, {(a.T + 1) * a.P * 4 / 1e9:.2f} GB in {time.time() - t0:.1f} s')


if __name__ == '__main__':
    main()
