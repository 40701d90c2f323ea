#!/usr/bin/python3
"""Interleaved best-of-N of the `lm` evaluator against PyTorch, for a loaded machine:

  per repetition, for each model: `mapmerge eval -n 1` of every build given, then the float32
  PyTorch forward of the same merged model on the same windows (torch.set_num_threads(1); set
  OPENBLAS_NUM_THREADS=1), and the best per column over the repetitions. Interleaving exposes every
  column to the same load; the best of N filters out the scheduling noise. lm time = MapLMForward
  + MapLMReduce of -log_view, as bench_lm.py; the models and windows are bench_lm.py's (the zoo's
  GPT-2 and Llama, 16 windows of 4 tasks; synthetic models, 4 windows).

usage: interleave_lm.py ZOO_DIR BUILD [BUILD ...] [--reps N] [--synthetic E,layers,heads,positions]
  the first BUILD imports the stores; the ratios are tokens/s of each build over torch's.
"""
import argparse, json, os, sys, tempfile
import bench_lm
import lm_ref


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("zoo")
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--synthetic", default="256,4,8,128")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="interleave-lm-", dir=a.builds[0])
    doms = sorted(d[:-8] for d in os.listdir(os.path.join(a.zoo, "data")) if d.endswith(".val.bin"))[:4]
    files = [os.path.join(a.zoo, "data", d + ".val.bin") for d in doms]
    models = [(f"zoo-{arch}", os.path.join(a.zoo, arch, "pretrained"), [os.path.join(a.zoo, arch, d) for d in doms], 16) for arch in ("gpt2", "llama")]
    if a.synthetic:
        E, layers, heads, npos = (int(x) for x in a.synthetic.split(","))
        for arch in ("gpt2", "llama"):
            base, _ = bench_lm.synthetic(work, arch, E, layers, heads, npos, 4)
            models.append((f"syn-{arch}", os.path.join(base, "pretrained"), [os.path.join(base, f"t{t}") for t in range(4)], 4))
    mapmerge = [os.path.join(b, "mapmerge") for b in a.builds]
    prep = {}
    for name, pre, tds, W in models:
        T = len(tds)
        st = os.path.join(work, f"{name}.h5")
        bench_lm.run(["mpiexec", "-n", "2", "--oversubscribe", mapmerge[0], "import", "-map_pretrained", pre, "-map_tasks",
                      ",".join(f"t{i}" for i in range(T)), "-map_task_models", ",".join(tds), "-map_store", st])
        c = [round(1.0 / T, 6)] * T
        cpath = os.path.join(work, f"{name}.c.csv")
        with open(cpath, "w") as f:
            f.write(",".join(f"t{i}" for i in range(T)) + "\n" + ",".join(map(str, c)) + "\n")
        cfg = json.load(open(os.path.join(pre, "config.json")))
        win = bench_lm.windows_of(files, lm_ref.context_length(cfg), W)
        _, p = lm_ref.load_folder(pre)
        theta = lm_ref.merge(p, [lm_ref.load_folder(d)[1] for d in tds], c)
        prep[name] = (cfg, win, theta, cpath, st, W, len(win) * lm_ref.context_length(cfg))
    best = {}
    for _ in range(a.reps):
        for name, *_ in models:
            cfg, win, theta, cpath, st, W, ntok = prep[name]
            for i, exe in enumerate(mapmerge):
                p = bench_lm.run(["mpiexec", "-n", "1", exe, "eval", "-map_store", st, "-map_eval_type", "lm", "-map_eval_data", ",".join(files),
                                  "-map_coeffs", cpath, "-map_output", os.path.join(work, f"out-{i}"), "-map_lm_max_windows", str(W), "-log_view"])
                e = bench_lm.log_view(p.stdout)
                best[(name, i)] = min(best.get((name, i), 1e30), e["MapLMForward"] + e["MapLMReduce"])
            best[(name, "torch")] = min(best.get((name, "torch"), 1e30), ntok / bench_lm.torch_tokens_per_s(cfg, theta, win, 1)[0])
    print(f"load: {os.getloadavg()}  (uptime); best of {a.reps}, interleaved")
    print("| model | tokens | " + " | ".join(f"lm tokens/s ({b})" for b in a.builds) + " | torch f32 tokens/s | " +
          " | ".join(f"ratio ({b})" for b in a.builds) + " |")
    print("|---" * (3 + 2 * len(a.builds)) + "|")
    for name, *_ in models:
        ntok = prep[name][6]
        ours = [ntok / best[(name, i)] for i in range(len(a.builds))]
        torch_tps = ntok / best[(name, "torch")]
        print(f"| {name} | {ntok} | " + " | ".join(f"{v:,.0f}" for v in ours) + f" | {torch_tps:,.0f} | " +
              " | ".join(f"**{v / torch_tps:.2f}x**" for v in ours) + " |")


if __name__ == "__main__":
    sys.exit(main())
