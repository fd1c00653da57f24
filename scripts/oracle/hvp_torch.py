#!/usr/bin/python3
"""Checks sgdyn's CNN gradient and Hessian-vector products against PyTorch.

Reads the directory written by scripts/oracle/hvpcheck (params.npy, x.npy,
labels.npy, grad.npy, v.npy, hv.npy, layout.json), rebuilds the same CNN in
float64 PyTorch from the flat parameter vector, and compares

  * the mean cross-entropy loss and its gradient with grad.npy, and
  * H v by double backprop (grad of g.v with g from create_graph=True) with
    sgdyn's finite-difference products in hv.npy,

then reports how close the batch sits to the ReLU and max-pool kinks (where
the Hessian of the piecewise-smooth loss is not defined). Exits 1 if any
relative error exceeds --tol.

Needs Debian's python3-torch: run with /usr/bin/python3.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load(d, name):
    return np.load(os.path.join(d, name))


class FlatCNN:
    """sgdyn's CNN as a function of one flat parameter tensor.

    Layout (models/cnn.go, models/fused_cnn.go): convI.weight (Cout, Cin, 3,
    3) and convI.bias (Cout), cross-correlation with padding 1 as
    F.conv2d; dense layers are x @ W + b with W stored (in, out), the
    transpose of nn.Linear's; the flatten is C, H, W per example.
    """

    def __init__(self, layout):
        self.t = {t["Name"]: (t["Offset"], t["Size"], tuple(t["Shape"])) for t in layout}
        want = [f"conv{i}.{k}" for i in range(3) for k in ("weight", "bias")]
        want += ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
        if [t["Name"] for t in layout] != want:
            raise SystemExit(f"unexpected tensors {[t['Name'] for t in layout]}")
        off = 0
        for t in layout:
            if t["Offset"] != off or t["Size"] != math.prod(t["Shape"]):
                raise SystemExit(f"tensor {t['Name']} is not contiguous in the flat vector")
            off += t["Size"]
        self.size = off

    def p(self, w, name):
        o, n, shape = self.t[name]
        return w[o:o + n].view(shape)

    def logits(self, w, x, record=None):
        h = x
        for i in range(3):
            y = F.conv2d(h, self.p(w, f"conv{i}.weight"), self.p(w, f"conv{i}.bias"), padding=1)
            if record is not None:
                record.append(("pool", y.detach()))
            h = F.max_pool2d(F.relu(y), 2)
        h = h.flatten(1)
        z = h @ self.p(w, "hidden.weight") + self.p(w, "hidden.bias")
        if record is not None:
            record.append(("relu", z.detach()))
        return F.relu(z) @ self.p(w, "out.weight") + self.p(w, "out.bias")

    def loss_sum(self, w, x, y):
        return F.cross_entropy(self.logits(w, x), y, reduction="sum")


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def kink_margins(net, w, x, chunk):
    """Smallest distances to a kink over the batch, per stage.

    For a pool: |max| of its window after bias (its ReLU), and, when active,
    the gap between its two largest inputs (its argmax). For a hidden unit:
    |pre-activation|. Also counts how many lie within 1e-6 and 1e-3.
    """
    stats, ties = {}, {}

    def add(key, vals):
        s = stats.setdefault(key, [math.inf, 0, 0, 0])
        if vals.numel():
            s[0] = min(s[0], float(vals.min()))
            s[1] += int((vals < 1e-6).sum())
            s[2] += int((vals < 1e-3).sum())
        s[3] += vals.numel()

    with torch.no_grad():
        for lo in range(0, x.shape[0], chunk):
            rec = []
            net.logits(w, x[lo:lo + chunk], record=rec)
            stage = 0
            for kind, t in rec:
                if kind == "pool":
                    n, c, hh, ww = t.shape
                    win = t.view(n, c, hh // 2, 2, ww // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, hh // 2, ww // 2, 4)
                    top2 = win.topk(2, dim=-1).values
                    mx = top2[..., 0]
                    add(f"pool{stage} relu |max|", mx.abs().flatten())
                    gap = (top2[..., 0] - top2[..., 1])[mx > 0].flatten()
                    # An exact tie comes from two identical receptive
                    # fields (flat image regions): equal for every w, so
                    # not a kink. Count them apart from the real gaps.
                    ties[stage] = ties.get(stage, 0) + int((gap == 0).sum())
                    add(f"pool{stage} argmax gap (active)", gap[gap > 0])
                    stage += 1
                else:
                    add("hidden relu |z|", t.abs().flatten())
    return stats, ties


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="output directory of scripts/oracle/hvpcheck")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest relative error of H v accepted")
    ap.add_argument("--grad-tol", type=float, default=1e-10, help="largest relative error of the gradient accepted")
    ap.add_argument("--forward-tol", type=float, default=1e-6, help="largest relative error of the forward-difference H v (hv_forward.npy) accepted")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (at most 2 on the shared machine)")
    ap.add_argument("--chunk", type=int, default=128, help="examples per double-backprop pass (memory bound)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    d = args.dir
    with open(os.path.join(d, "layout.json")) as f:
        net = FlatCNN(json.load(f))
    meta = {}
    if os.path.exists(os.path.join(d, "meta.json")):
        with open(os.path.join(d, "meta.json")) as f:
            meta = json.load(f)
    w0 = torch.from_numpy(load(d, "params.npy"))
    x = torch.from_numpy(load(d, "x.npy"))
    y = torch.from_numpy(load(d, "labels.npy")).long()
    g_go = load(d, "grad.npy")
    V = load(d, "v.npy")
    HV = load(d, "hv.npy")
    HVu = load(d, "hv_unfrozen.npy") if os.path.exists(os.path.join(d, "hv_unfrozen.npy")) else None
    HVf = load(d, "hv_forward.npy") if os.path.exists(os.path.join(d, "hv_forward.npy")) else None
    n = x.shape[0]
    if w0.numel() != net.size or x.dtype != torch.float64 or tuple(x.shape[1:]) != (3, 32, 32):
        raise SystemExit("inputs do not match the layout")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {n} examples, {net.size} parameters, {V.shape[0]} vectors")

    # Loss and gradient, summed over chunks (each chunk's sum, divided by N).
    w = w0.clone().requires_grad_(True)
    t0 = time.perf_counter()
    loss = 0.0
    g = torch.zeros_like(w0)
    for lo in range(0, n, args.chunk):
        l = net.loss_sum(w, x[lo:lo + args.chunk], y[lo:lo + args.chunk]) / n
        (gc,) = torch.autograd.grad(l, w)
        loss += float(l)
        g += gc
    tg = time.perf_counter() - t0
    g = g.numpy()
    gerr = rel(g_go, g)
    print("\n== loss and gradient ==")
    if "loss" in meta:
        print(f"loss   sgdyn {meta['loss']:.15g}  torch {loss:.15g}  rel diff {abs(meta['loss'] - loss) / abs(loss):.3e}")
    else:
        print(f"loss   torch {loss:.15g}")
    print(f"grad   ||g|| sgdyn {np.linalg.norm(g_go):.10g}  torch {np.linalg.norm(g):.10g}  rel err {gerr:.3e}  (torch {tg:.2f} s)")
    for name, (o, sz, _) in net.t.items():
        e = rel(g_go[o:o + sz], g[o:o + sz]) if np.linalg.norm(g[o:o + sz]) > 0 else float(np.linalg.norm(g_go[o:o + sz]))
        print(f"  {name:14s} rel err {e:.3e}")

    # Hessian-vector products by double backprop.
    print("\n== Hessian-vector products ==")
    hdr = f"{'vec':>3}  {'||Hv|| torch':>13}  {'rel err':>10}  {'vHv sgdyn':>16}  {'vHv torch':>16}  {'vHv rel':>9}  {'torch s':>7}"
    if HVf is not None:
        hdr += f"  {'forward rel err':>15}"
    if HVu is not None:
        hdr += f"  {'unfrozen rel err':>16}"
    print(hdr)
    worst, worst_fwd = 0.0, 0.0
    for j in range(V.shape[0]):
        v = torch.from_numpy(V[j])
        t0 = time.perf_counter()
        hv = torch.zeros_like(w0)
        for lo in range(0, n, args.chunk):
            l = net.loss_sum(w, x[lo:lo + args.chunk], y[lo:lo + args.chunk]) / n
            (gc,) = torch.autograd.grad(l, w, create_graph=True)
            (hc,) = torch.autograd.grad(gc @ v, w)
            hv += hc
        th = time.perf_counter() - t0
        hv = hv.numpy()
        e = rel(HV[j], hv)
        worst = max(worst, e)
        a, b = float(V[j] @ HV[j]), float(V[j] @ hv)
        line = f"{j:>3}  {np.linalg.norm(hv):13.6e}  {e:10.3e}  {a:16.10e}  {b:16.10e}  {abs(a - b) / abs(b):9.2e}  {th:7.2f}"
        if HVf is not None:
            ef = rel(HVf[j], hv)
            worst_fwd = max(worst_fwd, ef)
            line += f"  {ef:15.3e}"
        if HVu is not None:
            line += f"  {rel(HVu[j], hv):16.3e}"
        print(line)
        if e > args.tol:
            print(f"     per tensor: " + ", ".join(
                f"{name} {rel(HV[j][o:o + sz], hv[o:o + sz]):.2e}" for name, (o, sz, _) in net.t.items()))

    print("\n== distance to kinks at w0 (smallest, and counts below 1e-6 / 1e-3, of all units) ==")
    stats, ties = kink_margins(net, w0, x, args.chunk)
    for k, (mn, c6, c3, tot) in stats.items():
        print(f"  {k:28s} min {mn:10.3e}   <1e-6: {c6:7d}   <1e-3: {c3:7d}   of {tot}")
    print("  exact argmax ties in active pools (identical receptive fields, not kinks): "
          + ", ".join(f"pool{s} {c}" for s, c in sorted(ties.items())))

    ok = worst <= args.tol and gerr <= args.grad_tol and worst_fwd <= args.forward_tol
    fwd = f"; forward H v {worst_fwd:.3e} (tol {args.forward_tol:g})" if HVf is not None else ""
    print(f"\nworst H v relative error {worst:.3e} (tol {args.tol:g}){fwd}; gradient {gerr:.3e} (tol {args.grad_tol:g}): {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
