"""bench/store/gen_hf.py: the sharded checkpoints are byte-identical whatever the number of writer
processes, are valid safetensors/HF folders (read by the hand-written reader tests/stio.py), and
`mapmerge import -map_store_dtype bf16` of them stores exactly their BF16 bits.
usage: gen_hf_test.py WORKDIR MPIEXEC MAPMERGE"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
import stio  # noqa: E402

GEN = os.path.join(HERE, '..', '..', 'bench', 'store', 'gen_hf.py')
T = 2


def fail(msg):
    print('FAIL', msg, flush=True)
    sys.exit(1)


def gen(out, writers, dtype, seed=7):
    subprocess.run([sys.executable, GEN, out, '--P', '3e5', '--T', str(T), '--dtype', dtype, '--writers', str(writers),
                    '--shard-size', '300K', '--seed', str(seed)], check=True)


def digests(root):
    out = {}
    for sub, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(sub, f), 'rb') as fh:
                out[os.path.relpath(os.path.join(sub, f), root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def read_folder(folder):
    """name -> stored array (BF16 as uint16 bits), checking the index against the shards"""
    with open(os.path.join(folder, 'model.safetensors.index.json')) as f:
        index = json.load(f)
    files = sorted(set(index['weight_map'].values()))
    n = len(files)
    if files != [f'model-{k + 1:05d}-of-{n:05d}.safetensors' for k in range(n)]:
        fail(f'{folder}: shard names {files}')
    out, size = {}, 0
    for fname in files:
        for name, a in stio.load(os.path.join(folder, fname)).items():
            if index['weight_map'].get(name) != fname:
                fail(f'{folder}/{fname}: tensor {name} is mapped to {index["weight_map"].get(name)} in the index')
            out[name] = a
            size += a.nbytes
    if set(out) != set(index['weight_map']) or size != index['metadata']['total_size']:
        fail(f'{folder}: {len(out)} tensors / {size} bytes in the shards, index {len(index["weight_map"])} / {index["metadata"]["total_size"]}')
    return out


def main():
    work, mpiexec, mapmerge = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    for dtype, ws in (('BF16', (1, 3)), ('F32', (1, 2))):
        dirs = [os.path.join(work, f'{dtype}_w{w}') for w in ws]
        for d, w in zip(dirs, ws):
            gen(d, w, dtype)
        a, b = digests(dirs[0]), digests(dirs[1])
        nshard = sum(1 for k in a if k.startswith('pretrained/model-'))
        if a != b or not a or nshard < 3:
            fail(f'{dtype}: {ws[0]} writer(s) and {ws[1]} writers give different files ({len(a)} vs {len(b)}, '
                 f'differing {sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))[:5]}) or too few shards ({nshard})')
        print(f'ok {dtype}: {len(a)} files, {nshard} shards per model, identical sha256 with {ws[0]} and {ws[1]} writers')
    # a different seed must change the data (the seed is really used)
    gen(os.path.join(work, 'seed8'), 2, 'BF16', seed=8)
    base = os.path.join(work, 'BF16_w1')
    cfg = json.load(open(os.path.join(base, 'pretrained', 'config.json')))
    pre = read_folder(os.path.join(base, 'pretrained'))
    P = sum(x.size for x in pre.values())
    if cfg['model_type'] != 'llama' or cfg['hidden_size'] != pre['model.embed_tokens.weight'].shape[1] or \
            pre['lm_head.weight'].shape[0] != cfg['vocab_size']:
        fail(f'config.json {cfg} does not match the tensors')
    if not np.all(pre['model.norm.weight'] == 0x3F80):  # bf16 1.0
        fail('pretrained norm weights are not 1')
    w = stio.from_bf16(pre['model.layers.0.mlp.up_proj.weight'])
    if not 0.015 < w.std() < 0.025 or abs(w.mean()) > 0.002:
        fail(f'pretrained weights: mean {w.mean()} std {w.std()}, expected N(0, 0.02)')
    tasks = [read_folder(os.path.join(base, f'task{t}')) for t in range(T)]
    for t, tk in enumerate(tasks):
        # task = bf16(pre + delta), |delta| <= 1e-3, pre itself rounded: two half-ulps of bf16 (2^-9 relative each)
        d = max(float(np.max(np.abs(stio.from_bf16(tk[n]) - stio.from_bf16(pre[n])) / (1e-3 * (1 + 2 ** -7) + 2 ** -7 * np.abs(stio.from_bf16(pre[n])))))
                for n in pre)
        if not 0.3 < d <= 1.0:
            fail(f'task{t}: |task - pretrained| / (1e-3 + 2 bf16 half-ulps) reaches {d}, expected (0.3, 1]')
    if np.array_equal(tasks[0]['lm_head.weight'], tasks[1]['lm_head.weight']):
        fail('task0 and task1 are equal')
    other = read_folder(os.path.join(work, 'seed8', 'pretrained'))
    if np.array_equal(other['lm_head.weight'], pre['lm_head.weight']):
        fail('--seed 8 gives the same weights as --seed 7')
    print(f'ok BF16 folders: P = {P}, {len(pre)} tensors, config matches, tasks within 1e-3 of the pretrained')

    store = os.path.join(work, 'store.h5')
    cmd = [mpiexec, '-n', '2', mapmerge, 'import', '-map_pretrained', os.path.join(base, 'pretrained'),
           '-map_tasks', ','.join(f't{t}' for t in range(T)),
           '-map_task_models', ','.join(os.path.join(base, f'task{t}') for t in range(T)), '-map_store', store, '-map_store_dtype', 'bf16']
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        fail(f'import failed ({p.returncode}): {" ".join(cmd)}\n{p.stdout}\n{p.stderr}')
    import h5py
    with h5py.File(store, 'r') as f:
        names = [x.decode() if isinstance(x, bytes) else x for x in f['tensors/name'][:]]
        if sorted(names) != sorted(pre):
            fail(f'store tensors {names[:4]}... differ from the checkpoint names')
        if f['pretrained'].shape != (P,) or f['task_vectors'].shape != (T, P):
            fail(f'store shapes {f["pretrained"].shape} {f["task_vectors"].shape}, P = {P}')
        flat = np.concatenate([pre[n].ravel() for n in names])
        got = f['pretrained'][:].view(np.uint16)
        if not np.array_equal(got, flat):
            fail(f'/pretrained differs from the checkpoint bits at {np.count_nonzero(got != flat)} of {P} parameters')
    print(f'ok import -n 2 -map_store_dtype bf16: /pretrained holds the checkpoint bits, {len(names)} tensors, P = {P}')


if __name__ == '__main__':
    main()
