#!/usr/bin/env python3
"""Checks a transformer's dense Hessian from sgdyn (scripts/oracle/densecheck)
against PyTorch's exact double backprop, in float64.

    python3 scripts/oracle/hessian_torch.py DIR [--tol 1e-8]

It rebuilds the model functionally from the flat parameter vector and
layout.json (sgdyn's layout: y = x W with W of shape (in, out), LayerNorm
with eps 1e-5, causal attention scaled by 1/sqrt(head width), GELU tanh or
erf, mean cross-entropy over all tokens), checks that the loss matches,
takes the exact Hessian with torch.autograd.functional.hessian and
reports, for every h-<step>.npy, the largest entry error and the
eigenvalue error relative to max |lambda|. Exits 1 if the best step's
error exceeds --tol. Needs only torch (numpy is not required).
"""
import argparse
import ast
import json
import math
import os
import struct
import sys

import torch


def load_npy(path):
    b = open(path, "rb").read()
    if b[:6] != b"\x93NUMPY":
        raise SystemExit(f"{path}: not a .npy file")
    major = b[6]
    hl = struct.unpack("<H" if major == 1 else "<I", b[8:10] if major == 1 else b[8:12])[0]
    start = 10 if major == 1 else 12
    h = ast.literal_eval(b[start:start + hl].decode("latin1"))
    if h["descr"] != "<f8" or h["fortran_order"]:
        raise SystemExit(f"{path}: want little-endian float64 in C order, got {h}")
    n = math.prod(h["shape"])
    data = struct.unpack(f"<{n}d", b[start + hl:start + hl + 8 * n])
    return torch.tensor(data, dtype=torch.float64).reshape(h["shape"])


def build(layout):
    tr = layout["transformer"]
    offs = {t["Name"]: (t["Offset"], t["Shape"]) for t in layout["tensors"]}
    d, heads, layers = tr["width"], tr["heads"], tr["layers"]
    dh = d // heads
    gelu = tr.get("gelu") or "tanh"

    def P(w, name):
        o, shape = offs[name]
        return w[o:o + math.prod(shape)].reshape(shape)

    def has(name):
        return name in offs

    def lin(w, x, name):
        y = x @ P(w, name + ".weight")
        if has(name + ".bias"):
            y = y + P(w, name + ".bias")
        return y

    def ln(w, x, name):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * P(w, name + ".gain") + P(w, name + ".bias")

    def act(h):
        if gelu == "erf":
            return 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
        return 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))

    def loss(w, tokens, labels):
        n, t = tokens.shape
        x = P(w, "tok.embedding")[tokens] + P(w, "pos.embedding")[:t][None]
        mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
        for l in range(layers):
            p = f"block{l}."
            y = ln(w, x, p + "ln1")
            q, k, v = (lin(w, y, p + "attn." + s) for s in "qkv")
            outs = []
            for hd in range(heads):
                sl = slice(hd * dh, (hd + 1) * dh)
                s = q[..., sl] @ k[..., sl].transpose(-1, -2) / math.sqrt(dh)
                s = s.masked_fill(~mask, float("-inf"))
                outs.append(torch.softmax(s, -1) @ v[..., sl])
            att = torch.cat(outs, -1)
            if heads * dh < d:
                att = torch.cat([att, torch.zeros(n, t, d - heads * dh, dtype=att.dtype)], -1)
            x = x + lin(w, att, p + "attn.proj")
            y = ln(w, x, p + "ln2")
            x = x + lin(w, act(lin(w, y, p + "mlp.fc")), p + "mlp.proj")
        logits = lin(w, ln(w, x, "lnf"), "head")
        return torch.nn.functional.cross_entropy(logits.reshape(n * t, -1), labels.reshape(-1))

    return loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--tol", type=float, default=1e-8, help="largest entry error of the best step, relative to max |H_ij|")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    layout = json.load(open(os.path.join(a.dir, "layout.json")))
    w = load_npy(os.path.join(a.dir, "params.npy"))
    tokens = load_npy(os.path.join(a.dir, "tokens.npy")).long()
    labels = load_npy(os.path.join(a.dir, "labels.npy")).long()
    f = build(layout)
    print(f"{w.numel()} parameters, {tokens.shape[0]} windows of {tokens.shape[1]}, loss {f(w, tokens, labels).item():.12g}")
    h = torch.autograd.functional.hessian(lambda v: f(v, tokens, labels), w)
    h = 0.5 * (h + h.T)
    ev = torch.linalg.eigvalsh(h)
    lmax = ev.abs().max().item()
    scale = h.abs().max().item()
    print(f"exact Hessian: max |H_ij| {scale:.6g}, lambda {ev[0].item():.6g} .. {ev[-1].item():.6g}")
    best = math.inf
    for step in layout["steps"]:
        name = f"h-{step:g}.npy"
        path = os.path.join(a.dir, name)
        if not os.path.exists(path):
            # Go's %g and Python's differ for some steps (1e-05 vs 1e-5).
            cands = [x for x in os.listdir(a.dir) if x.startswith("h-") and abs(float(x[2:-4]) - step) <= 1e-12 * step]
            path = os.path.join(a.dir, cands[0])
        g = load_npy(path)
        g = torch.triu(g) + torch.triu(g, 1).T  # gonum's SymDense stores the upper triangle
        err = (g - h).abs().max().item() / scale
        eerr = (torch.linalg.eigvalsh(g) - ev).abs().max().item() / lmax
        best = min(best, err)
        print(f"step {step:g}: largest entry error {err:.3g} of max |H_ij|, eigenvalue error {eerr:.3g} of max |lambda|")
    print("PASS" if best <= a.tol else "FAIL", f"(best {best:.3g}, tolerance {a.tol:g})")
    sys.exit(0 if best <= a.tol else 1)


if __name__ == "__main__":
    main()
