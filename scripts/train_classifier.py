"""Train the MNIST feature network used by FID/IS and write it into the package.

Seeded and deterministic on CPU. Writes ``ldmiss/metrics/mnist_classifier.safetensors`` and prints
its SHA-256, which must be recorded in ``ldmiss/metrics/features.py`` (CLASSIFIER_SHA256).
Usage: ``python scripts/train_classifier.py [--epochs 4] [--seed 0] [--data-dir DIR]``
"""
from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch.nn import functional as F
from tqdm.auto import tqdm

from ldmiss.data import load_mnist
from ldmiss.nets import MNISTClassifier

OUT = Path(__file__).resolve().parents[1] / "ldmiss" / "metrics" / "mnist_classifier.safetensors"


def shift(x: torch.Tensor, g: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (light augmentation)."""
    dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=g).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    tr, te = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    x = torch.from_numpy(tr.images).float() / 255
    y = torch.from_numpy(tr.labels)
    net = MNISTClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    steps = args.epochs * (len(x) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    start = time.perf_counter()
    bar = tqdm(total=steps, desc="classifier")
    for _ in range(args.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(len(x) // args.batch_size):
            idx = perm[i * args.batch_size:(i + 1) * args.batch_size]
            loss = F.cross_entropy(net(shift(x[idx], g)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    net.eval()
    with torch.inference_mode():
        xt = torch.from_numpy(te.images).float() / 255
        acc = (net(xt).argmax(1) == torch.from_numpy(te.labels)).float().mean().item()
    out = Path(args.out)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out),
              metadata={"test_accuracy": f"{acc:.4f}", "epochs": str(args.epochs), "seed": str(args.seed)})
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"test accuracy {acc:.4f}; {time.perf_counter() - start:.0f} s; wrote {out}\nSHA-256 {digest}")


if __name__ == "__main__":
    main()
