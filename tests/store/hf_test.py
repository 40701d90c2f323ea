#!/usr/bin/python3
"""Checkpoints as PyTorch and Hugging Face write them (issue 14, docs/hf-checkpoints.md):

    hf_test.py sniff WORKDIR MPIEXEC     a pickle (zip and legacy), GGUF, ONNX, a hub id, a folder with only
                                         pytorch_model.bin: clear errors, no store; the printed torch
                                         conversion command works and its output imports
    hf_test.py buffers WORKDIR MPIEXEC   I64 position_ids, I64 num_batches_tracked, a BOOL mask: stored
                                         unchanged (h5py), exported byte-equal; a task whose copy differs
                                         is an error naming it
    hf_test.py heads WORKDIR MPIEXEC     classifier.* heads of 2 and 3 classes: reported with a suggested
                                         -map_private_patterns, an error with the default patterns
    hf_test.py folder WORKDIR MPIEXEC    BF16 HF folders (one sharded) -> store -> export -map_output DIR:
                                         safetensors byte-equal to a numpy merge at -n 1 and 3, BF16 as the
                                         pretrained model, sharded with an index, the recorded files byte-equal,
                                         the model card; -map_export_private all
    hf_test.py torchload WORKDIR MPIEXEC a torch module's state_dict (BatchNorm's num_batches_tracked, registered
                                         position_ids and bool buffers) -> import -> export: the folder loads
                                         back with load_state_dict(strict=True), the same logits as numpy's merge

Checkpoints are written by hand (tests/stio.py) or with torch.save; the binary is $MAPMERGE.
"""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stio  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import map_digest  # noqa: E402  (the store's source digest: docs/storage.md)

MAPMERGE = os.environ.get("MAPMERGE", "mapmerge")
stio.DT.update({"BOOL": np.dtype("u1"), "U8": np.dtype("u1")})


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(mpiexec, n, args, expect_ok=True, cwd=None):
    cmd = [mpiexec, "-n", str(n), MAPMERGE] + args
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, cwd=cwd)
    if expect_ok and p.returncode != 0:
        print(p.stdout)
        fail("command failed (%d): %s" % (p.returncode, " ".join(cmd)))
    if not expect_ok and p.returncode == 0:
        print(p.stdout)
        fail("command succeeded but should have failed: %s" % " ".join(cmd))
    return p


def expect_words(out, words, what):
    for w in words:
        if w not in out:
            print(out)
            fail("%s: message lacks %r" % (what, w))


# ---- a tiny BERT-like family as HF writes it ----
HIDDEN, VOCAB, NPOS = 8, 30, 16
FILES = {"config.json": b'{"architectures": ["TinyForSequenceClassification"], "hidden_size": 8, "torch_dtype": "bfloat16"}\n',
         "tokenizer.json": b'{"version": "1.0", "model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "hello": 1}}}\n',
         "tokenizer_config.json": b'{"do_lower_case": true, "model_max_length": 16}\n',
         "special_tokens_map.json": b'{"pad_token": "[PAD]"}\n', "vocab.txt": b"[PAD]\nhello\n\xc3\xa9t\xc3\xa9\n",
         "generation_config.json": b'{"max_new_tokens": 4}\n', "added_tokens.json": b"", "chat_template.jinja": b"{% for m in messages %}{{ m.content }}{% endfor %}\n"}


def family(rng, ncls, with_head_in_pre=False, dtype="F32", differ=None):
    """name -> list of (name, tag, array) per model: pretrained + tasks a, b"""
    floats = [("embeddings.word_embeddings.weight", [VOCAB, HIDDEN]), ("encoder.layer.0.dense.weight", [HIDDEN, HIDDEN]),
              ("encoder.layer.0.dense.bias", [HIDDEN]), ("bn.running_mean", [HIDDEN])]
    pre = {n: rng.standard_normal(s).astype(np.float32) for n, s in floats}
    if dtype == "BF16":
        pre = {n: stio.from_bf16(stio.to_bf16(v)).reshape(v.shape) for n, v in pre.items()}

    def buffers():
        return [("embeddings.position_ids", "I64", np.arange(NPOS, dtype=np.int64).reshape(1, NPOS)),
                ("bn.num_batches_tracked", "I64", np.array(1234567890123, dtype=np.int64)),
                ("h.0.attn.bias", "BOOL", np.tril(np.ones((1, 1, 4, 4), dtype=np.uint8))),
                ("pooler.empty_ids", "I64", np.zeros((0,), dtype=np.int64))]  # zero-size: created, nothing written

    def enc(v):
        return stio.to_bf16(v).reshape(v.shape) if dtype == "BF16" else v

    out = {"pretrained": [(n, dtype, enc(pre[n])) for n, _ in floats] + buffers()}
    if with_head_in_pre:
        out["pretrained"] += [("classifier.weight", dtype, enc(rng.standard_normal((2, HIDDEN)).astype(np.float32)))]
    for k, t in enumerate(["a", "b"]):
        tl = [(n, dtype, enc((pre[n] + 0.1 * (k + 1) * rng.standard_normal(s)).astype(np.float32))) for n, s in floats]
        bl = buffers()
        if differ == t:
            bl[0] = (bl[0][0], "I64", bl[0][2] + 1)
        tl += bl + [("classifier.weight", dtype, enc(rng.standard_normal((ncls[k], HIDDEN)).astype(np.float32))),
                    ("classifier.bias", dtype, enc(rng.standard_normal(ncls[k]).astype(np.float32)))]
        out[t] = tl
    return out


def write_folder(d, tl, files=None, shards=1):
    os.makedirs(d, exist_ok=True)
    if shards == 1:
        stio.write(os.path.join(d, "model.safetensors"), tl, {"format": "pt"})
    else:
        wm, per = {}, (len(tl) + shards - 1) // shards
        for s in range(shards):
            fn = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
            stio.write(os.path.join(d, fn), tl[s * per:(s + 1) * per], {"format": "pt"})
            wm.update({n: fn for n, _, _ in tl[s * per:(s + 1) * per]})
        json.dump({"metadata": {}, "weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
    for n, b in (files or {}).items():
        open(os.path.join(d, n), "wb").write(b)
    return d


def task_config(ncls):
    """a fine-tuned folder's config.json: its head's labels"""
    return json.dumps({"architectures": ["TinyForSequenceClassification"], "num_labels": ncls,
                       "id2label": {str(i): "L%d" % i for i in range(ncls)}}).encode()


def import_args(work, store, extra=()):
    return ["import", "-map_pretrained", os.path.join(work, "pretrained"), "-map_tasks", "a,b", "-map_task_models",
            os.path.join(work, "a") + "," + os.path.join(work, "b"), "-map_store", store] + list(extra)


def make(work, ncls=(2, 3), **kw):
    shutil.rmtree(work, ignore_errors=True)
    fam = family(np.random.default_rng(7), ncls, **kw)
    write_folder(os.path.join(work, "pretrained"), fam["pretrained"], FILES, shards=2)
    write_folder(os.path.join(work, "a"), fam["a"], {"config.json": task_config(ncls[0])})
    write_folder(os.path.join(work, "b"), fam["b"], {"config.json": task_config(ncls[1])}, shards=2)
    return fam


# ---- cases ----
def case_sniff(work, mpiexec):
    import torch

    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    sd = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "position_ids": torch.arange(4), "m": torch.ones(2, dtype=torch.bool)}
    torch.save(sd, os.path.join(work, "pytorch_model.bin"))
    torch.save(sd, os.path.join(work, "legacy.bin"), _use_new_zipfile_serialization=False)
    open(os.path.join(work, "tiny.gguf.bin"), "wb").write(b"GGUF\x03\x00\x00\x00" + bytes(32))
    open(os.path.join(work, "model.onnx"), "wb").write(b"\x08\x07\x12\x07pytorch" + bytes(32))
    open(os.path.join(work, "onnx_no_ext"), "wb").write(b"\x08\x08\x12\x07pytorch\x1a\x032.1" + bytes(32))
    os.makedirs(os.path.join(work, "ptfolder"))
    shutil.copy(os.path.join(work, "pytorch_model.bin"), os.path.join(work, "ptfolder"))
    cases = [("pytorch_model.bin", ["pytorch_model.bin", "PyTorch pickle", "zip format", "safetensors.torch import save_file", "weights_only=True"]),
             ("legacy.bin", ["legacy.bin", "PyTorch pickle", "legacy pickle format"]),
             ("tiny.gguf.bin", ["tiny.gguf.bin", "GGUF"]), ("model.onnx", ["model.onnx", "ONNX"]), ("onnx_no_ext", ["onnx_no_ext", "ONNX"]),
             ("google-bert/bert-base-uncased", ["google-bert/bert-base-uncased", "hub id",
                                                "huggingface-cli download google-bert/bert-base-uncased --local-dir DIR"]),
             ("bert-base-uncased", ["huggingface-cli download bert-base-uncased --local-dir"]),
             ("ptfolder", ["ptfolder", "pytorch_model.bin", "no model.safetensors"])]
    store = os.path.join(work, "s.h5")
    for i, (path, words) in enumerate(cases):
        for n in (1 + i % 2,):  # both rank counts over the cases: rank 0 reads, every rank must get the message
            p = run(mpiexec, n, ["import", "-map_pretrained", path, "-map_tasks", "t", "-map_task_models", path, "-map_store", store],
                    expect_ok=False, cwd=work)
            expect_words(p.stdout, words, "%s at -n %d" % (path, n))
            if "header length" in p.stdout:
                fail("%s: still the raw header-length message" % path)
            if os.path.exists(store):
                fail("%s: a store was left behind" % path)
    # a pickle given as a task model is named too
    write_folder(os.path.join(work, "ok"), [("w", "F32", np.zeros((2, 3), np.float32))])
    p = run(mpiexec, 1, ["import", "-map_pretrained", "ok", "-map_tasks", "t", "-map_task_models", "legacy.bin", "-map_store", store],
            expect_ok=False, cwd=work)
    expect_words(p.stdout, ["legacy.bin", "PyTorch pickle"], "task pickle")
    # the torch-only command the message prints converts the pickle; the result imports and keeps the integer tensor
    p = run(mpiexec, 1, ["import", "-map_pretrained", "pytorch_model.bin", "-map_tasks", "t", "-map_task_models", "x", "-map_store", store],
            expect_ok=False, cwd=work)
    m = re.search(r'or with torch alone \(e\.g\. Debian\'s python3-torch\): (python3 -c ".*?") pytorch_model\.bin model\.safetensors', p.stdout)
    if not m:
        print(p.stdout)
        fail("no conversion command in the message")
    cmd = m.group(1).replace("python3", "/usr/bin/python3", 1) + " pytorch_model.bin converted.safetensors"
    r = subprocess.run(cmd, shell=True, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        fail("the printed conversion command failed: " + r.stdout)
    got = stio.load(os.path.join(work, "converted.safetensors"))
    if not (np.array_equal(got["w"], sd["w"].numpy()) and np.array_equal(got["position_ids"], np.arange(4))):
        fail("converted tensors differ: %r" % got)
    run(mpiexec, 2, ["import", "-map_pretrained", "converted.safetensors", "-map_tasks", "t", "-map_task_models", "converted.safetensors",
                     "-map_store", store], cwd=work)
    print("sniff: OK (%d cases, conversion command works)" % len(cases))


def case_buffers(work, mpiexec):
    import h5py

    fam = make(work)
    pats = ["-map_private_patterns", "classifier.*"]
    stores = []
    for n in (1, 2):
        store = os.path.join(work, "s%d.h5" % n)
        p = run(mpiexec, n, import_args(work, store, pats))
        expect_words(p.stdout, ["4 integer/bool tensors kept"], "import summary")
        stores.append(store)
    pre = {n: (t, a) for n, t, a in fam["pretrained"]}
    with h5py.File(stores[0], "r") as f:
        for name in ("embeddings.position_ids", "bn.num_batches_tracked", "h.0.attn.bias", "pooler.empty_ids"):
            d = f["buffers"][name]
            tag, a = pre[name]
            if d.attrs["dtype"] != tag or list(d.shape) != list(np.shape(a)) or not np.array_equal(d[()], a):
                fail("/buffers/%s: %s %s %r, expected %s %s" % (name, d.attrs["dtype"], d.shape, d[()], tag, np.shape(a)))
        if "embeddings.position_ids" in f["tensors/name"][()].astype(str):
            fail("position_ids is among the merged tensors")
    outs = []
    for n, store in zip((1, 3), stores):
        out = os.path.join(work, "m%d.safetensors" % n)
        run(mpiexec, n, ["export", "-map_store", store, "-map_coeff", "0.5,0.25", "-map_output", out, "-map_export_private", "a"])
        outs.append(open(out, "rb").read())
        got = stio.load(out)
        header = stio._parse(out)[0]
        for name in ("embeddings.position_ids", "bn.num_batches_tracked", "h.0.attn.bias", "pooler.empty_ids"):
            tag, a = pre[name]
            if header[name]["dtype"] != tag or not np.array_equal(got[name], a):
                fail("export %s: %s is %s %r, expected %s" % (out, name, header[name]["dtype"], got[name], tag))
    if outs[0] != outs[1]:
        fail("exports from stores written at -n 1 and -n 2 (exported at -n 1 and 3) differ")
    # a task whose integer buffer differs from the pretrained one
    make(work, differ="b")
    p = run(mpiexec, 2, import_args(work, os.path.join(work, "bad.h5"), pats), expect_ok=False)
    expect_words(p.stdout, ["task b model", "embeddings.position_ids", "I64", "differs from the pretrained"], "differing buffer")
    if os.path.exists(os.path.join(work, "bad.h5")):
        fail("a store was left behind")
    # ... or, asked for, a private tensor of that task: exported under its name with that task's head
    fam = make(work, differ="b")
    store = os.path.join(work, "own.h5")
    p = run(mpiexec, 2, import_args(work, store, pats + ["-map_import_buffer_differs", "private"]))
    expect_words(p.stdout, ["task b", "embeddings.position_ids differs", "kept as a private tensor of the task"], "buffer made private")
    own = [x for x in fam["b"] if x[0] == "embeddings.position_ids"][0][2]
    with h5py.File(store, "r") as f:
        if not np.array_equal(f["private/b/embeddings.position_ids"][()], own) or "embeddings.position_ids" in f["private/a"]:
            fail("/private/b/embeddings.position_ids is not task b's copy, or task a got one")
    p = run(mpiexec, 1, ["info", "-map_store", store])
    if not re.search(r"private tensors of b: 3\n(.*\n){2}\s*embeddings\.position_ids\s+I64\s+\[1,16\]", p.stdout):
        print(p.stdout)
        fail("info does not list task b's own I64 position_ids")
    for task, want in (("b", own), ("a", pre["embeddings.position_ids"][1])):
        out = os.path.join(work, "own_%s.safetensors" % task)
        run(mpiexec, 2, ["export", "-map_store", store, "-map_coeff", "0.5,0.25", "-map_output", out, "-map_export_private", task])
        got, header = stio.load(out), stio._parse(out)[0]
        if header["embeddings.position_ids"]["dtype"] != "I64" or not np.array_equal(got["embeddings.position_ids"], want):
            fail("%s: position_ids %r, expected task %s's %r" % (out, got["embeddings.position_ids"], task, want))
    print("buffers: OK")


def case_heads(work, mpiexec):
    for head_in_pre in (False, True):
        make(work, with_head_in_pre=head_in_pre)
        store = os.path.join(work, "s.h5")
        p = run(mpiexec, 2, import_args(work, store), expect_ok=False)
        expect_words(p.stdout, ["classifier.weight", "a [2,8]", "b [3,8]", "suggested: -map_private_patterns 'head.*,classifier.*'"],
                     "head report")
        expect_words(p.stdout, ["shape [3,8]"] if head_in_pre else ["classifier.weight", "not in the pretrained model"], "head error")
        if os.path.exists(store):
            fail("store left behind")
        p = run(mpiexec, 2, import_args(work, store, ["-map_private_patterns", "head.*,classifier.*"]))
        expect_words(p.stdout, ["4 private tensors"], "import with the suggested patterns")
        if "suggested" in p.stdout:
            fail("suggestion printed although the patterns cover the heads")
    print("heads: OK")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def numpy_merge(fam, c):
    """MapMergeApply's arithmetic in numpy: F32 tau = task - pre, acc = pre + c_i*tau_i in F32, task order"""
    pre = {n: (stio.from_bf16(a).reshape(a.shape) if t == "BF16" else a) for n, t, a in fam["pretrained"] if t in ("F32", "BF16")}
    out = {}
    for n, p in pre.items():
        acc = p.astype(np.float32)
        for ci, t in zip(c, ("a", "b")):
            tv = [x for x in fam[t] if x[0] == n][0]
            v = stio.from_bf16(tv[2]).reshape(tv[2].shape) if tv[1] == "BF16" else tv[2]
            acc = acc + np.float32(ci) * (v.astype(np.float32) - p)
        out[n] = stio.to_bf16(acc).reshape(acc.shape)
    return out


def read_folder(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    got, hdr, meta = {}, {}, {}
    for f in files:
        got.update(stio.load(os.path.join(d, f)))
        h, m, _ = stio._parse(os.path.join(d, f))
        hdr.update(h)
        meta = m
    return got, hdr, meta, files


def case_folder(work, mpiexec):
    fam = make(work, ncls=(2, 2), dtype="BF16")
    store = os.path.join(work, "s.h5")
    p = run(mpiexec, 2, import_args(work, store, ["-map_private_patterns", "classifier.*"]))
    expect_words(p.stdout, ["recorded the files of folder", "config.json", "chat_template.jinja"], "import")
    p = run(mpiexec, 1, ["info", "-map_store", store])
    expect_words(p.stdout, ["integer/bool tensors kept from the pretrained model (not merged): 4", "bn.num_batches_tracked", "BOOL",
                            "files of the model folder", sha(FILES["vocab.txt"]) + "  vocab.txt"], "info")
    c = [0.625, 0.3]
    ref = numpy_merge(fam, c)
    bytes_by_n = []
    for n, shard in ((1, "0"), (3, "0"), (3, "300")):
        out = os.path.join(work, "out_%d_%s" % (n, shard))
        run(mpiexec, n, ["export", "-map_store", store, "-map_coeff", ",".join(map(str, c)), "-map_output", out, "-map_export_shard_size", shard])
        got, hdr, meta, files = read_folder(out)
        if meta.get("format") != "pt":
            fail("%s: __metadata__ format %r" % (out, meta.get("format")))
        if shard != "0" and (len(files) < 2 or not os.path.exists(os.path.join(out, "model.safetensors.index.json"))):
            fail("%s: expected shards with an index, got %s" % (out, files))
        for name, r in ref.items():
            if hdr[name]["dtype"] != "BF16":
                fail("%s: %s is %s, expected the pretrained BF16" % (out, name, hdr[name]["dtype"]))
            if got[name].tobytes() != r.tobytes():
                fail("%s: %s differs from the numpy merge (%d of %d bits)" % (out, name, int((got[name] != r).sum()), r.size))
        for name, tag, a in fam["pretrained"]:
            if tag in ("I64", "BOOL") and (hdr[name]["dtype"] != tag or got[name].tobytes() != np.ascontiguousarray(a).tobytes()):
                fail("%s: buffer %s not kept" % (out, name))
        if any(k.startswith("classifier") for k in got):
            fail("%s: a head was written without -map_export_private" % out)
        for fn, b in FILES.items():
            if open(os.path.join(out, fn), "rb").read() != b:
                fail("%s/%s is not byte-equal to the original" % (out, fn))
        card = open(os.path.join(out, "README.md")).read()
        want = ["base_model: pretrained", "| a | 0.625 |", "| b | 0.29999999999999999 |", map_digest.digest(os.path.join(work, "a", "model.safetensors")),
                "mapmerge version", "embeddings.position_ids", "in the pretrained checkpoint's dtypes"] + [sha(b) + "  " + fn for fn, b in FILES.items()]
        expect_words(card, want, out + "/README.md")
        if shard == "0":
            bytes_by_n.append(open(os.path.join(out, "model.safetensors"), "rb").read())
    if bytes_by_n[0] != bytes_by_n[1]:
        fail("folder exports at -n 1 and -n 3 differ")
    # every task's head under its prefix, said so in the card; -map_export_dtype overrides
    out = os.path.join(work, "out_all")
    run(mpiexec, 2, ["export", "-map_store", store, "-map_coeff", "0.5,0.5", "-map_output", out, "-map_export_private", "all",
                     "-map_export_dtype", "f32"])
    got, hdr, _, _ = read_folder(out)
    for t in ("a", "b"):
        w = [x for x in fam[t] if x[0] == "classifier.weight"][0][2]
        g = got.get(t + ".classifier.weight")
        if g is None or hdr[t + ".classifier.weight"]["dtype"] != "F32" or not np.array_equal(g, stio.from_bf16(w).reshape(w.shape)):
            fail("%s: %s.classifier.weight missing or wrong" % (out, t))
    if hdr["encoder.layer.0.dense.weight"]["dtype"] != "F32":
        fail("-map_export_dtype f32 not applied")
    expect_words(open(os.path.join(out, "README.md")).read(), ["prefix `<task>.`", "a.classifier.weight"], "card of -map_export_private all")
    # one task's head: its folder's config.json (labels) goes with it, the other files stay the pretrained model's
    out = os.path.join(work, "out_b")
    run(mpiexec, 2, ["export", "-map_store", store, "-map_coeff", "0.5,0.5", "-map_output", out, "-map_export_private", "b"])
    if open(os.path.join(out, "config.json"), "rb").read() != open(os.path.join(work, "b", "config.json"), "rb").read():
        fail("%s/config.json is not task b's" % out)
    if open(os.path.join(out, "vocab.txt"), "rb").read() != FILES["vocab.txt"]:
        fail("%s/vocab.txt is not the pretrained model's" % out)
    expect_words(open(os.path.join(out, "README.md")).read(), ["config.json is task b's"], "card of -map_export_private b")
    # a damaged recorded file: export at 2 ranks fails, naming it, and leaves no folder
    import h5py
    bad = os.path.join(work, "damaged.h5")
    shutil.copy(store, bad)
    with h5py.File(bad, "r+") as f:
        d = f["hf_files/vocab.txt"]
        v = d[()]
        v[0] ^= 1
        d[...] = v
    p = run(mpiexec, 2, ["export", "-map_store", bad, "-map_coeff", "0.5,0.5", "-map_output", os.path.join(work, "out_bad")], expect_ok=False)
    expect_words(p.stdout, ["/hf_files/vocab.txt", "sha256", "damaged store"], "damaged recorded file")
    if os.path.exists(os.path.join(work, "out_bad")):
        fail("export of a damaged store left a folder")
    # coefficients from a run (analytic tasks named like the store's): the card names the run, its start, preference and manifest sha256
    rundir, out = os.path.join(work, "run"), os.path.join(work, "out_run")
    run(mpiexec, 2, ["run", "-map_eval_type", "analytic", "-map_analytic_problem", "quadratic", "-map_tasks", "a,b", "-map_output", rundir,
                     "-map_seed", "7"])
    p = run(mpiexec, 2, ["export", "-map_store", store, "-map_run", rundir, "-map_preference", "2,1", "-map_output", out])
    manifest = json.load(open(os.path.join(rundir, "manifest.json")))
    cs = re.search(r"c = ([-0-9.e,]+);", p.stdout).group(1).split(",")
    expect_words(open(os.path.join(out, "README.md")).read(),
                 ["run `%s`" % rundir, manifest["start_time"], "its pick for the preference 2,1",
                  "manifest.json sha256: `%s`" % sha(open(os.path.join(rundir, "manifest.json"), "rb").read()),
                  "| a | %s |" % cs[0], "| b | %s |" % cs[1]], "card of an export from a run")
    print("folder: OK")


def case_torchload(work, mpiexec):
    """checkpoints from a torch module's state_dict (as PyTorch writes it, buffers included); the exported
    folder loads back into the module with strict=True and computes what the numpy-merged weights compute"""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self, ncls):
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, HIDDEN)
            self.register_buffer("position_ids", torch.arange(NPOS).expand((1, -1)))
            self.register_buffer("causal", torch.tril(torch.ones(4, 4, dtype=torch.bool)))
            self.dense = torch.nn.Linear(HIDDEN, HIDDEN)
            self.bn = torch.nn.BatchNorm1d(HIDDEN)
            self.classifier = torch.nn.Linear(HIDDEN, ncls)

        def forward(self, ids):
            return self.classifier(self.bn(torch.tanh(self.dense(self.emb(ids)))))

    def save(model, d, files=None):
        sd = model.state_dict()
        tag = {torch.float32: "F32", torch.int64: "I64", torch.bool: "BOOL"}
        return write_folder(d, [(k, tag[v.dtype], v.numpy()) for k, v in sd.items()], files)

    shutil.rmtree(work, ignore_errors=True)
    torch.manual_seed(0)
    pre = Tiny(2)
    pre.bn.train()
    pre(torch.randint(0, VOCAB, (32,)))  # running stats and num_batches_tracked as training leaves them
    base = {k: v.clone() for k, v in pre.state_dict().items()}
    del_head = [k for k in base if k.startswith("classifier")]
    tl = [(k, {torch.float32: "F32", torch.int64: "I64", torch.bool: "BOOL"}[v.dtype], v.numpy()) for k, v in base.items() if k not in del_head]
    write_folder(os.path.join(work, "pretrained"), tl, FILES)
    tasks = {}
    for t, ncls in (("a", 2), ("b", 3)):
        m = Tiny(ncls)
        m.load_state_dict({k: v for k, v in base.items() if k not in del_head}, strict=False)
        with torch.no_grad():
            for name, prm in m.named_parameters():
                if not name.startswith("classifier"):
                    prm.add_(0.05 * torch.randn_like(prm))
        tasks[t] = m
        save(m, os.path.join(work, t), {"config.json": task_config(ncls)})
    store = os.path.join(work, "s.h5")
    run(mpiexec, 2, import_args(work, store, ["-map_private_patterns", "classifier.*"]))
    c, out = [0.4, 0.7], os.path.join(work, "merged")
    run(mpiexec, 2, ["export", "-map_store", store, "-map_coeff", "0.4,0.7", "-map_output", out, "-map_export_private", "a"])
    got, hdr, meta, _ = read_folder(out)
    loaded = Tiny(json.load(open(os.path.join(out, "config.json")))["num_labels"])
    loaded.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in got.items()}, strict=True)  # every name, shape, dtype
    if loaded.bn.num_batches_tracked.item() != base["bn.num_batches_tracked"].item() or loaded.position_ids.dtype != torch.int64:
        fail("buffers not as in the pretrained model")
    ref = Tiny(2)
    sd = {}
    for k, v in base.items():
        if k.startswith("classifier"):
            sd[k] = tasks["a"].state_dict()[k]
        elif v.dtype == torch.float32:
            acc = v.numpy().astype(np.float32)
            for ci, t in zip(c, ("a", "b")):
                acc = acc + np.float32(ci) * (tasks[t].state_dict()[k].numpy() - v.numpy())
            sd[k] = torch.from_numpy(acc)
        else:
            sd[k] = v
    ref.load_state_dict(sd, strict=True)
    ids = torch.randint(0, VOCAB, (16,))
    loaded.eval()
    ref.eval()
    with torch.no_grad():
        if not torch.equal(loaded(ids), ref(ids)):
            fail("the loaded export computes other logits than the numpy-merged model")
    print("torchload: OK")


if __name__ == "__main__":
    case, work, mpiexec = sys.argv[1], sys.argv[2], sys.argv[3]
    globals()["case_" + case](os.path.abspath(work), mpiexec)
