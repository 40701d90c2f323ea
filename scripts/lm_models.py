"""Small GPT-2 and Llama causal LMs as torch nn.Modules with Hugging Face's exact parameter names and
conventions (so their state dicts are real HF checkpoints), and a hand-written safetensors writer/reader
(Debian has no `safetensors` or `transformers` module). Used by scripts/lm_zoo.py to train the LM zoo;
tests/lm/lm_ref.py is the independent float64 reference these are checked against."""
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- GPT-2 (HF GPT2LMHeadModel layout)
class Conv1D(nn.Module):
    """HF's Conv1D: a linear layer whose weight is stored [in, out] (the transpose of nn.Linear)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(0.0, 0.02))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


def gelu_new(x):
    """GELU with the tanh approximation (HF's "gelu_new", GPT-2's activation)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


_MASKS = {}


def causal_attention(q, k, v):
    """q [B,H,T,D], k/v [B,H,T,D] -> [B,H,T,D], scaled dot product with a causal mask."""
    t = q.shape[-2]
    key = (t, q.dtype)
    if key not in _MASKS:  # additive: 0 on and below the diagonal, -inf above
        _MASKS[key] = torch.full((t, t), float("-inf"), dtype=q.dtype).triu(1)
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1])) + _MASKS[key]
    return torch.matmul(torch.softmax(scores, dim=-1), v)


class GPT2Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        e = cfg["n_embd"]
        self.n_head = cfg["n_head"]
        self.c_attn = Conv1D(e, 3 * e)
        self.c_proj = Conv1D(e, e)

    def forward(self, x):
        b, t, e = x.shape
        q, k, v = self.c_attn(x).split(e, dim=2)
        heads = lambda z: z.view(b, t, self.n_head, e // self.n_head).transpose(1, 2)  # noqa: E731
        y = causal_attention(heads(q), heads(k), heads(v))
        return self.c_proj(y.transpose(1, 2).reshape(b, t, e))


class GPT2MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        inner = cfg["n_inner"] or 4 * cfg["n_embd"]
        self.c_fc = Conv1D(cfg["n_embd"], inner)
        self.c_proj = Conv1D(inner, cfg["n_embd"])

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        e, eps = cfg["n_embd"], cfg["layer_norm_epsilon"]
        self.ln_1 = nn.LayerNorm(e, eps=eps)
        self.attn = GPT2Attention(cfg)
        self.ln_2 = nn.LayerNorm(e, eps=eps)
        self.mlp = GPT2MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.wte = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        self.wpe = nn.Embedding(cfg["n_positions"], cfg["n_embd"])
        self.h = nn.ModuleList([GPT2Block(cfg) for _ in range(cfg["n_layer"])])
        self.ln_f = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])


class GPT2LMHeadModel(nn.Module):
    """lm_head is tied to transformer.wte (not a parameter of its own, so not in the state dict)."""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.transformer = GPT2Transformer(cfg)
        nn.init.normal_(self.transformer.wte.weight, 0.0, 0.02)
        nn.init.normal_(self.transformer.wpe.weight, 0.0, 0.01)
        for blk in self.transformer.h:  # GPT-2's scaled init of the residual projections
            for proj in (blk.attn.c_proj, blk.mlp.c_proj):
                nn.init.normal_(proj.weight, 0.0, 0.02 / math.sqrt(2 * cfg["n_layer"]))

    def forward(self, ids):
        tr = self.transformer
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = tr.wte(ids) + tr.wpe(pos)
        for blk in tr.h:
            x = blk(x)
        return torch.matmul(tr.ln_f(x), tr.wte.weight.t())


# ---------------------------------------------------------------- Llama (HF LlamaForCausalLM layout)
class LlamaRMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


_ROPE = {}


def rope_cos_sin(t, head_dim, theta, dtype):
    """HF's rotary tables: inv_freq over even dims, then cat(freqs, freqs) (the rotate_half layout)."""
    key = (t, head_dim, theta, dtype)
    if key in _ROPE:
        return _ROPE[key]
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    freqs = torch.outer(torch.arange(t, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    _ROPE[key] = emb.cos().to(dtype), emb.sin().to(dtype)
    return _ROPE[key]


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        e = cfg["hidden_size"]
        self.n_head, self.n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.head_dim = e // self.n_head
        self.theta = cfg["rope_theta"]
        self.q_proj = nn.Linear(e, self.n_head * self.head_dim, bias=False)
        self.k_proj = nn.Linear(e, self.n_kv * self.head_dim, bias=False)
        self.v_proj = nn.Linear(e, self.n_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_head * self.head_dim, e, bias=False)

    def forward(self, x):
        b, t, _ = x.shape
        d = self.head_dim
        q = self.q_proj(x).view(b, t, self.n_head, d).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv, d).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv, d).transpose(1, 2)
        cos, sin = rope_cos_sin(t, d, self.theta, x.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # grouped-query attention: query head h reads key/value head h // (n_head / n_kv) (HF repeat_kv)
        rep = self.n_head // self.n_kv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = causal_attention(q, k, v)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.n_head * d))


class LlamaMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        e, i = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(e, i, bias=False)
        self.up_proj = nn.Linear(e, i, bias=False)
        self.down_proj = nn.Linear(i, e, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        e, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.input_layernorm = LlamaRMSNorm(e, eps)
        self.self_attn = LlamaAttention(cfg)
        self.post_attention_layernorm = LlamaRMSNorm(e, eps)
        self.mlp = LlamaMLP(cfg)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = LlamaRMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        for name, p in self.named_parameters():  # HF's init: N(0, 0.02) for every matrix, norms at 1
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, ids):
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x)
        return self.lm_head(self.model.norm(x))


def make_model(cfg):
    return {"gpt2": GPT2LMHeadModel, "llama": LlamaForCausalLM}[cfg["model_type"]](cfg)


# ---------------------------------------------------------------- safetensors by hand
_ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def _tensor_bytes(t):
    """Little-endian raw bytes of a CPU tensor (BF16 through its 16-bit pattern)."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def safetensors_bytes(tensors):
    """tensors: {name: torch tensor} -> the bytes of one .safetensors file (names sorted, header
    padded with spaces to 8 bytes like the reference library does)."""
    header, chunks, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        raw = _tensor_bytes(t)
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return len(h).to_bytes(8, "little") + h + b"".join(chunks)


def save_hf_folder(folder, cfg, state, dtype, nshards=1):
    """Writes config.json and the weights (state-dict order) as one model.safetensors or as nshards
    shards model-0000k-of-0000n.safetensors with model.safetensors.index.json (HF's layout)."""
    os.makedirs(folder, exist_ok=True)
    tensors = {k: v.detach().to(dtype) for k, v in state.items()}
    if nshards == 1:
        write_atomic(os.path.join(folder, "model.safetensors"), safetensors_bytes(tensors))
    else:
        sizes = {k: v.numel() * v.element_size() for k, v in tensors.items()}
        total, cum, shard_of = sum(sizes.values()), 0, {}
        for k in tensors:  # contiguous runs of the state dict, split by bytes; a layer may span two files
            shard_of[k] = min(nshards - 1, cum * nshards // total)
            cum += sizes[k]
        names = ["model-%05d-of-%05d.safetensors" % (s + 1, nshards) for s in range(nshards)]
        assert sorted(set(shard_of.values())) == list(range(nshards)), "a shard would be empty"
        for s in range(nshards):
            part = {k: v for k, v in tensors.items() if shard_of[k] == s}
            write_atomic(os.path.join(folder, names[s]), safetensors_bytes(part))
        index = {"metadata": {"total_size": total}, "weight_map": {k: names[shard_of[k]] for k in sorted(tensors)}}
        write_atomic(os.path.join(folder, "model.safetensors.index.json"), (json.dumps(index, indent=2) + "\n").encode())
    write_atomic(os.path.join(folder, "config.json"), (json.dumps(cfg, indent=2) + "\n").encode())


def load_safetensors_torch(path):
    """One .safetensors file -> {name: float32 torch tensor} (F32, BF16 and F16)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.frombuffer(data[b:e], dtype={"F32": "<f4", "BF16": "<i2", "F16": "<f2"}[info["dtype"]])
        t = torch.from_numpy(raw.copy())
        t = t.view(torch.bfloat16) if info["dtype"] == "BF16" else t
        out[name] = t.float().reshape(info["shape"])
    return out


def load_hf_folder_torch(folder):
    """An HF folder (single file or sharded index) -> (config, module with the stored weights, f32)."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(folder, "model.safetensors.index.json")
    state = {}
    if os.path.exists(index):
        with open(index) as f:
            for shard in sorted(set(json.load(f)["weight_map"].values())):
                state.update(load_safetensors_torch(os.path.join(folder, shard)))
    else:
        state = load_safetensors_torch(os.path.join(folder, "model.safetensors"))
    model = make_model(cfg)
    model.load_state_dict(state, strict=True)
    return cfg, model
