#!/usr/bin/python3
"""Independent float64 reference for the `lm` evaluator (issue 13): GPT-2 and Llama written as plain
functions of a state dict (no nn.Module, no code shared with scripts/lm_models.py), a by-hand reader
of Hugging Face folders (model.safetensors or a sharded model.safetensors.index.json; F32, BF16, F16,
F64), the float64 merge theta = pre + sum_i c_i (task_i - pre), and the metrics:

  .bin (llm.c tokens): non-overlapping windows of L ids; window k feeds [kL, kL+L) and predicts
      [kL+1, kL+L]; a tail shorter than L+1 is dropped; max_windows keeps the first windows.
      loss = mean next-token cross-entropy, accuracy = top-1 (argmax, lowest id on ties).
  .jsonl (multiple choice): per item the summed log-likelihood of each choice's tokens given the
      context and the choice's preceding tokens; accuracy = argmax choice (lowest on ties) == answer,
      loss = mean NLL of the right choice (summed over its tokens).

Module: load_folder, merge, eval_bin, eval_mc (and forward, read_bin, read_mc).
CLI:    lm_ref.py --pretrained DIR [--tasks DIR,DIR --coeffs c,c] --data FILE [--context L] [--max-windows K]
        prints {"loss":..,"accuracy":..,"correct":..,"count":..} as one JSON line."""
import argparse
import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # one thread: OpenBLAS (torch's BLAS on Debian) would start its own

import json
import math
import sys

import numpy as np
import torch

_NP_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}


class RefError(Exception):
    """A bad input file; the message names it."""


# ---------------------------------------------------------------- reading HF folders
def read_safetensors(path):
    """{name: float64 numpy array} of one .safetensors file, parsed by hand."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise RefError("%s: shorter than the 8-byte header length" % path)
    n = int.from_bytes(blob[:8], "little")
    if 8 + n > len(blob):
        raise RefError("%s: header length %d runs past the end of the file (%d bytes)" % (path, n, len(blob)))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _NP_DTYPES:
            raise RefError("%s: tensor %s has dtype %s (the reference reads %s)" % (path, name, info["dtype"], ", ".join(_NP_DTYPES)))
        begin, end = info["data_offsets"]
        nelem = math.prod(info["shape"])
        width = np.dtype(_NP_DTYPES[info["dtype"]]).itemsize
        if end - begin != nelem * width or end > len(data):
            raise RefError("%s: tensor %s: data_offsets [%d, %d] do not hold shape %s of %s" % (path, name, begin, end, info["shape"], info["dtype"]))
        raw = np.frombuffer(data[begin:end], dtype=_NP_DTYPES[info["dtype"]])
        if info["dtype"] == "BF16":  # bfloat16 is the high half of a float32
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = raw.astype(np.float64).reshape(info["shape"])
    return out


def load_folder(folder):
    """(config dict, {name: float64 torch tensor}) of a Hugging Face checkpoint folder."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(folder, "model.safetensors.index.json")
    weights = {}
    if os.path.exists(index):
        with open(index) as f:
            wmap = json.load(f)["weight_map"]
        for shard in sorted(set(wmap.values())):
            part = read_safetensors(os.path.join(folder, shard))
            for name in part:
                if wmap.get(name) != shard:
                    raise RefError("%s: tensor %s is in %s but the index says %s" % (folder, name, shard, wmap.get(name)))
            weights.update(part)
        missing = sorted(set(wmap) - set(weights))
        if missing:
            raise RefError("%s: the index lists %s but no shard holds it" % (folder, missing[0]))
    else:
        weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    return cfg, {k: torch.from_numpy(v) for k, v in weights.items()}


def merge(pre, tasks, coeffs):
    """theta = pre + sum_i c_i (task_i - pre), in float64, for every tensor of pre."""
    if len(tasks) != len(coeffs):
        raise RefError("merge: %d task models but %d coefficients" % (len(tasks), len(coeffs)))
    theta = {}
    for name, p in pre.items():
        acc = p.clone()
        for i, (task, c) in enumerate(zip(tasks, coeffs)):
            if name not in task or task[name].shape != p.shape:
                raise RefError("merge: task %d has no tensor %s of shape %s" % (i, name, list(p.shape)))
            acc += float(c) * (task[name] - p)
        theta[name] = acc
    return theta


# ---------------------------------------------------------------- the two architectures, as functions
class _Weights:
    """Hands out tensors by name and remembers which were used, so a stray tensor is an error."""

    def __init__(self, w):
        self.w, self.used = w, set()

    def __call__(self, name, shape):
        if name not in self.w:
            raise RefError("missing tensor %s" % name)
        if list(self.w[name].shape) != list(shape):
            raise RefError("tensor %s has shape %s, expected %s" % (name, list(self.w[name].shape), list(shape)))
        self.used.add(name)
        return self.w[name]

    # buffers some real checkpoints carry that are not weights (GPT-2's causal mask, old Llama's RoPE table)
    _BUFFERS = (".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq")

    def check_all_used(self):
        extra = sorted(k for k in set(self.w) - self.used if not k.endswith(self._BUFFERS))
        if extra:
            raise RefError("unexpected tensor %s" % extra[0])


def _softmax_rows(s):
    e = torch.exp(s - s.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


def _attend(q, k, v):
    """q [N,T,H,D], k/v [N,T,H,D] (already one per query head) -> [N,T,H*D], causal."""
    n, t, h, d = q.shape
    s = torch.einsum("nthd,nshd->nhts", q, k) / math.sqrt(d)
    future = torch.arange(t)[None, :] > torch.arange(t)[:, None]
    s = s.masked_fill(future, -math.inf)
    return torch.einsum("nhts,nshd->nthd", _softmax_rows(s), v).reshape(n, t, h * d)


def _gpt2(cfg, W, ids):
    e, h, nl, v = cfg["n_embd"], cfg["n_head"], cfg["n_layer"], cfg["vocab_size"]
    inner = cfg.get("n_inner") or 4 * e
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    n, t = ids.shape

    def norm(x, pfx):
        mu = x.mean(dim=-1, keepdim=True)
        var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * W(pfx + ".weight", [e]) + W(pfx + ".bias", [e])

    def conv1d(x, pfx, n_in, n_out):  # HF Conv1D: weight [in, out]
        return x @ W(pfx + ".weight", [n_in, n_out]) + W(pfx + ".bias", [n_out])

    x = W("transformer.wte.weight", [v, e])[ids] + W("transformer.wpe.weight", [cfg["n_positions"], e])[:t]
    for i in range(nl):
        p = "transformer.h.%d." % i
        qkv = conv1d(norm(x, p + "ln_1"), p + "attn.c_attn", e, 3 * e).reshape(n, t, 3, h, e // h)
        x = x + conv1d(_attend(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]), p + "attn.c_proj", e, e)
        u = conv1d(norm(x, p + "ln_2"), p + "mlp.c_fc", e, inner)
        u = 0.5 * u * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (u + 0.044715 * u * u * u)))
        x = x + conv1d(u, p + "mlp.c_proj", inner, e)
    x = norm(x, "transformer.ln_f")
    head = W("lm_head.weight", [v, e]) if "lm_head.weight" in W.w else W("transformer.wte.weight", [v, e])
    return x @ head.T


def _llama(cfg, W, ids):
    e, nh, nl, v = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["vocab_size"]
    nkv = cfg.get("num_key_value_heads") or nh
    d = cfg.get("head_dim") or e // nh
    ff, eps, base = cfg["intermediate_size"], cfg.get("rms_norm_eps", 1e-6), cfg.get("rope_theta", 10000.0)
    n, t = ids.shape
    half = d // 2
    angle = torch.arange(t, dtype=torch.float64)[:, None] * base ** (-torch.arange(half, dtype=torch.float64) * 2.0 / d)[None, :]
    cos, sin = torch.cos(angle)[None, :, None, :], torch.sin(angle)[None, :, None, :]

    def rope(z):  # HF rotate_half layout: dimension j pairs with j + d/2
        a, b = z[..., :half], z[..., half:]
        return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)

    def rms(x, name):
        return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * W(name, [e])

    group = torch.arange(nh) // (nh // nkv)  # query head -> its key/value head
    x = W("model.embed_tokens.weight", [v, e])[ids]
    for i in range(nl):
        p = "model.layers.%d." % i
        a = rms(x, p + "input_layernorm.weight")
        q = (a @ W(p + "self_attn.q_proj.weight", [nh * d, e]).T).reshape(n, t, nh, d)
        k = (a @ W(p + "self_attn.k_proj.weight", [nkv * d, e]).T).reshape(n, t, nkv, d)
        val = (a @ W(p + "self_attn.v_proj.weight", [nkv * d, e]).T).reshape(n, t, nkv, d)
        y = _attend(rope(q), rope(k)[:, :, group], val[:, :, group])
        x = x + y @ W(p + "self_attn.o_proj.weight", [e, nh * d]).T
        m = rms(x, p + "post_attention_layernorm.weight")
        g = m @ W(p + "mlp.gate_proj.weight", [ff, e]).T
        u = m @ W(p + "mlp.up_proj.weight", [ff, e]).T
        x = x + (g / (1.0 + torch.exp(-g)) * u) @ W(p + "mlp.down_proj.weight", [e, ff]).T
    x = rms(x, "model.norm.weight")
    tied = cfg.get("tie_word_embeddings", False) and "lm_head.weight" not in W.w
    return x @ (W("model.embed_tokens.weight", [v, e]) if tied else W("lm_head.weight", [v, e])).T


def context_length(cfg):
    return cfg.get("n_positions") or cfg["max_position_embeddings"]


def forward(cfg, weights, ids):
    """Logits [N, T, vocab] in float64 for ids [N, T]."""
    arch = {"gpt2": _gpt2, "llama": _llama}.get(cfg.get("model_type"))
    if arch is None:
        raise RefError("unknown model_type %r (the reference knows gpt2, llama)" % cfg.get("model_type"))
    if ids.shape[1] > context_length(cfg):
        raise RefError("a window of %d tokens is longer than the model's %d positions" % (ids.shape[1], context_length(cfg)))
    W = _Weights(weights)
    with torch.no_grad():
        out = arch(cfg, W, torch.as_tensor(ids, dtype=torch.long))
    W.check_all_used()
    return out


def _log_softmax(z):
    m = z.max(dim=-1, keepdim=True).values
    return z - m - torch.log(torch.exp(z - m).sum(dim=-1, keepdim=True))


# ---------------------------------------------------------------- task data and metrics
def read_bin(path, vocab):
    """The ids of an llm.c .bin file (uint16: magic 20240520 v1; uint32: magic 20240801 v7)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 1024:
        raise RefError("%s: %d bytes, shorter than the 1024-byte llm.c header" % (path, len(blob)))
    magic, version, count = np.frombuffer(blob[:12], dtype="<i4")
    kinds = {(20240520, 1): "<u2", (20240801, 7): "<u4"}
    if (magic, version) not in kinds:
        raise RefError("%s: magic %d version %d is not llm.c's (20240520 v1 or 20240801 v7)" % (path, magic, version))
    width = np.dtype(kinds[(magic, version)]).itemsize
    if count <= 0 or len(blob) != 1024 + count * width:
        raise RefError("%s: header says %d tokens, the file holds %d bytes of ids" % (path, count, len(blob) - 1024))
    ids = np.frombuffer(blob[1024:], dtype=kinds[(magic, version)]).astype(np.int64)
    bad = np.nonzero(ids >= vocab)[0]
    if len(bad):
        raise RefError("%s: token %d at position %d is >= the vocabulary size %d" % (path, ids[bad[0]], bad[0], vocab))
    return ids


def eval_bin(cfg, weights, path, context=None, max_windows=None, batch=32):
    L = context or context_length(cfg)
    ids = read_bin(path, cfg["vocab_size"])
    nwin = (len(ids) - 1) // L
    if max_windows is not None:
        nwin = min(nwin, max_windows)
    if nwin < 1:
        raise RefError("%s: %d tokens make no window of %d (+1) tokens" % (path, len(ids), L))
    nll, correct = 0.0, 0
    for w0 in range(0, nwin, batch):
        w1 = min(nwin, w0 + batch)
        x = torch.from_numpy(np.stack([ids[k * L:k * L + L] for k in range(w0, w1)]))
        y = torch.from_numpy(np.stack([ids[k * L + 1:k * L + L + 1] for k in range(w0, w1)]))
        logits = forward(cfg, weights, x)
        nll -= _log_softmax(logits).gather(-1, y[..., None]).sum().item()
        correct += int((np.argmax(logits.numpy(), axis=-1) == y.numpy()).sum())  # numpy: first max on ties
    count = nwin * L
    return {"loss": nll / count, "accuracy": correct / count, "correct": correct, "count": count}


def read_mc(path, vocab):
    items = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            it = json.loads(line)
            ctx, choices, ans = it["context"], it["choices"], it["answer"]
            if not ctx or not choices or not all(choices) or not 0 <= ans < len(choices):
                raise RefError("%s:%d: needs a non-empty context, non-empty choices and 0 <= answer < %d" % (path, lineno, len(choices)))
            for tok in ctx + [t for c in choices for t in c]:
                if not 0 <= tok < vocab:
                    raise RefError("%s:%d: token %d is outside the vocabulary [0, %d)" % (path, lineno, tok, vocab))
            items.append(it)
    if not items:
        raise RefError("%s: no items" % path)
    return items


def choice_logliks(cfg, weights, context, choices):
    """Summed log-likelihood of each choice's tokens after the context (lm-eval-harness loglikelihood);
    choices of the same length share one batched forward."""
    out = [0.0] * len(choices)
    for n in sorted(set(len(c) for c in choices)):
        which = [j for j, c in enumerate(choices) if len(c) == n]
        seq = torch.tensor([context + choices[j] for j in which], dtype=torch.long)
        logp = _log_softmax(forward(cfg, weights, seq[:, :-1]))
        pos = torch.arange(len(context) - 1, seq.shape[1] - 1)
        for r, j in enumerate(which):
            out[j] = logp[r, pos, seq[r, pos + 1]].sum().item()
    return out


def eval_mc(cfg, weights, path):
    items = read_mc(path, cfg["vocab_size"])
    nll, correct = 0.0, 0
    for it in items:
        ll = choice_logliks(cfg, weights, it["context"], it["choices"])
        correct += int(int(np.argmax(ll)) == it["answer"])
        nll -= ll[it["answer"]]
    return {"loss": nll / len(items), "accuracy": correct / len(items), "correct": correct, "count": len(items)}


def evaluate(cfg, weights, path, context=None, max_windows=None):
    if path.endswith(".jsonl"):
        return eval_mc(cfg, weights, path)
    return eval_bin(cfg, weights, path, context, max_windows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", required=True, help="HF folder of the pretrained model")
    ap.add_argument("--tasks", default="", help="comma-separated HF folders of the fine-tuned models")
    ap.add_argument("--coeffs", default="", help="comma-separated merge coefficients, one per task")
    ap.add_argument("--data", required=True, help="a .bin (llm.c tokens) or .jsonl (multiple choice) file")
    ap.add_argument("--context", type=int, default=None, help="window length L (default: the model's positions)")
    ap.add_argument("--max-windows", type=int, default=None, help="score only the first K windows")
    a = ap.parse_args()
    torch.set_num_threads(1)
    try:
        cfg, pre = load_folder(a.pretrained)
        tasks = [load_folder(d)[1] for d in a.tasks.split(",") if d]
        coeffs = [float(c) for c in a.coeffs.split(",") if c]
        theta = merge(pre, tasks, coeffs) if tasks or coeffs else pre
        print(json.dumps(evaluate(cfg, theta, a.data, a.context, a.max_windows)))
    except (RefError, OSError, KeyError, ValueError) as e:
        sys.exit("lm_ref: %s" % e)


if __name__ == "__main__":
    main()
