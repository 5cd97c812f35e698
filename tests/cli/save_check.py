#!/usr/bin/env python3
"""tests/cli/save_check.py - `tilec run --save DIR` writes NumPy files that reproduce the run.

For each built-in kernel: run with --save, load every .npy with NumPy, recompute the output
from the saved inputs in float64 and compare with the saved output. Exits 77 without numpy.
"""
import json
import os
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("numpy not installed: skipped")
    sys.exit(77)

tilec, out = sys.argv[1], sys.argv[2]


def run(kernel, shape, sets=None):
    d = os.path.join(out, kernel)
    cmd = [tilec, "run", kernel, "--shape", shape, "--save", d, "--seed", "7"]
    if sets:
        cmd += ["--set", sets]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    meta = json.load(open(os.path.join(d, "problem.json")))
    arrays = {a["name"]: np.load(os.path.join(d, a["file"])).astype(np.float64)
              for a in meta["args"]}
    for a in meta["args"]:
        assert list(arrays[a["name"]].shape) == a["shape"], (a, arrays[a["name"]].shape)
    return arrays


def close(name, got, ref, tol):
    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
    print(f"{name}: relative error {err:.3g} (tol {tol})")
    assert err <= tol, name


a = run("matmul", "M=33,N=20,K=50", "BM=16,BN=16,BK=16")
close("matmul C", a["C"], a["A"] @ a["B"], 1.6e-2)

a = run("bsmatmul", "M=30,N=64,K=48,block=16,density=0.5", "BM=16")
close("bsmatmul Y", a["Y"], a["X"] @ a["W_dense"].T, 1.6e-2)

a = run("attention", "B=1,H=2,HKV=1,S=40,D=64,causal=1", "BM=16,BN=16")
q, k, v = a["Q"], a["K"], a["V"]
s = np.einsum("bhqd,bkd->bhqk", q, k[:, 0]) / np.sqrt(64)
s = np.where(np.tril(np.ones((40, 40), bool)), s, -np.inf)
p = np.exp(s - s.max(-1, keepdims=True))
close("attention O", a["O"], np.einsum("bhqk,bkd->bhqd", p / p.sum(-1, keepdims=True), v[:, 0]),
      1.6e-2)
close("attention LSE", a["LSE"], np.log(np.exp(s).sum(-1)), 1e-4)
print("ok")
