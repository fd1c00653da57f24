#!/usr/bin/env python3
"""PyTorch twin of sgdyn's benchmark models, driven by scripts/bench.

Builds the same network as sgdyn's models package (same shapes, float32,
batch and plain SGD step) and answers commands on stdin, one per line:

    run K   -> runs K training steps, prints {"times_ms": [...]}
    stats   -> prints {"rss_mb": peak resident set size}
    reset   -> prints {} (the Go side restarts its allocation count)
    quit

Use Debian's python3-torch (1.13) with
MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736,
which PyTorch needs on this machine for stable timings.
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class CNN(nn.Module):
    def __init__(self, c, h, w, width, hidden, classes):
        super().__init__()
        ch = [c, width, 2 * width, 4 * width]
        self.convs = nn.ModuleList(nn.Conv2d(ch[i], ch[i + 1], 3, padding=1) for i in range(3))
        self.hidden = nn.Linear(ch[3] * (h // 8) * (w // 8), hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 2)
        return self.out(F.relu(self.hidden(x.flatten(1))))


class MLP(nn.Module):
    def __init__(self, inputs, hidden, classes):
        super().__init__()
        sizes = [inputs] + hidden + [classes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x))
        return self.layers[-1](x)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.proj = (nn.Linear(d, d) for _ in range(4))
        self.fc, self.mproj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, mask):
        n, t, d = x.shape
        dh = d // self.heads
        h = self.ln1(x)
        split = lambda z: z.view(n, t, self.heads, dh).transpose(1, 2)
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        s = q @ k.transpose(-1, -2) / math.sqrt(dh) + mask
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(n, t, d)
        x = x + self.proj(o)
        return x + self.mproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Transformer(nn.Module):
    def __init__(self, vocab, d, heads, layers, context):
        super().__init__()
        self.tok = nn.Parameter(torch.randn(vocab, d))
        self.pos = nn.Parameter(torch.randn(context, d))
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.lnf = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        self.register_buffer("mask", torch.triu(torch.full((context, context), -1e9), 1))

    def forward(self, tokens):
        x = self.tok[tokens] + self.pos
        for b in self.blocks:
            x = b(x, self.mask)
        return self.head(self.lnf(x)).flatten(0, 1)


def build(name):
    """Returns the model, its input and its labels for a benchmark name."""
    g = torch.Generator().manual_seed(1)
    if name in ("cnn", "cnn-plain"):
        n = 128
        return CNN(3, 32, 32, 16, 64, 10), torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    if name == "mlp":
        n = 128
        return MLP(3072, [64], 10), torch.randn(n, 3072, generator=g), torch.randint(0, 10, (n,), generator=g)
    if name == "tiny-mlp":
        n = 32
        return MLP(36, [8], 10), torch.randn(n, 36, generator=g), torch.randint(0, 10, (n,), generator=g)
    if name in ("transformer", "tiny-transformer"):
        n, vocab, d, heads, layers, t = (32, 65, 64, 4, 2, 64) if name == "transformer" else (32, 25, 8, 2, 1, 16)
        return (Transformer(vocab, d, heads, layers, t),
                torch.randint(0, vocab, (n, t), generator=g), torch.randint(0, vocab, (n * t,), generator=g))
    raise SystemExit(f"torch_step.py: unknown model {name!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, x, y = build(args.model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "run":
            times = []
            for _ in range(int(cmd[1])):
                t0 = time.perf_counter()
                step()
                times.append((time.perf_counter() - t0) * 1e3)
            print(json.dumps({"times_ms": times}), flush=True)
        elif cmd[0] == "stats":
            print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
        elif cmd[0] == "reset":
            print("{}", flush=True)
        elif cmd[0] == "quit":
            return


if __name__ == "__main__":
    main()
