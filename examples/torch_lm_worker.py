#!/usr/bin/python3
"""A ready PyTorch worker for causal language models (protocol 1, docs/evaluators-external.md): it
scores merged GPT-2- and Llama-family Hugging Face checkpoints on the task files of the in-process
`lm` evaluator (docs/lm.md) and returns the same metrics:

  .bin (llm.c tokens, uint16 magic 20240520 v1 or uint32 magic 20240801 v7): non-overlapping windows
      of L ids (window k feeds [kL, kL+L) and predicts [kL+1, kL+L]; a shorter tail is dropped;
      --max-windows keeps the first ones); loss = mean next-token cross-entropy, accuracy = top-1
      (argmax, lowest id on ties);
  .jsonl (multiple choice, {"context": [ids], "choices": [[ids], ...], "answer": k} per line): each
      choice's summed log-likelihood given the context; accuracy = argmax choice (lowest on ties) ==
      answer; loss = mean negative log-likelihood of the right choice.

usage: -map_eval_worker '/usr/bin/python3 examples/torch_lm_worker.py [--max-windows K] [--context L]
        [--precision float64|float32|bfloat16] [--device cuda] [--config DIR|config.json]'

The architecture comes from --config, else the config.json the store recorded at import
(/hf_files/config.json). Model mode: the merged model file of each request (tensors under their
Hugging Face names; F32, BF16, F16 read by hand, Debian has no safetensors module). Coefficients
mode: theta_pre and the task vectors are read from the store once (h5py) and merged here per request.
The forward passes are written below in plain PyTorch (no transformers module). --precision float64
(the default on the CPU) gives the lm evaluator's metrics to ~1e-6; float32 or bfloat16 on a GPU.
Give --max-windows and --context the values of -map_lm_max_windows / -map_lm_context to compare.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_worker  # noqa: E402  (the safetensors reader, the store reader and the protocol loop)

PRECISIONS = {'float64': torch.float64, 'float32': torch.float32, 'bfloat16': torch.bfloat16}
LLMC_FORMATS = {(20240520, 1): np.uint16, (20240801, 7): np.uint32}


# ---------------------------------------------------------------- the two architectures
def causal_attention(q, k, v):
    """q, k, v [N, heads, T, D] -> [N, T, heads * D], each position attending to itself and the past"""
    t, d = q.shape[2], q.shape[3]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
    future = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    weights = torch.softmax(scores.masked_fill(future, float('-inf')), dim=-1)
    return (weights @ v).transpose(1, 2).reshape(q.shape[0], t, -1)


def gpt2_logits(cfg, p, ids):
    e, heads = cfg['n_embd'], cfg['n_head']
    eps = cfg.get('layer_norm_epsilon', 1e-5)
    n, t = ids.shape

    def ln(x, name):
        return F.layer_norm(x, (e,), p[name + '.weight'], p[name + '.bias'], eps)

    def conv(x, name):  # Hugging Face's Conv1D keeps the weight as [in, out]
        return torch.addmm(p[name + '.bias'], x.reshape(-1, x.shape[-1]), p[name + '.weight']).reshape(n, t, -1)

    x = p['transformer.wte.weight'][ids] + p['transformer.wpe.weight'][:t]
    for i in range(cfg['n_layer']):
        blk = f'transformer.h.{i}'
        q, k, v = conv(ln(x, blk + '.ln_1'), blk + '.attn.c_attn').split(e, dim=-1)
        q, k, v = (z.reshape(n, t, heads, e // heads).transpose(1, 2) for z in (q, k, v))
        x = x + conv(causal_attention(q, k, v), blk + '.attn.c_proj')
        x = x + conv(F.gelu(conv(ln(x, blk + '.ln_2'), blk + '.mlp.c_fc'), approximate='tanh'), blk + '.mlp.c_proj')
    x = ln(x, 'transformer.ln_f')
    return x @ p.get('lm_head.weight', p['transformer.wte.weight']).T


def llama_logits(cfg, p, ids):
    e, nh, eps = cfg['hidden_size'], cfg['num_attention_heads'], cfg.get('rms_norm_eps', 1e-6)
    nkv = cfg.get('num_key_value_heads') or nh
    d = cfg.get('head_dim') or e // nh
    n, t = ids.shape
    inv_freq = cfg.get('rope_theta', 10000.0) ** (-torch.arange(0, d, 2, dtype=torch.float64, device=ids.device) / d)
    angles = torch.arange(t, dtype=torch.float64, device=ids.device)[:, None] * inv_freq[None, :]
    cos = torch.cat((angles.cos(), angles.cos()), dim=-1).to(p['model.norm.weight'].dtype)
    sin = torch.cat((angles.sin(), angles.sin()), dim=-1).to(cos.dtype)

    def rms(x, name):
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * p[name]

    def rotary(z):  # [N, heads, T, D]; dimension j turns with j + D/2 (Hugging Face's rotate_half)
        return z * cos + torch.cat((-z[..., d // 2:], z[..., :d // 2]), dim=-1) * sin

    def proj(x, name, heads):
        return (x @ p[name].T).reshape(n, t, heads, d).transpose(1, 2)

    x = p['model.embed_tokens.weight'][ids]
    for i in range(cfg['num_hidden_layers']):
        lay = f'model.layers.{i}'
        a = rms(x, lay + '.input_layernorm.weight')
        q = rotary(proj(a, lay + '.self_attn.q_proj.weight', nh))
        k = rotary(proj(a, lay + '.self_attn.k_proj.weight', nkv)).repeat_interleave(nh // nkv, dim=1)
        v = proj(a, lay + '.self_attn.v_proj.weight', nkv).repeat_interleave(nh // nkv, dim=1)
        x = x + causal_attention(q, k, v) @ p[lay + '.self_attn.o_proj.weight'].T
        m = rms(x, lay + '.post_attention_layernorm.weight')
        x = x + (F.silu(m @ p[lay + '.mlp.gate_proj.weight'].T) * (m @ p[lay + '.mlp.up_proj.weight'].T)) @ p[lay + '.mlp.down_proj.weight'].T
    x = rms(x, 'model.norm.weight')
    return x @ p.get('lm_head.weight', p['model.embed_tokens.weight']).T


ARCHITECTURES = {'gpt2': gpt2_logits, 'llama': llama_logits}


# ---------------------------------------------------------------- task files
def read_llmc(path, vocab):
    """the ids of an llm.c .bin file, checked against its header and the vocabulary"""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size < 1024:
        raise ValueError(f'{path}: {raw.size} bytes, shorter than the 1024-byte llm.c header')
    magic, version, count = (int(v) for v in raw[:12].view('<i4'))
    kind = LLMC_FORMATS.get((magic, version))
    if kind is None:
        raise ValueError(f'{path}: magic {magic} version {version} is not llm.c\'s (20240520 v1 or 20240801 v7)')
    ids = raw[1024:].view(np.dtype(kind).newbyteorder('<')).astype(np.int64)
    if count <= 0 or ids.size != count:
        raise ValueError(f'{path}: the header says {count} tokens, the file holds {ids.size}')
    if ids.max() >= vocab:
        raise ValueError(f'{path}: token {ids.max()} is >= the vocabulary size {vocab}')
    return torch.from_numpy(ids)


def read_choices(path, vocab):
    with open(path) as f:
        items = [json.loads(line) for line in f if line.strip()]
    for k, it in enumerate(items, 1):
        toks = it['context'] + [x for c in it['choices'] for x in c]
        if not it['context'] or not all(it['choices']) or not 0 <= it['answer'] < len(it['choices']) or min(toks) < 0 or max(toks) >= vocab:
            raise ValueError(f'{path}: item {k}: needs a context, non-empty choices, 0 <= answer < {len(it["choices"])}, ids < {vocab}')
    if not items:
        raise ValueError(f'{path}: no items')
    return items


# ---------------------------------------------------------------- the worker
class LMWorker(torch_worker.Worker):
    def __init__(self, a):
        super().__init__(a.device, a.batch)
        self.dtype = PRECISIONS[a.precision]
        self.context, self.max_windows, self.config = a.context, a.max_windows, a.config

    def read_config(self, store):
        if self.config:
            path = os.path.join(self.config, 'config.json') if os.path.isdir(self.config) else self.config
            with open(path) as f:
                return json.load(f)
        import h5py
        with h5py.File(store, 'r') as f:
            if 'hf_files/config.json' not in f:
                raise ValueError(f'store {store} records no config.json (imported from a folder without one): give --config')
            return json.loads(np.asarray(f['hf_files/config.json'][()]).tobytes().decode())

    def hello(self, msg):
        self.cfg = self.read_config(msg['store'])
        if self.cfg.get('model_type') not in ARCHITECTURES:
            raise ValueError(f'model_type {self.cfg.get("model_type")!r}: this worker knows {", ".join(ARCHITECTURES)}')
        positions = self.cfg.get('n_positions') or self.cfg['max_position_embeddings']
        self.L = self.context or positions
        if self.L > positions:
            raise ValueError(f'--context {self.L} is longer than the model\'s {positions} positions')
        for t in msg['tasks']:
            if not t.get('data'):
                raise ValueError(f'task {t["name"]}: no task file (give -map_eval_data)')
            self.data(t['data'])
            if t.get('private'):
                self.heads[t['name']] = torch_worker.load_safetensors(t['private'], self.device)
        if msg['mode'] == 'coefficients':
            self.load_store(msg['store'], msg['coefficient_tasks'])
        torch_worker.log(f'{self.cfg["model_type"]} ready on {self.device} ({self.dtype}): {len(self.sets)} task files, mode {msg["mode"]}')
        return {'hello': 'torch_lm_worker', 'protocol': torch_worker.PROTOCOL, 'device': str(self.device), 'data_per_request': True}

    def data(self, path):
        """a task file's ids or questions, read at its first use (also the held-out sets mapmerge names)"""
        if path not in self.sets:
            vocab = self.cfg['vocab_size']
            self.sets[path] = read_choices(path, vocab) if path.endswith('.jsonl') else read_llmc(path, vocab).to(self.device)
        return self.sets[path]

    def merged(self, req):
        if 'model' in req:
            return {k: v.to(self.dtype) for k, v in torch_worker.load_safetensors(req['model'], self.device).items()}
        theta = self.pre.to(self.dtype)  # theta_pre + sum_k c_k tau_k in the working precision, task order
        for c, tau in zip(req['coefficients'], self.tau):
            theta = theta + float(c) * tau.to(self.dtype)
        return {n: theta[o:o + k].reshape(s) for n, o, k, s in self.index}

    def score_windows(self, p, ids):
        nwin = (len(ids) - 1) // self.L
        if self.max_windows:
            nwin = min(nwin, self.max_windows)
        if nwin < 1:
            raise ValueError(f'{len(ids)} tokens make no window of {self.L} (+1) tokens')
        nll, correct = 0.0, 0
        for w0 in range(0, nwin, self.batch):
            k = torch.arange(w0, min(nwin, w0 + self.batch), device=ids.device)[:, None] * self.L
            x, y = ids[k + torch.arange(self.L, device=ids.device)], ids[k + 1 + torch.arange(self.L, device=ids.device)]
            z = ARCHITECTURES[self.cfg['model_type']](self.cfg, p, x).double()
            nll += float(F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1), reduction='sum'))
            correct += int((z.argmax(dim=-1) == y).sum())  # torch.argmax: the first maximum on ties
        count = nwin * self.L
        return {'accuracy': correct / count, 'loss': nll / count, 'correct': correct, 'count': count}

    def score_choices(self, p, items):
        nll, correct = 0.0, 0
        for it in items:
            ll = [0.0] * len(it['choices'])
            for size in sorted({len(c) for c in it['choices']}):  # choices of one length share a forward pass
                which = [j for j, c in enumerate(it['choices']) if len(c) == size]
                seq = torch.tensor([it['context'] + it['choices'][j] for j in which], device=self.device)
                logp = torch.log_softmax(ARCHITECTURES[self.cfg['model_type']](self.cfg, p, seq[:, :-1]).double(), dim=-1)
                pos = torch.arange(len(it['context']) - 1, seq.shape[1] - 1, device=self.device)
                for r, j in enumerate(which):
                    ll[j] = float(logp[r, pos, seq[r, pos + 1]].sum())
            correct += int(max(range(len(ll)), key=lambda j: (ll[j], -j)) == it['answer'])
            nll -= ll[it['answer']]
        return {'accuracy': correct / len(items), 'loss': nll / len(items), 'correct': correct, 'count': len(items)}

    @torch.no_grad()
    def evaluate(self, req):
        params = self.merged(req)
        metrics = {}
        for t in req['tasks']:
            p = dict(params, **{k: v.to(self.dtype) for k, v in self.heads.get(t['name'], {}).items()})
            data = self.data(t['data'])
            metrics[t['name']] = self.score_choices(p, data) if isinstance(data, list) else self.score_windows(p, data)
        return {'id': req['id'], 'metrics': metrics}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--precision', choices=PRECISIONS, default=None, help='default: float64 on the CPU, float32 on a GPU')
    ap.add_argument('--batch', type=int, default=32, help='windows per forward pass')
    ap.add_argument('--context', type=int, default=0, help='window length L of .bin files (default: the model\'s positions)')
    ap.add_argument('--max-windows', type=int, default=0, help='score only the first K windows of each .bin file (0: all)')
    ap.add_argument('--config', default='', help='checkpoint folder or config.json (default: the one the store recorded)')
    ap.add_argument('--threads', type=int, default=1, help='CPU threads (the MPI ranks share the cores)')
    a = ap.parse_args()
    a.precision = a.precision or ('float64' if a.device == 'cpu' else 'float32')
    torch.set_num_threads(a.threads)
    torch_worker.serve(LMWorker(a))


if __name__ == '__main__':
    main()
