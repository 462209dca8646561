"""Train a dataset's metric network (the features of FID, the logits of IS) and write it into the package.

Seeded and deterministic on CPU. Writes ``ldmiss/metrics/<file>`` (``mnist_classifier.safetensors``,
``fashion-mnist_classifier.safetensors``) and prints its SHA-256 and test accuracy, which must be
recorded in the dataset's entry of ``METRIC_NETWORKS`` in ``ldmiss/metrics/features.py``.
Augmentation: random shifts of up to 2 pixels; for Fashion-MNIST also horizontal flips (clothes
are left–right symmetric, digits are not).
Usage: ``python scripts/train_classifier.py [--dataset mnist] [--epochs 4] [--seed 0] [--data-dir DIR]``
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

from ldmiss.data import load_dataset
from ldmiss.nets import ImageClassifier

METRICS_DIR = Path(__file__).resolve().parents[1] / "ldmiss" / "metrics"
FLIP = {"fashion-mnist"}


def augment(x: torch.Tensor, g: torch.Generator, flip: bool, max_shift: int = 2) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (one per batch), and per-image flips."""
    dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=g).tolist()
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if flip:
        f = torch.rand(len(x), generator=g) < 0.5
        x = torch.where(f.view(-1, 1, 1, 1), x.flip(3), x)
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None, help="default: ldmiss/metrics/<dataset>_classifier.safetensors")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    tr, te = load_dataset(args.dataset, "train", args.data_dir), load_dataset(args.dataset, "test", args.data_dir)
    x = torch.from_numpy(tr.images).float() / 255
    y = torch.from_numpy(tr.labels)
    mean, std = round(float(x.mean()), 4), round(float(x.std()), 4)  # recorded as such in METRIC_NETWORKS
    net = ImageClassifier(x.shape[1], int(y.max()) + 1, mean, std)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    steps = args.epochs * (len(x) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    start = time.perf_counter()
    bar = tqdm(total=steps, desc=f"classifier ({args.dataset})")
    for _ in range(args.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(len(x) // args.batch_size):
            idx = perm[i * args.batch_size:(i + 1) * args.batch_size]
            loss = F.cross_entropy(net(augment(x[idx], g, args.dataset in FLIP)), y[idx])
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
    out = Path(args.out) if args.out else METRICS_DIR / f"{args.dataset}_classifier.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out),
              metadata={"dataset": args.dataset, "test_accuracy": f"{acc:.4f}", "epochs": str(args.epochs),
                        "seed": str(args.seed), "mean": f"{mean:.4f}", "std": f"{std:.4f}"})
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"test accuracy {acc:.4f}; input mean {mean:.4f} std {std:.4f}; {time.perf_counter() - start:.0f} s; "
          f"wrote {out}\nSHA-256 {digest}")


if __name__ == "__main__":
    main()
