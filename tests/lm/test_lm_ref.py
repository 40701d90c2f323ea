#!/usr/bin/python3
"""lm_ref_selfcheck: the float64 reference (tests/lm/lm_ref.py, functions of a state dict) against the
zoo's training modules (scripts/lm_models.py, nn.Modules) run in float64 on the zoo's files — two
independent implementations of GPT-2 and Llama that must agree to ~1e-10 — and the zoo's own table
(float32) recomputed by the reference; then the .bin formats, the merge, multiple choice, the CLI
and clear errors on bad files.   usage: test_lm_ref.py ZOO_DIR SOURCE_DIR"""
import glob
import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # one thread: OpenBLAS (torch's BLAS on Debian) would start its own

import json
import subprocess
import sys
import tempfile

import numpy as np
import torch

zoo, src = sys.argv[1], sys.argv[2]
sys.path[:0] = [os.path.join(src, "tests", "lm"), os.path.join(src, "scripts")]
import lm_models  # noqa: E402
import lm_ref  # noqa: E402

torch.set_num_threads(1)
failures = []


def check(ok, what):
    print("%s: %s" % ("ok" if ok else "FAIL", what), flush=True)
    if not ok:
        failures.append(what)


table = json.load(open(os.path.join(zoo, "table.json")))
mc_table = json.load(open(os.path.join(zoo, "mc_table.json")))
domains = sorted(os.path.basename(p)[:-len(".val.bin")] for p in glob.glob(os.path.join(zoo, "data", "*.val.bin")))
check(len(domains) >= 4 and all(set(table[a]) == {"pretrained", *domains} for a in table),
      "%d domains %s, every model in table.json" % (len(domains), domains))


def module_logits(folder, state=None, ids=None):
    """The zoo's nn.Module on the folder's weights (or a given state dict), in float64."""
    cfg, m = lm_models.load_hf_folder_torch(folder)
    m = m.double()
    if state is not None:
        m.load_state_dict(state, strict=True)
    with torch.no_grad():
        return m(torch.as_tensor(ids, dtype=torch.long))


def windows(domain, n, L):
    ids = lm_ref.read_bin(os.path.join(zoo, "data", domain + ".val.bin"), 259)
    return np.stack([ids[k * L:(k + 1) * L] for k in range(n)])


for arch in ("gpt2", "llama"):
    pre_dir = os.path.join(zoo, arch, "pretrained")
    cfg, pre = lm_ref.load_folder(pre_dir)
    L = lm_ref.context_length(cfg)
    ids = np.concatenate([windows(d, 2, L) for d in domains])
    # 1. the two implementations agree on stored models (this also checks both readers of the files)
    for name in ("pretrained", domains[0], domains[-1]):
        folder = os.path.join(zoo, arch, name)
        ref = lm_ref.forward(cfg, lm_ref.load_folder(folder)[1], ids)
        mod = module_logits(folder, ids=ids)
        err = (ref - mod).abs().max().item() / ref.abs().max().item()
        check(err < 1e-10, "%s %s: float64 reference vs zoo module logits, max relative difference %.2e" % (arch, name, err))
    # 2. a merge of three task vectors (one coefficient negative), against the module on a torch merge
    names = domains[:3]
    coeffs = [0.6, -0.25, 0.4]
    tasks = [lm_ref.load_folder(os.path.join(zoo, arch, d))[1] for d in names]
    theta = lm_ref.merge(pre, tasks, coeffs)
    tstates = [lm_models.load_hf_folder_torch(os.path.join(zoo, arch, d))[1].double().state_dict() for d in names]
    pstate = lm_models.load_hf_folder_torch(pre_dir)[1].double().state_dict()
    mstate = {k: v + sum(c * (t[k] - v) for c, t in zip(coeffs, tstates)) for k, v in pstate.items()}
    ref, mod = lm_ref.forward(cfg, theta, ids), module_logits(pre_dir, mstate, ids)
    err = (ref - mod).abs().max().item() / ref.abs().max().item()
    check(err < 1e-10, "%s: merge %s with %s, reference vs module, max relative difference %.2e" % (arch, names, coeffs, err))
    same0 = all(torch.equal(a, b) for a, b in zip(lm_ref.merge(pre, tasks[:1], [0.0]).values(), pre.values()))
    one = lm_ref.merge(pre, tasks[:1], [1.0])
    err1 = max(((one[k] - tasks[0][k]).abs().max() / tasks[0][k].abs().max().clamp(min=1e-300)).item() for k in one)
    check(same0 and err1 < 1e-15, "%s: merge with c=0 is theta_pre bitwise, with c=1 is the task model (%.1e)" % (arch, err1))
    # 3. the zoo's float32 table, recomputed in float64 from the files: pretrained and fine-tuned on the
    #    fine-tuned model's domain, half the domains per architecture (all of them over the two) to save time
    for d in domains[arch == "llama"::2]:
        path = os.path.join(zoo, "data", d + ".val.bin")
        lp = lm_ref.eval_bin(cfg, pre, path)["loss"]
        lf = lm_ref.eval_bin(cfg, lm_ref.load_folder(os.path.join(zoo, arch, d))[1], path)["loss"]
        rp, rf = abs(lp - table[arch]["pretrained"][d]) / lp, abs(lf - table[arch][d][d]) / lf
        check(rp < 1e-5 and rf < 1e-5 and lf < lp,
              "%s %s: fine-tuned %.4f < pretrained %.4f (table.json within %.1e, %.1e)" % (arch, d, lf, lp, rp, rf))
    # the zoo's property: a fine-tuned model is worse than the pretrained one on the other domains (mean)
    for d in domains:
        others = [x for x in domains if x != d]
        worse = np.mean([table[arch][d][x] - table[arch]["pretrained"][x] for x in others])
        gain = table[arch]["pretrained"][d] - table[arch][d][d]
        check(worse > 0 and gain > 0, "%s %s: %.4f better than pretrained on its domain, %.4f worse on the others (mean)"
              % (arch, d, gain, worse))
    # 4. both .bin formats, the window rule and max_windows
    d = domains[1]
    r16 = lm_ref.eval_bin(cfg, pre, os.path.join(zoo, "data", d + ".val.bin"), max_windows=5)
    r32 = lm_ref.eval_bin(cfg, pre, os.path.join(zoo, "data", d + ".val32.bin"), max_windows=5)
    x = torch.as_tensor(windows(d, 6, L))
    full = lm_ref.read_bin(os.path.join(zoo, "data", d + ".val.bin"), 259)
    y = torch.as_tensor(np.stack([full[k * L + 1:(k + 1) * L + 1] for k in range(5)]))
    logp = torch.log_softmax(module_logits(pre_dir, ids=x[:5]), dim=-1)
    nll = -logp.gather(-1, y[..., None]).mean().item()
    check(r16 == r32 and r16["count"] == 5 * L and abs(r16["loss"] - nll) < 1e-12,
          "%s: uint16 and uint32 .bin agree, 5 windows = %d targets, loss %.6f = module %.6f" % (arch, r16["count"], r16["loss"], nll))
    # 5. multiple choice: the reference against the module, item by item
    mc = lm_ref.read_mc(os.path.join(zoo, "data", d + ".mc.jsonl"), 259)[:6]
    diffs = []
    for it in mc:
        ref_ll = lm_ref.choice_logliks(cfg, pre, it["context"], it["choices"])
        for c, rl in zip(it["choices"], ref_ll):
            seq = torch.tensor([it["context"] + c])
            lp = torch.log_softmax(module_logits(pre_dir, ids=seq[:, :-1]), dim=-1)[0]
            n = len(it["context"])
            diffs.append(abs(rl - sum(lp[n - 1 + j, c[j]].item() for j in range(len(c)))))
    check(max(diffs) < 1e-9, "%s: multiple-choice log-likelihoods, reference vs module, max difference %.1e" % (arch, max(diffs)))
    # the zoo's multiple-choice table (float32 models) recomputed: the pretrained model and d's own
    for name in ("pretrained", d):
        r = lm_ref.eval_mc(cfg, lm_ref.load_folder(os.path.join(zoo, arch, name))[1], os.path.join(zoo, "data", d + ".mc.jsonl"))
        want = mc_table[arch][name][d]
        check(r["accuracy"] == want["accuracy"] and abs(r["loss"] - want["loss"]) < 1e-5 * r["loss"],
              "%s %s on %s.mc.jsonl: accuracy %.4f, loss %.4f (mc_table.json %.4f, %.4f)" % (arch, name, d, r["accuracy"], r["loss"], want["accuracy"], want["loss"]))

# 6. the CLI prints what the module computes
pre_dir, d = os.path.join(zoo, "gpt2", "pretrained"), domains[0]
tasks = ",".join(os.path.join(zoo, "gpt2", x) for x in domains[:2])
cmd = [sys.executable, os.path.join(src, "tests", "lm", "lm_ref.py"), "--pretrained", pre_dir, "--tasks", tasks,
       "--coeffs", "0.5,0.25", "--data", os.path.join(zoo, "data", d + ".test.bin"), "--context", "32", "--max-windows", "7"]
out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
cfg, pre = lm_ref.load_folder(pre_dir)
theta = lm_ref.merge(pre, [lm_ref.load_folder(os.path.join(zoo, "gpt2", x))[1] for x in domains[:2]], [0.5, 0.25])
want = lm_ref.eval_bin(cfg, theta, os.path.join(zoo, "data", d + ".test.bin"), context=32, max_windows=7)
check(out == want and out["count"] == 7 * 32, "CLI: merged model, L=32, 7 windows: %s" % out)
cmd[cmd.index("--data") + 1] = os.path.join(zoo, "data", d + ".mc.jsonl")
out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
check(out["count"] >= 24 and 0 <= out["correct"] <= out["count"], "CLI: multiple choice %s" % out)

# 7. bad files are clear errors that name the file and the value (one through the CLI)
with tempfile.TemporaryDirectory() as tmp:
    good = open(os.path.join(zoo, "data", d + ".val.bin"), "rb").read()
    cases = {
        "magic.bin": (b"\x00" * 4 + good[4:], "magic 0"),
        "short.bin": (good[:-2], "header says"),
        "vocab.bin": (good[:1024 + 10] + (300).to_bytes(2, "little") + good[1024 + 12:], "token 300 at position 5"),
        "empty.bin": (good[:8] + (0).to_bytes(4, "little") + good[12:1024], "header says 0"),
        "answer.mc.jsonl": (b'{"context": [1, 2], "choices": [[3], [4]], "answer": 2}\n', "answer < 2"),
        "token.mc.jsonl": (b'{"context": [1, 259], "choices": [[3], [4]], "answer": 0}\n', "token 259 is outside"),
    }
    for fname, (data, msg) in cases.items():
        path = os.path.join(tmp, fname)
        open(path, "wb").write(data)
        try:
            lm_ref.evaluate(cfg, pre, path)
            err = "no error"
        except lm_ref.RefError as e:
            err = str(e)
        check(path in err and msg in err, "error on %s: %s" % (fname, err))
    r = subprocess.run([sys.executable, os.path.join(src, "tests", "lm", "lm_ref.py"), "--pretrained", pre_dir,
                        "--data", os.path.join(tmp, "vocab.bin")], capture_output=True, text=True)
    check(r.returncode != 0 and "token 300" in r.stderr and not r.stdout, "CLI error: %s" % r.stderr.strip())

print("lm_ref_selfcheck: %d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
