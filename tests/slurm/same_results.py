"""same_results.py A.h5 B.h5: every dataset of two results.h5 files equal to the bit.

Attributes are ignored (they hold times, rank counts and run folders). Prints one line per
difference as "FAIL: ..." and exits 1; exits 0 with a summary line when all datasets agree."""
import sys

import h5py
import numpy as np


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, np.asarray(obj[()])) if isinstance(obj, h5py.Dataset) else None)
    return out


def differences(a, b):
    """one message per difference between the datasets of a and b (empty: the same bits); also used
    by the tests that compare runs at several rank counts"""
    da, db = datasets(a), datasets(b)
    bad = []
    if sorted(da) != sorted(db):
        bad.append(f"{a} and {b} hold different datasets: {sorted(set(da) ^ set(db))} in only one of them")
    for k in sorted(set(da) & set(db)):
        x, y = da[k], db[k]
        if x.dtype == object or y.dtype == object:  # variable-length strings: compare values
            same = x.shape == y.shape and list(x.ravel()) == list(y.ravel())
        else:  # bytes, so that NaNs compare equal and -0.0 differs from 0.0
            same = x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes()
        if not same:
            bad.append(f"dataset /{k} differs: {x.dtype}{x.shape} {x.ravel()[:4]} vs {y.dtype}{y.shape} {y.ravel()[:4]}")
    return bad


def main(a, b):
    bad = differences(a, b)
    for m in bad:
        print("FAIL:", m)
    if not bad:
        print(f"same bits: all {len(datasets(a))} datasets of {a} and {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: same_results.py A.h5 B.h5")
    sys.exit(main(sys.argv[1], sys.argv[2]))
