"""Read a mapmerge run folder (results.h5, front.csv, manifest.json, run.log) into one object that
plot_front.py and report.py share. Only reads; every part that a run may lack is None.

Where each thing comes from:
  tasks, method, seed ...      root attributes of results.h5 (the manifest repeats them)
  samples                      /samples/{coeffs,accuracy,loss,task,round}; a run of another metric
                               (-map_metric, root attribute `metric`) has /samples/metric instead
  metric                       root attribute `metric` (JSON: name, direction, lo, hi); absent: accuracy
  predicted front              /pareto/{coeffs,predicted}; its re-evaluated points /pareto/{real,real_index}
  real front                   /pareto/real_front (the run's own non-dominated set of every model
                               evaluated on all tasks); nested runs lack it: computed here the same way
  pick, best evaluated         /pick/*
  baselines                    the run stores no separate metrics of the fine-tuned and pretrained
                               models; they are the evaluated models at c = e_i (theta_pre + tau_i =
                               theta_i) and c = 0, when the design holds those corners
  merge tree                   /nested/{tree,coeffs} (nested runs)
  time per phase               the run's printed summary, if its stdout was saved as run.log
"""
import json
import os
import re

import numpy as np
import h5py

from quality import non_dominated


class RunError(Exception):
    pass


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def _get(f, name):
    return f[name][...] if name in f else None


class Run:
    """Everything plot_front.py and report.py show about one run folder."""

    def __init__(self, path):
        self.dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        self.results = os.path.join(self.dir, "results.h5") if os.path.isdir(path) else path
        try:
            f = h5py.File(self.results, "r")
        except OSError as e:
            raise RunError(f"cannot open {self.results}: {e}")
        with f:
            self.attrs = {k: _text(v) for k, v in f.attrs.items()}
            self.metric = self._metric()
            values = "samples/" + ("accuracy" if self.default_metric else "metric")
            if "tasks" not in f or values not in f:
                raise RunError(f"{self.results} is not the results.h5 of a mapmerge run (no /tasks or /{values})")
            self.tasks = [_text(t) for t in f["tasks"][...]]
            self.T = len(self.tasks)
            self.method = self.attrs.get("method", "map")
            self.C = f["samples/coeffs"][...]
            self.A = f[values][...]  # the metric's values, in its own units and direction
            self.failed_samples = [int(i) for i in np.ravel(_get(f, "samples/failed"))] if "samples/failed" in f else []
            self.L = _get(f, "samples/loss")
            st = _get(f, "samples/task")
            self.sample_task = st.astype(int) if st is not None else np.full(len(self.A), -1)
            self.sample_round = _get(f, "samples/round")
            self.P = _get(f, "pareto/predicted")
            self.P_coeffs = _get(f, "pareto/coeffs")
            self.R = _get(f, "pareto/real")
            ri = _get(f, "pareto/real_index")
            self.real_index = ri.astype(int) if ri is not None else None
            self.pick = {k: f["pick"][k][...] for k in f["pick"]} if "pick" in f else {}
            self.diag = {}
            for kind in ("accuracy", "loss", "metric"):
                g = f"surrogate/{kind}"
                if g + "/diagnostics" in f:
                    cols = _text(f[g].attrs.get("diagnostics_columns", "")).split(",")
                    self.diag[kind] = (cols, f[g + "/diagnostics"][...], _text(f[g].attrs.get("link", "")))
            self.tree = _get(f, "nested/tree")
            self.tree_columns = _text(f["nested"].attrs.get("tree_columns", "")).split(",") if "nested" in f else None
            self.tree_coeffs = _get(f, "nested/coeffs")
            rf = _get(f, "pareto/real_front")
            rfc = _get(f, "pareto/real_front_coeffs")
            self.datasets = []
            f.visititems(lambda n, o: self.datasets.append((n, o.shape, str(o.dtype))) if isinstance(o, h5py.Dataset) else None)
        self.real_front_source = "/pareto/real_front"
        if rf is None:
            rf, rfc = self._real_front_of_all()
            self.real_front_source = "computed: non-dominated among the samples evaluated on every task and the pick"
        self.real_front, self.real_front_coeffs = rf, rfc
        self.manifest = self._json("manifest.json")
        self.front_csv = self._front_csv()
        self.phase_times = self._phase_times()
        self.summary_hypervolumes = self._summary_hypervolumes()
        self.baselines = self._baselines()

    def _metric(self):
        """the run's metric: name, direction (higher|lower), lo, hi (None when open); accuracy by default"""
        m = {"name": "accuracy", "direction": "higher", "lo": 0.0, "hi": 1.0}
        if "metric" in self.attrs:
            try:
                got = json.loads(self.attrs["metric"])
            except ValueError as e:
                raise RunError(f"{self.results}: root attribute metric is not JSON ({e}): {self.attrs['metric']!r}")
            m.update({k: got.get(k) for k in ("spec", "name", "direction", "lo", "hi") if k in got})
        # the default's own names: a default run reads as it did before -map_metric existed
        self.default_metric = m["name"] == "accuracy" and m["direction"] == "higher" and m["lo"] == 0 and m["hi"] == 1
        self.sign = -1.0 if m["direction"] == "lower" else 1.0  # dominance on sign * value: a front of maxima
        self.short = "acc" if self.default_metric else m["name"]  # front.csv's column stem (pred_<short>_<task>)
        return m

    def label(self, task=None):
        """an axis label: 'accuracy rot90', or 'loss rot90 (lower is better)'"""
        s = self.metric["name"] + (f" {task}" if task is not None else "")
        return s if self.default_metric else s + f" ({self.metric['direction']} is better)"

    def hypervolume_ref(self):
        """the worst end of the metric's range, or None (open range: no hypervolume, as the run's summary)"""
        worst = self.metric["hi"] if self.sign < 0 else self.metric["lo"]
        return None if worst is None else np.full(self.T, float(worst))

    def _json(self, name):
        p = os.path.join(self.dir, name)
        try:
            with open(p) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    def evaluated(self):
        """(coeffs, accuracies) of every model evaluated on all tasks: samples, re-evaluations, pick"""
        full = (self.sample_task < 0) & np.all(np.isfinite(self.A), axis=1)
        C, A = [self.C[full]], [self.A[full]]
        if self.R is not None and self.P_coeffs is not None and self.real_index is not None:
            C.append(self.P_coeffs[self.real_index])
            A.append(self.R)
        if "real" in self.pick and "coeffs" in self.pick:
            C.append(self.pick["coeffs"].reshape(-1, self.T))
            A.append(self.pick["real"].reshape(-1, self.T))
        C, A = np.vstack(C), np.vstack(A)
        ok = np.all(np.isfinite(A), axis=1)  # a failed re-evaluation or pick keeps NaN: no model to show
        return C[ok], A[ok]

    def _real_front_of_all(self):
        C, A = self.evaluated()
        F = self.sign * non_dominated(self.sign * A)
        idx = [int(np.flatnonzero(np.all(A == p, axis=1))[0]) for p in F]
        return F, C[idx]

    def _baselines(self):
        """{'fine-tuned <task>': accuracies, 'pretrained': accuracies} from the evaluated corners"""
        C, A = self.evaluated()
        out = {}
        for t in range(self.T):
            e = np.zeros(self.T)
            e[t] = 1
            hit = np.flatnonzero(np.all(C == e, axis=1))
            if len(hit):
                out["fine-tuned " + self.tasks[t]] = A[hit[0]]
        hit = np.flatnonzero(np.all(C == 0, axis=1))
        if len(hit):
            out["pretrained"] = A[hit[0]]
        return out

    def _front_csv(self):
        """front.csv as (header, rows of strings); None when absent"""
        p = os.path.join(self.dir, "front.csv")
        if not os.path.exists(p):
            return None
        with open(p) as fh:
            lines = fh.read().splitlines()
        # mapmerge writes the names unquoted, one field per comma: split on commas, not csv's quote rules
        return lines[0].split(","), [ln.split(",") for ln in lines[1:] if ln]

    def _log(self):
        p = os.path.join(self.dir, "run.log")
        if not os.path.exists(p):
            return ""
        with open(p, errors="replace") as fh:
            return fh.read()

    def _phase_times(self):
        """{'setup': s, ...} from the summary line a run prints, if its stdout was kept as run.log"""
        m = re.findall(r"^time per phase:(.*)$", self._log(), re.M)
        if not m:
            return None
        return {k: float(v) for k, v in re.findall(r"(\w+) ([0-9.]+)s", m[-1])}

    def _summary_hypervolumes(self):
        """the hypervolumes of the run's printed summary (run.log), as printed"""
        log, out = self._log(), {}
        m = re.findall(r"^front: .*hypervolume \(accuracy, ref 0\): predicted (\S+), real \(\d+ re-evaluated\) (\S+)$", log, re.M)
        if m:
            out["predicted"], out["real"] = m[-1]
        m = re.findall(r"^real front \(non-dominated among all .*hypervolume (\S+)$", log, re.M)
        if m:
            out["real front"] = m[-1]
        return out or None

    def failed_points(self):
        """failed evaluations: /samples/failed (a -map_metric run records them) and samples meant for every
        task whose metrics are not finite"""
        bad = (self.sample_task < 0) & ~np.all(np.isfinite(self.A), axis=1)
        idx = sorted(set(np.flatnonzero(bad).tolist()) | set(self.failed_samples))
        return [(int(i), self.C[i]) for i in idx]

    def title(self):
        method = {"map": "MAP", "bayesian": "Bayesian MAP", "nested": "nested MAP"}.get(self.method, self.method)
        return f"{method}: " + ", ".join(self.tasks)
