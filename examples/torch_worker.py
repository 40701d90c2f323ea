#!/usr/bin/python3
"""A ready PyTorch worker for `mapmerge run|eval -map_eval_type worker` (protocol 1, see
docs/evaluators-external.md). It scores the MLP classifiers of `mapmerge zoo`: encoder.<k>.weight
[out, in] / encoder.<k>.bias with a ReLU after each, then the task's private head.weight [C, H] /
head.bias [C]; softmax cross-entropy. Eval sets are safetensors with `inputs` F32 [n, d] and
`labels` I64/I32 [n] (what -map_eval_data lists).

usage: -map_eval_worker '/usr/bin/python3 examples/torch_worker.py [--device cuda] [--batch 256]'

It starts once, keeps the eval sets and heads on the device, and answers one JSON line per request:
- model mode: it loads the merged model file named by the request (F32, BF16 or F16, read by hand:
  Debian has no safetensors module);
- coefficients mode: at the hello it reads theta_pre and the task vectors from the HDF5 store
  (h5py) onto the device once, and merges theta = theta_pre + sum_k c_k tau_k itself per request.
Chatter goes to stderr (mapmerge appends it to eval-worker.log); stdout carries protocol lines only.
"""
import argparse
import json
import os
import re
import struct
import sys

import torch

PROTOCOL = 1
DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'F64': torch.float64,
          'I64': torch.int64, 'I32': torch.int32}


def log(*a):
    print('torch_worker:', *a, file=sys.stderr, flush=True)


def load_safetensors(path, device):
    """name -> tensor (its stored dtype) from a safetensors file: u64 header length, JSON header, raw data"""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    header.pop('__metadata__', None)
    out = {}
    for name, e in header.items():
        b, en = e['data_offsets']
        dt = DTYPES[e['dtype']]
        t = torch.frombuffer(data, dtype=dt, offset=b, count=(en - b) // torch.empty((), dtype=dt).element_size()) if en > b \
            else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e['shape']).to(device)
    return out


def encoder_keys(params):
    ks = [int(m.group(1)) for m in (re.match(r'encoder\.(\d+)\.weight$', n) for n in params) if m]
    return sorted(ks)


class Worker:
    def __init__(self, device, batch):
        self.device = torch.device(device)
        self.batch = batch
        self.sets = {}   # data file -> (inputs F32 [n, d], labels I64 [n]), loaded once
        self.heads = {}  # task -> private tensors
        self.store = None

    def data(self, path):
        """the eval set of a data file, read at its first use (mapmerge names the held-out sets too)"""
        if path not in self.sets:
            d = load_safetensors(path, self.device)
            self.sets[path] = (d['inputs'].float(), d['labels'].long())
            log(f'eval set {path}: {len(self.sets[path][1])} examples')
        return self.sets[path]

    def hello(self, msg):
        for t in msg['tasks']:
            if t.get('data'):
                self.data(t['data'])
            if t.get('private'):
                self.heads[t['name']] = {k: v.float() for k, v in load_safetensors(t['private'], self.device).items()}
        if msg['mode'] == 'coefficients':
            self.load_store(msg['store'], msg['coefficient_tasks'])
        log(f"ready on {self.device}: {len(self.sets)} eval sets, mode {msg['mode']}")
        # data_per_request: the data file of each request is the one scored, so mapmerge sends the
        # held-out test sets here too instead of starting a second worker
        return {'hello': 'torch_worker', 'protocol': PROTOCOL, 'device': str(self.device), 'data_per_request': True}

    def load_store(self, path, coef_tasks):
        import h5py
        import numpy as np
        with h5py.File(path, 'r') as f:
            def floats(ds, rows=None):
                a = ds[...] if rows is None else ds[rows, :]
                if ds.attrs.get('dtype', b'') in (b'bf16', 'bf16'):  # raw bfloat16 bits in uint16
                    a = (a.astype(np.uint32) << 16).view(np.float32)
                return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
            names = [s.decode() for s in f['tasks'][...]]
            rows = [names.index(t) for t in coef_tasks]
            self.pre = floats(f['pretrained']).to(self.device)
            self.tau = torch.stack([floats(f['task_vectors'], r) for r in rows]).to(self.device)
            self.index = [(n.decode(), int(o), int(k), [int(x) for x in s[:d]]) for n, o, k, s, d in
                          zip(f['tensors/name'][...], f['tensors/offset'][...], f['tensors/numel'][...], f['tensors/shape'][...],
                              f['tensors/ndim'][...])]

    def merged(self, req):
        if 'model' in req:
            return {k: v.float() for k, v in load_safetensors(req['model'], self.device).items()}
        c = torch.tensor(req['coefficients'], dtype=torch.float32, device=self.device)
        theta = self.pre.clone()
        for k in range(len(c)):  # theta_pre + sum_k c_k tau_k, in task order, F32
            theta += c[k] * self.tau[k]
        return {n: theta[o:o + k].reshape(s) for n, o, k, s in self.index}

    @torch.no_grad()
    def evaluate(self, req):
        params = self.merged(req)
        ks = encoder_keys(params)
        metrics = {}
        for t in req['tasks']:
            name = t['name']
            X, y = self.data(t['data'])
            p = dict(params, **self.heads.get(name, {}))
            loss_sum, correct = 0.0, 0
            for b in range(0, len(y), self.batch):
                h = X[b:b + self.batch]
                for k in ks:
                    h = torch.relu(h @ p[f'encoder.{k}.weight'].T + p[f'encoder.{k}.bias'])
                z = (h @ p['head.weight'].T + p['head.bias']).double()
                yb = y[b:b + self.batch]
                loss_sum += float(torch.nn.functional.cross_entropy(z, yb, reduction='sum'))
                correct += int((z.argmax(dim=1) == yb).sum())
            n = len(y)
            metrics[name] = {'accuracy': correct / n, 'loss': loss_sum / n, 'correct': correct, 'count': n}
        return {'id': req['id'], 'metrics': metrics}


def serve(worker):
    """the protocol loop: one JSON line in, one JSON line out, until shutdown or end of input"""
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg.get('mapmerge') == 'shutdown':
            break
        try:
            ans = worker.hello(msg) if msg.get('mapmerge') == 'hello' else worker.evaluate(msg)
        except Exception as e:  # reported, so mapmerge names the request; it restarts us once
            log(f'error: {e!r}')
            ans = {'id': msg.get('id'), 'error': f'{type(e).__name__}: {e}'}
        sys.stdout.write(json.dumps(ans) + '\n')
        sys.stdout.flush()
    log('shutdown')
    sys.stderr.flush()
    os._exit(0)  # skip the interpreter's teardown of torch (~1 s on a busy CPU): mapmerge waits for our exit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--threads', type=int, default=1, help='CPU threads (the MPI ranks share the cores)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    serve(Worker(a.device, a.batch))


if __name__ == '__main__':
    main()
