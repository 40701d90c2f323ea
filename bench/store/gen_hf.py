"""Synthetic LLM-scale model family as Hugging Face sharded checkpoints, written in parallel.

    gen_hf.py OUTDIR [--P 8e9] [--T 8] [--dtype BF16|F32] [--writers N] [--seed 0] [--shard-size 5G]

OUTDIR/pretrained/ and OUTDIR/task0 .. task{T-1}/, each a folder as `save_pretrained` writes it:
config.json (a LlamaConfig), model-0000k-of-0000n.safetensors, model.safetensors.index.json.
The layout is Llama-3-8B's (grouped-query attention with 4 query heads per KV head, SwiGLU MLP of
3.5 d, RMSNorm weights, untied lm_head, head_dim 128 (64 below d = 1024 or if d/128 is not whole), the vocabulary scaled with d)
with the hidden size d (a multiple of 64) closest to --P, then the depth L closest at that d: at
P = 8e9, d = 4096, L = 32, V = 128256, i.e. Llama-3-8B's 8,030,261,248 parameters.

Values: pretrained weights N(0, 0.02), norms 1; task t = pretrained + 1e-3 * U(-1, 1). Every
chunk of CHUNK elements of every tensor draws from its own generator, seeded by (seed, model,
tensor, chunk), so any process can write any shard file and the bytes do not depend on --writers
or on which process wrote what. Each writer process streams one shard file at a time in chunks
(memory ~ a few CHUNKs), to a temporary name renamed when complete; the index and config are
written last, so a folder that has an index is complete.
usage as a library: layout(P) gives the tensors and the config (see bench/scaling/model.py)."""
import argparse
import json
import multiprocessing
import os
import struct
import sys
import time

import numpy as np

CHUNK = 1 << 20  # elements per generator; fixed, so the bytes never depend on the writers
LLAMA3_8B = dict(d=4096, vocab=128256)


def dims(d):
    """Llama-3-8B's proportions at hidden size d (a multiple of 64)."""
    hd = 128 if d >= 1024 and d % 128 == 0 else 64
    heads = d // hd
    kv = max(k for k in range(1, max(1, heads // 4) + 1) if heads % k == 0)  # GQA groups must be equal
    f = 64 * round(3.5 * d / 64)
    L = max(1, round(d / 128))
    V = max(256, 64 * round(LLAMA3_8B['vocab'] * d / LLAMA3_8B['d'] / 64)) if d != LLAMA3_8B['d'] else LLAMA3_8B['vocab']
    return dict(d=d, hd=hd, heads=heads, kv=kv, f=f, L=L, V=V)


def tensors(m):
    """[(name, shape)] in the order transformers' state_dict lists them."""
    d, f, kvd = m['d'], m['f'], m['kv'] * m['hd']
    out = [('model.embed_tokens.weight', [m['V'], d])]
    for i in range(m['L']):
        p = f'model.layers.{i}.'
        out += [(p + 'self_attn.q_proj.weight', [d, d]), (p + 'self_attn.k_proj.weight', [kvd, d]),
                (p + 'self_attn.v_proj.weight', [kvd, d]), (p + 'self_attn.o_proj.weight', [d, d]),
                (p + 'mlp.gate_proj.weight', [f, d]), (p + 'mlp.up_proj.weight', [f, d]), (p + 'mlp.down_proj.weight', [d, f]),
                (p + 'input_layernorm.weight', [d]), (p + 'post_attention_layernorm.weight', [d])]
    return out + [('model.norm.weight', [d]), ('lm_head.weight', [m['V'], d])]


def count(ts):
    return sum(int(np.prod(s)) for _, s in ts)


def layout(P):
    """(dims, tensors) of the family member closest to P parameters: the hidden size d whose
    Llama-3 proportions come closest, then the depth L that comes closest at that d (at least 1)."""
    d = min(range(64, 16384 + 1, 64), key=lambda d: abs(count(tensors(dims(d))) - P))
    m = dims(d)
    m1 = dict(m, L=1)
    per_layer = count(tensors(dict(m, L=2))) - count(tensors(m1))
    m['L'] = max(1, round((P - (count(tensors(m1)) - per_layer)) / per_layer))
    return m, tensors(m)


def config(m, dtype, seed, task):
    return {'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'hidden_size': m['d'], 'intermediate_size': m['f'],
            'num_hidden_layers': m['L'], 'num_attention_heads': m['heads'], 'num_key_value_heads': m['kv'], 'head_dim': m['hd'],
            'vocab_size': m['V'], 'max_position_embeddings': 8192, 'rms_norm_eps': 1e-5, 'rope_theta': 500000.0,
            'hidden_act': 'silu', 'tie_word_embeddings': False, 'torch_dtype': {'BF16': 'bfloat16', 'F32': 'float32'}[dtype],
            'mapmerge_synthetic': {'generator': 'bench/store/gen_hf.py', 'seed': seed, 'task': task,
                                   'values': 'pretrained N(0,0.02) (norms 1); task = pretrained + 1e-3*U(-1,1)'}}


def shard_plan(ts, esize, limit):
    """HF's greedy split: tensors in order, a new shard when the next one would pass limit bytes."""
    shards, cur, size = [], [], 0
    for t in ts:
        b = int(np.prod(t[1])) * esize
        if cur and size + b > limit:
            shards.append(cur)
            cur, size = [], 0
        cur.append(t)
        size += b
    return shards + [cur]


def chunk_values(seed, model, tidx, c, n, is_norm):
    """float32 values of chunk c (n elements) of tensor tidx of model (0 = pretrained, 1 + t = task t)."""
    if is_norm:
        x = np.ones(n, np.float32)
    else:
        x = np.random.Generator(np.random.PCG64([seed, 0, tidx, c])).standard_normal(n, dtype=np.float32)
        x *= np.float32(0.02)
    if model > 0:
        y = np.random.Generator(np.random.PCG64([seed, model, tidx, c])).random(n, dtype=np.float32)
        y -= np.float32(0.5)
        y *= np.float32(2e-3)
        x += y
    return x


def to_bf16(x):
    """float32 -> bfloat16 bits, round to nearest even (the values are finite)."""
    u = x.view(np.uint32)
    return ((u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))) >> np.uint32(16)).astype('<u2')


def write_shard(job):
    """One shard file, streamed chunk by chunk; returns (path, bytes, seconds)."""
    path, entries, dtype, seed, model = job
    t0 = time.perf_counter()
    esize = 2 if dtype == 'BF16' else 4
    hdr, off = {'__metadata__': {'format': 'pt'}}, 0
    for name, shape, _ in entries:
        n = int(np.prod(shape)) * esize
        hdr[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [off, off + n]}
        off += n
    h = json.dumps(hdr, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for name, shape, tidx in entries:
            n = int(np.prod(shape))
            for c, j in enumerate(range(0, n, CHUNK)):
                x = chunk_values(seed, model, tidx, c, min(CHUNK, n - j), name.endswith('norm.weight'))
                (to_bf16(x) if dtype == 'BF16' else x.astype('<f4', copy=False)).tofile(f)
    os.replace(tmp, path)
    return path, 8 + len(h) + off, time.perf_counter() - t0


def parse_size(s):
    s = str(s).strip()
    mult = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}.get(s[-1:].upper(), 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('outdir')
    ap.add_argument('--P', type=float, default=8e9, help='target parameter count: the family member closest to it')
    ap.add_argument('--T', type=int, default=8, help='task (fine-tuned) checkpoints')
    ap.add_argument('--dtype', choices=['BF16', 'F32'], default='BF16')
    ap.add_argument('--writers', type=int, default=os.cpu_count(), help='writer processes')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--shard-size', default='5G', help='maximum bytes per shard file (suffix K, M, G), as save_pretrained max_shard_size')
    a = ap.parse_args()
    m, ts = layout(int(a.P))
    P, esize, limit = count(ts), 2 if a.dtype == 'BF16' else 4, parse_size(a.shard_size)
    tidx = {name: i for i, (name, _) in enumerate(ts)}
    shards = shard_plan(ts, esize, limit)
    n = len(shards)
    folders = ['pretrained'] + [f'task{t}' for t in range(a.T)]
    jobs = []
    for model, sub in enumerate(folders):
        os.makedirs(os.path.join(a.outdir, sub), exist_ok=True)
        for k, sh in enumerate(shards):
            jobs.append((os.path.join(a.outdir, sub, f'model-{k + 1:05d}-of-{n:05d}.safetensors'),
                         [(name, shape, tidx[name]) for name, shape in sh], a.dtype, a.seed, model))
    t0 = time.perf_counter()
    # largest files first, so the writers finish together
    order = sorted(range(len(jobs)), key=lambda i: -sum(int(np.prod(s)) for _, s, _ in jobs[i][1]))
    if a.writers > 1:
        with multiprocessing.get_context('fork').Pool(a.writers) as pool:
            done = list(pool.imap_unordered(write_shard, [jobs[i] for i in order]))
    else:
        done = [write_shard(jobs[i]) for i in order]
    for model, sub in enumerate(folders):
        wm = {name: f'model-{k + 1:05d}-of-{n:05d}.safetensors' for k, sh in enumerate(shards) for name, _ in sh}
        for fname, obj in (('config.json', config(m, a.dtype, a.seed, None if model == 0 else model - 1)),
                           ('model.safetensors.index.json', {'metadata': {'total_size': P * esize}, 'weight_map': dict(sorted(wm.items()))})):
            path = os.path.join(a.outdir, sub, fname)
            with open(path + '.tmp', 'w') as f:
                json.dump(obj, f, indent=2)
                f.write('\n')
            os.replace(path + '.tmp', path)
    wall = time.perf_counter() - t0
    total = sum(b for _, b, _ in done)
    print(f'gen_hf: P = {P} (d = {m["d"]}, L = {m["L"]}, f = {m["f"]}, V = {m["V"]}, {m["heads"]}/{m["kv"]} heads), T = {a.T}, {a.dtype}, '
          f'{n} shards per model, {total / 1e9:.3f} GB in {wall:.2f} s ({total / wall / 1e9:.2f} GB/s) by {a.writers} writers')
    print('import: mapmerge import -map_pretrained {0}/pretrained -map_tasks {1} -map_task_models {2} -map_store STORE'.format(
        a.outdir, ','.join(f't{t}' for t in range(a.T)), ','.join(f'{a.outdir}/task{t}' for t in range(a.T))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
