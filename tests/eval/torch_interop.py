"""PyTorch interop: a torch MLP (module.encoder = Sequential(Linear, ReLU, Linear, ReLU), module.head
= Linear), pretrained + 3 perturbed "fine-tuned" copies with their own heads, saved as safetensors
by hand; `mapmerge import`, then `mapmerge eval` at -n 1 and 2 on several coefficient vectors;
the metrics must match PyTorch's on theta_pre + sum_i c_i tau_i: equal correct counts (except on
samples whose two top logits are within 1e-5 relative, where rounding may flip the argmax; there
are none in this data), mean loss within 1e-5 relative, and the -n 1 and -n 2 CSVs must be identical."""
import csv
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stio  # noqa: E402  (tests/stio.py)

MAPMERGE = os.environ['MAPMERGE']
MPIEXEC = os.environ.get('MPIEXEC', 'mpiexec')
D_IN, H1, H2 = 48, 40, 24
CLASSES = [4, 6, 5]
NSAMP = [900, 600, 333]
COEFFS = [[0, 0, 0], [1, 0, 0], [0.3, 0.3, 0.3], [0.5, 0.2, 0.8], [1.2, -0.3, 0.6], [0.05, 0.9, 0.1]]


class Net(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(D_IN, H1), nn.ReLU(), nn.Linear(H1, H2), nn.ReLU())
        self.head = nn.Linear(H2, C)

    def forward(self, x):
        return self.head(self.encoder(x))


def sd_numpy(m):
    return {k: v.detach().numpy().astype(np.float32) for k, v in m.state_dict().items()}


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    if p.returncode:
        print(' '.join(cmd), '\n', p.stdout[-3000:], p.stderr[-3000:])
        print('FAIL: command failed')
        sys.exit(1)
    return p.stdout


def main():
    torch.manual_seed(7)
    fails = 0
    with tempfile.TemporaryDirectory(dir=os.environ.get('MAP_BINARY_DIR')) as d:
        pre = Net(CLASSES[0])
        stio.save(f'{d}/pre.safetensors', sd_numpy(pre))
        tasks, models = [], []
        g = torch.Generator().manual_seed(11)
        for t, C in enumerate(CLASSES):
            m = Net(C)
            with torch.no_grad():
                for (n, p), (_, p0) in zip(m.encoder.named_parameters(), pre.encoder.named_parameters()):
                    p.copy_(p0 + 0.2 * torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
            models.append(m)
            tasks.append(f't{t}')
            stio.save(f'{d}/t{t}.safetensors', sd_numpy(m))
            x = torch.randn(NSAMP[t], D_IN, generator=g)
            y = torch.randint(0, C, (NSAMP[t],), generator=g)
            stio.save(f'{d}/t{t}_val.safetensors', {'inputs': x.numpy(), 'labels': y.numpy().astype(np.int64)})
        with open(f'{d}/coeffs.csv', 'w') as f:
            f.write(','.join(tasks) + '\n')
            for c in COEFFS:
                f.write(','.join(repr(float(v)) for v in c) + '\n')
        run([MPIEXEC, '-n', '2', MAPMERGE, 'import', '-map_pretrained', f'{d}/pre.safetensors', '-map_tasks', ','.join(tasks),
             '-map_task_models', ','.join(f'{d}/{t}.safetensors' for t in tasks), '-map_store', f'{d}/store.h5'])
        data = ','.join(f'{d}/{t}_val.safetensors' for t in tasks)
        outs = {}
        for np_ in (1, 2):
            run([MPIEXEC, '-n', str(np_), MAPMERGE, 'eval', '-map_store', f'{d}/store.h5', '-map_eval_data', data,
                 '-map_coeffs', f'{d}/coeffs.csv', '-map_output', f'{d}/out{np_}.csv'])
            outs[np_] = open(f'{d}/out{np_}.csv').read()
            assert os.path.exists(f'{d}/out{np_}.h5'), 'no HDF5 output'
        if outs[1] != outs[2]:
            print('FAIL: -n 1 and -n 2 results differ')
            fails += 1
        rows = list(csv.DictReader(open(f'{d}/out1.csv')))
        assert len(rows) == len(COEFFS)
        pre_sd = pre.state_dict()
        worst = 0.0
        flips = 0
        for i, c in enumerate(COEFFS):
            for t, name in enumerate(tasks):
                # merged encoder in float32, as mapmerge does: pre + sum_i c_i (task_i - pre)
                m = Net(CLASSES[t])
                sd = {}
                for k, v0 in pre_sd.items():
                    if k.startswith('encoder.'):
                        acc = v0.clone()
                        for j, mj in enumerate(models):
                            acc = acc + torch.tensor(c[j], dtype=torch.float32) * (mj.state_dict()[k] - v0)
                        sd[k] = acc
                    else:
                        sd[k] = models[t].state_dict()[k]
                m.load_state_dict(sd)
                ev = stio.load(f'{d}/{name}_val.safetensors')
                with torch.no_grad():
                    z = m(torch.from_numpy(ev['inputs'].copy()))
                    y = torch.from_numpy(ev['labels'].copy())
                    correct = int((z.argmax(dim=1) == y).sum())
                    top = z.topk(2, dim=1).values  # near-ties, where float rounding may flip the argmax
                    near = int(((top[:, 0] - top[:, 1]) <= 1e-5 * top[:, 0].abs()).sum())
                    loss = float(torch.nn.functional.cross_entropy(z.double(), y))
                acc_mm = float(rows[i][f'acc_{name}'])
                loss_mm = float(rows[i][f'loss_{name}'])
                n = len(y)
                rel = abs(loss_mm - loss) / abs(loss)
                worst = max(worst, rel)
                flips += abs(round(acc_mm * n) - correct)
                if abs(round(acc_mm * n) - correct) > near or rel > 1e-5:
                    print(f'FAIL: c={c} task {name}: mapmerge acc {acc_mm} ({round(acc_mm * n)}/{n}) loss {loss_mm}; '
                          f'torch {correct}/{n} loss {loss} (rel {rel:.3g})')
                    fails += 1
        print(f'{len(COEFFS)} vectors x {len(tasks)} tasks: max relative loss difference vs PyTorch {worst:.3g}; '
              f'correct counts differ by {flips} sample(s) in all (near-ties only); -n 1 and -n 2 {"identical" if outs[1] == outs[2] else "differ"}')
    print('FAILED' if fails else 'OK')
    sys.exit(1 if fails else 0)


if __name__ == '__main__':
    main()
