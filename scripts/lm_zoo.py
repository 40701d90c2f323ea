#!/usr/bin/python3
"""Builds the LM zoo (docs/lm-zoo.md): a small GPT-2 (F32, one file) and a small Llama (BF16, sharded)
over a byte-level vocabulary, each pretrained on a mixture of Debian text domains and fine-tuned per
domain, saved as Hugging Face folders, with llm.c .bin token files and multiple-choice .mc.jsonl tasks.

  /usr/bin/python3 scripts/lm_zoo.py OUTDIR [--quick]

Seeded, CPU, one thread, deterministic; cached: nothing is done when OUTDIR/stamp matches a hash of
this script, lm_models.py, the arguments and the corpus bytes. The folder is built as OUTDIR.partial
and renamed into place, so a reader never sees half a zoo."""
import argparse
import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # one thread: OpenBLAS (torch's BLAS on Debian) would start its own

import copy
import glob
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_models  # noqa: E402

VOCAB = 259  # bytes 0..255 plus 3 unused ids: odd, so no rank count divides it
SEED = 20240520
DOMAINS = ["bible", "fortunes", "c", "python", "man", "changelog"]
# Debian packages whose files make each domain (scripts/setup.sh --tests installs them)
MAN_PKGS = ["coreutils", "util-linux", "findutils", "grep"]
CHANGELOG_PKGS = ["libc6", "binutils", "make", "coreutils", "python3.11", "gzip", "util-linux"]

GPT2_CONFIG = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": VOCAB, "n_embd": 60,
               "n_head": 3, "n_layer": 2, "n_positions": 64, "n_inner": None, "layer_norm_epsilon": 1e-5,
               "activation_function": "gelu_new", "tie_word_embeddings": True, "torch_dtype": "float32"}
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB, "hidden_size": 60,
                "intermediate_size": 161, "num_attention_heads": 6, "num_key_value_heads": 2, "num_hidden_layers": 2,
                "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
                "attention_bias": False, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
ARCHS = {"gpt2": (GPT2_CONFIG, torch.float32, 1), "llama": (LLAMA_CONFIG, torch.bfloat16, 3)}


# ---------------------------------------------------------------- corpus
def dpkg_files(pkg):
    r = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("lm_zoo: Debian package %s is not installed (run scripts/setup.sh --tests)" % pkg)
    return [p for p in r.stdout.split("\n") if p and os.path.isfile(p) and not os.path.islink(p)]


def read_all(paths):
    out = []
    for p in sorted(paths):
        with (gzip.open if p.endswith(".gz") else open)(p, "rb") as f:
            out.append(f.read())
    return b"".join(out)


def domain_stream(name):
    """The whole text of a domain, in a fixed order (sorted file lists)."""
    if name == "bible":
        try:
            r = subprocess.run(["bible", "-l79", "gen1:1-rev22:21"], capture_output=True, stdin=subprocess.DEVNULL,
                               env=dict(os.environ, COLUMNS="79"), check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit("lm_zoo: `bible` (Debian packages bible-kjv, bible-kjv-text) failed: %s" % e)
        return r.stdout
    if name == "fortunes":
        files = dpkg_files("fortunes") + dpkg_files("fortunes-min")
        return read_all(p for p in files if os.path.dirname(p) == "/usr/share/games/fortunes"
                        and "." not in os.path.basename(p))
    if name == "c":
        return read_all(p for p in dpkg_files("libc6-dev") if p.startswith("/usr/include/") and p.endswith(".h"))
    if name == "python":
        return read_all(glob.glob("/usr/lib/python3.11/*.py"))
    if name == "man":
        return read_all(p for pkg in MAN_PKGS for p in dpkg_files(pkg) if "/man/man1/" in p and p.endswith(".gz"))
    if name == "changelog":
        return read_all(p for pkg in CHANGELOG_PKGS for p in dpkg_files(pkg)
                        if p == "/usr/share/doc/%s/changelog.Debian.gz" % pkg)
    raise ValueError(name)


def split_domain(name, stream, sizes, block):
    """Disjoint train/val/test byte strings: sum(sizes)/block blocks spread evenly over the stream,
    every 17th block to val and the next to test, so all three sample the whole domain."""
    nb = sum(sizes) // block
    have = len(stream) // block
    if have < nb:
        sys.exit("lm_zoo: domain %s has %d bytes, needs %d" % (name, len(stream), nb * block))
    parts = [[], [], []]
    per = nb // (sizes[1] // block)  # blocks per val block (17 for 300/20/20)
    for j in range(nb):
        i = j * have // nb
        r = j % per
        parts[0 if r < per - 2 else 1 if r == per - 2 else 2].append(stream[i * block:(i + 1) * block])
    out = [b"".join(p) for p in parts]
    assert [len(p) for p in out] == list(sizes), (name, [len(p) for p in out])
    return out


# ---------------------------------------------------------------- data files
def bin_bytes(ids, wide=False):
    """llm.c's token file: 256 little-endian int32 (magic, version, count, zeros) then the ids,
    uint16 (magic 20240520, version 1) or uint32 (magic 20240801, version 7)."""
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240801, 7, len(ids)) if wide else (20240520, 1, len(ids))
    return header.tobytes() + np.asarray(ids, dtype="<u4" if wide else "<u2").tobytes()


def mc_items(d, tests, rng, n_items, ctx_len=48):
    """Multiple-choice items from domain d's test text: a 48-byte context, the true next 8..16 bytes
    and three same-length distractors (two from other domains' test text, one from elsewhere in d)."""
    text = tests[d]
    others = [x for x in DOMAINS if x != d and x in tests]
    lines = []
    for _ in range(n_items):
        n = int(rng.integers(8, 17))
        p = int(rng.integers(0, len(text) - ctx_len - n))
        ctx, true = text[p:p + ctx_len], text[p + ctx_len:p + ctx_len + n]
        choices = []
        for src in [others[int(rng.integers(len(others)))], others[int(rng.integers(len(others)))], d]:
            while True:
                q = int(rng.integers(0, len(tests[src]) - n))
                if abs(q - p) > ctx_len + n or src != d:
                    c = tests[src][q:q + n]
                    if c != true and c not in choices:
                        break
            choices.append(c)
        k = int(rng.integers(4))
        choices.insert(k, true)
        lines.append(json.dumps({"context": list(ctx), "choices": [list(c) for c in choices], "answer": k}))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- training and evaluation
def windows(ids, length):
    """Non-overlapping windows of the evaluation rule: window k feeds [kL, kL+L), predicts [kL+1, kL+L]."""
    n = (len(ids) - 1) // length
    t = torch.as_tensor(np.asarray(ids[:n * length + 1], dtype=np.int64))
    return t[:n * length].view(n, length), t[1:n * length + 1].view(n, length)


@torch.no_grad()
def val_loss(model, ids, length):
    x, y = windows(ids, length)
    return F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1)).item()


@torch.no_grad()
def mc_scores(model, lines):
    """Multiple-choice (accuracy, mean NLL of the answer) by summed choice log-likelihoods."""
    correct, nll = 0, 0.0
    for line in lines:
        it = json.loads(line)
        ctx, n = it["context"], len(it["context"])
        lls = [0.0] * len(it["choices"])
        for m in sorted(set(map(len, it["choices"]))):  # choices of one length share a forward
            which = [j for j, c in enumerate(it["choices"]) if len(c) == m]
            seq = torch.tensor([ctx + it["choices"][j] for j in which])
            logp = torch.log_softmax(model(seq[:, :-1]).double(), dim=-1)
            pos = torch.arange(n - 1, n - 1 + m)
            for r, j in enumerate(which):
                lls[j] = logp[r, pos, seq[r, pos + 1]].sum().item()
        correct += int(np.argmax(lls)) == it["answer"]
        nll -= lls[it["answer"]]
    return correct / len(lines), nll / len(lines)


def train(model, streams, steps, lr, batch, length, gen, log):
    """AdamW with linear warm-up and cosine decay; each row is a random window of a random stream."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + np.cos(np.pi * s / steps)))
    model.train()
    for s in range(steps):
        src = torch.randint(len(streams), (batch,), generator=gen)
        rows = []
        for i in src.tolist():
            o = int(torch.randint(len(streams[i]) - length - 1, (1,), generator=gen))
            rows.append(streams[i][o:o + length + 1])
        xy = torch.stack(rows)
        loss = F.cross_entropy(model(xy[:, :-1]).reshape(-1, VOCAB), xy[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if log and (s % 200 == 0 or s == steps - 1):
            print("lm_zoo:   step %d/%d loss %.4f" % (s + 1, steps, loss.item()), flush=True)
    model.eval()


def round_to(model, dtype):
    """Rounds the weights to the stored dtype so fine-tuning starts from exactly the saved model."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())


def build(outdir, quick):
    t0, c0 = time.time(), time.process_time()
    block, sizes = (500, (60000, 4000, 4000)) if quick else (2000, (300000, 20000, 20000))
    pre_steps, ft_steps, batch = (250, 60, 16) if quick else (1200, 100, 16)
    streams = {d: domain_stream(d) for d in DOMAINS}
    split = {d: split_domain(d, streams[d], sizes, block) for d in DOMAINS}
    key = hashlib.sha256()
    for f in (__file__, lm_models.__file__):
        with open(f, "rb") as fh:
            key.update(fh.read())
    key.update(repr((quick, torch.__version__)).encode())
    for d in DOMAINS:
        key.update(b"".join(split[d]))
    stamp = key.hexdigest()
    try:
        with open(os.path.join(outdir, "stamp")) as f:
            if f.read().strip() == stamp:
                print("lm_zoo: %s is up to date (stamp %s)" % (outdir, stamp[:12]))
                return
    except OSError:
        pass

    if os.path.isdir(outdir) and os.listdir(outdir) and not os.path.exists(os.path.join(outdir, "stamp")):
        sys.exit("lm_zoo: %s exists and is not an LM zoo (no stamp file); refusing to replace it" % outdir)
    work = outdir.rstrip("/") + ".partial"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "data"))
    tests = {}
    for d in DOMAINS:
        train_b, val_b, test_b = split[d]
        tests[d] = test_b
        lm_models.write_atomic(os.path.join(work, "data", d + ".val.bin"), bin_bytes(list(val_b)))
        lm_models.write_atomic(os.path.join(work, "data", d + ".test.bin"), bin_bytes(list(test_b)))
        lm_models.write_atomic(os.path.join(work, "data", d + ".val32.bin"), bin_bytes(list(val_b), wide=True))
    rng = np.random.default_rng(SEED)
    mc = {d: mc_items(d, tests, rng, 24 if quick else 64) for d in DOMAINS}
    for d in DOMAINS:
        lm_models.write_atomic(os.path.join(work, "data", d + ".mc.jsonl"), mc[d].encode())
    print("lm_zoo: corpus of %d domains (%d/%d/%d bytes train/val/test each) in %.1fs"
          % (len(DOMAINS), sizes[0], sizes[1], sizes[2], time.time() - t0), flush=True)

    train_ids = {d: torch.frombuffer(bytearray(split[d][0]), dtype=torch.uint8).long() for d in DOMAINS}
    val_ids = {d: list(split[d][1]) for d in DOMAINS}
    table = []
    for ai, (arch, (cfg, dtype, nshards)) in enumerate(ARCHS.items()):
        torch.manual_seed(SEED + ai)
        gen = torch.Generator().manual_seed(SEED + 100 + ai)
        length = cfg.get("n_positions") or cfg["max_position_embeddings"]
        pre = lm_models.make_model(cfg)
        ta = time.time()
        print("lm_zoo: %s: pretraining on the mixture, %d steps" % (arch, pre_steps), flush=True)
        train(pre, [train_ids[d] for d in DOMAINS], pre_steps, 3e-3, batch, length, gen, True)
        round_to(pre, dtype)
        models = {"pretrained": pre}
        for d in DOMAINS:
            ft = copy.deepcopy(pre)
            train(ft, [train_ids[d]], ft_steps, 1e-3, batch, length, gen, False)
            round_to(ft, dtype)
            models[d] = ft
        for name, m in models.items():
            cfg_out = dict(cfg)
            lm_models.save_hf_folder(os.path.join(work, arch, name), cfg_out, m.state_dict(), dtype, nshards)
        # the table is scored from the files as saved (what an evaluator reads)
        rows, mc_rows = {}, {}
        for name in models:
            _, m = lm_models.load_hf_folder_torch(os.path.join(work, arch, name))
            rows[name] = [val_loss(m, val_ids[d], length) for d in DOMAINS]
            mc_rows[name] = [mc_scores(m, mc[d].splitlines()) for d in DOMAINS]
        table.append((arch, rows, mc_rows))
        print("lm_zoo: %s done in %.1fs" % (arch, time.time() - ta), flush=True)

    text = format_table(table, quick)
    lm_models.write_atomic(os.path.join(work, "table.txt"), text.encode())
    full = {arch: {name: dict(zip(DOMAINS, losses)) for name, losses in rows.items()} for arch, rows, _ in table}
    lm_models.write_atomic(os.path.join(work, "table.json"), (json.dumps(full, indent=1) + "\n").encode())
    full = {arch: {name: {d: {"accuracy": a, "loss": l} for d, (a, l) in zip(DOMAINS, accs)} for name, accs in mc_rows.items()}
            for arch, _, mc_rows in table}
    lm_models.write_atomic(os.path.join(work, "mc_table.json"), (json.dumps(full, indent=1) + "\n").encode())
    manifest = {"domains": DOMAINS, "architectures": list(ARCHS), "models": ["pretrained"] + DOMAINS, "quick": quick,
                "vocab_size": VOCAB, "bytes": dict(zip(("train", "val", "test"), sizes)), "steps": [pre_steps, ft_steps]}
    lm_models.write_atomic(os.path.join(work, "manifest.json"), (json.dumps(manifest, indent=1) + "\n").encode())
    lm_models.write_atomic(os.path.join(work, "stamp"), (stamp + "\n").encode())
    shutil.rmtree(outdir, ignore_errors=True)
    os.replace(work, outdir)
    print(text, end="")
    print("lm_zoo: built %s in %.1fs (%.1fs of CPU)" % (outdir, time.time() - t0, time.process_time() - c0))


def format_table(table, quick):
    lines = ["# lm_zoo%s: mean next-token cross-entropy (nats/byte) on each domain's val set,"
             " windows of the context length; * = the fine-tuned model's own domain" % (" --quick" if quick else "")]
    for arch, rows, _ in table:
        lines.append("%-6s %-11s" % (arch, "model") + "".join(" %10s" % d for d in DOMAINS))
        for name, losses in rows.items():
            cells = "".join(" %9.4f%s" % (v, "*" if name == d else " ") for v, d in zip(losses, DOMAINS))
            lines.append("%-6s %-11s%s" % (arch, name, cells))
    lines.append("# multiple-choice accuracy on each domain's .mc.jsonl (4 choices, chance 0.25)")
    for arch, _, mc_rows in table:
        lines.append("%-6s %-11s" % (arch, "model") + "".join(" %10s" % d for d in DOMAINS))
        for name, accs in mc_rows.items():
            cells = "".join(" %9.4f%s" % (a, "*" if name == d else " ") for (a, _), d in zip(accs, DOMAINS))
            lines.append("%-6s %-11s%s" % (arch, name, cells))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", help="folder to build the zoo into")
    ap.add_argument("--quick", action="store_true", help="smaller corpus and fewer steps (seconds, for smoke tests)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    build(args.outdir, args.quick)


if __name__ == "__main__":
    main()
