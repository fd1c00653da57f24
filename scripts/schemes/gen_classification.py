#!/usr/bin/env python3
"""Generated classification CSV for the sampling-scheme pilot (issue 17).

Rows x1..xd,label: d standard-normal features and a label from a fixed
random teacher (a tanh layer then argmax, plus label noise), so a tanh MLP
can fit it without reaching zero loss. Only the standard library; the same
seed gives the same file.
"""
import argparse
import math
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--flip", type=float, default=0.1, help="share of labels replaced by a uniform one")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    w1 = [[rng.gauss(0, 1 / math.sqrt(a.features)) for _ in range(a.features)] for _ in range(a.hidden)]
    w2 = [[rng.gauss(0, 1) for _ in range(a.hidden)] for _ in range(a.classes)]
    print(",".join([f"x{j + 1}" for j in range(a.features)] + ["label"]))
    for _ in range(a.rows):
        x = [rng.gauss(0, 1) for _ in range(a.features)]
        h = [math.tanh(sum(wi * xi for wi, xi in zip(row, x))) for row in w1]
        z = [sum(wi * hi for wi, hi in zip(row, h)) for row in w2]
        y = max(range(a.classes), key=lambda k: z[k])
        if rng.random() < a.flip:
            y = rng.randrange(a.classes)
        print(",".join(f"{v:.6f}" for v in x) + f",{y}")


if __name__ == "__main__":
    main()
