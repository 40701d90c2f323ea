"""Scorers for the -map_metric tests (tests/run/test_metric.py), as a command or a worker.

command (argv: MODE MODEL TASK):
  percent     prints {"accuracy": 85.0, "loss": 0.4}: a percentage, which the default 0,1 range refuses
  perplexity  prints {"perplexity": p} only (no accuracy, no loss): p = exp(8 * mean |W|) >= 1 of one
              tensor of the merged model, a different tensor per task, so the tasks pull apart
worker (argv: worker; -map_eval_worker_mode coefficients, protocol 1):
  answers accuracy = 0.95 - ||c - p_t||^2 / 2 and loss = 1 - accuracy at the request's coefficients,
  both NaN (Python's json.dumps writes the bare token NaN) when c_1 > 0.85: a model that diverged at
  an extreme coefficient. `worker both`: NaN only where every c_i > 0.85 (the fine-tuned corners e_i
  stay finite: nested MAP's leaves evaluate, its pairs' far corner fails)."""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def command(mode, model, task):
    if mode == "percent":
        print(json.dumps({"accuracy": 85.0, "loss": 0.4}))
        return
    import stio  # tests/stio.py: safetensors by hand
    tensors = sorted((k, v) for k, v in stio.load(model).items() if v.ndim == 2 and not k.startswith("head"))  # merged, not private
    _, w = tensors[len(task) % len(tensors)]  # rot90 and flip_v: different tensors
    print("scoring", task, "on", model, file=sys.stderr)
    print(json.dumps({"perplexity": math.exp(8.0 * float(abs(w).mean()))}))


def worker(both=False):
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("mapmerge") == "shutdown":
            break
        if msg.get("mapmerge") == "hello":
            sys.stdout.write(json.dumps({"hello": "metric_scorer", "protocol": 1}) + "\n")
            sys.stdout.flush()
            continue
        c, out = msg["coefficients"], {}
        for k, t in enumerate(msg["tasks"]):
            p = [0.3 + 0.4 * (k == j) for j in range(len(c))]
            acc = 0.95 - sum((a - b) ** 2 for a, b in zip(c, p)) / 2
            if (all(x > 0.85 for x in c) if both else c[0] > 0.85):
                acc = float("nan")
            out[t["name"]] = {"accuracy": acc, "loss": 1 - acc}
        sys.stdout.write(json.dumps({"id": msg["id"], "metrics": out}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker(both=sys.argv[2:3] == ["both"])
    else:
        command(*sys.argv[1:4])
