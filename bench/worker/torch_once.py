"""Today's `command` path with a PyTorch scorer: one process per (model, task) that imports torch,
loads the model and the eval set and scores one task with examples/torch_worker.py's own code.
usage: torch_once.py --model M.safetensors --task NAME --data EVAL.safetensors"""
import argparse, json, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import torch  # noqa: E402
import torch_worker  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--model', required=True)
ap.add_argument('--task', required=True)
ap.add_argument('--data', required=True)
a = ap.parse_args()
torch.set_num_threads(1)
w = torch_worker.Worker('cpu', 256)
params = {k: v.float() for k, v in torch_worker.load_safetensors(a.model, w.device).items()}
w.heads[a.task] = {k: params.pop(k) for k in list(params) if k.startswith('head.')}
w.merged = lambda req: params
ans = w.evaluate({'id': 0, 'tasks': [{'name': a.task, 'data': a.data}]})
print(json.dumps(ans['metrics'][a.task]))
