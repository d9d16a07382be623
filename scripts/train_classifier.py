#!/usr/bin/env python
"""Train the evaluator's bundled classifier for one data set, from a fixed seed.

    python scripts/train_classifier.py --dataset mnist
    python scripts/train_classifier.py --dataset fashion-mnist --data-dir /path/to/fashion-mnist

Trains on the first 50,000 training images; the last 10,000 stay held out (the evaluator's
reference row uses them as "real samples"), and accuracy is reported on them and on the test set.
Writes src/mnistgan/assets/classifier-<dataset>.safetensors and a JSON beside it with the
accuracies, seed, sha256 and training time. Paste the printed sha256 into
mnistgan/evaluate/classifier.py (CLASSIFIERS) so the package pins the new weights.

Recipe: AdamW + one-cycle learning rate, batch 128, random shifts of up to 2 pixels (plus
horizontal flips for Fashion-MNIST, whose classes are mirror-symmetric), bf16 autocast on CPUs
that are fast at it. Bit-exact reproduction needs the same torch version, CPU kind and --threads.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mnistgan.data import load_images
from mnistgan.evaluator.classifier import Classifier, file_sha256, run_classifier, use_bf16
from mnistgan.files import write_json, write_with

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = 10_000  # last training images, never trained on
SLICE = 2000  # the test suite re-checks accuracy on the first 2000 test images


def shift(x: torch.Tensor, gen: torch.Generator, max_px: int = 2, flip: bool = False) -> torch.Tensor:
    """Random integer shifts of up to max_px pixels per image (zero fill); x (B, 1, 28, 28)."""
    b = x.shape[0]
    padded = F.pad(x[:, 0], (max_px,) * 4)  # (B, 28 + 2 max_px, 28 + 2 max_px)
    dy = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(28))[:, :, None]  # (B, 28, 1)
    cols = (dx[:, None] + torch.arange(28))[:, None, :]  # (B, 1, 28)
    out = padded[torch.arange(b)[:, None, None], rows, cols].unsqueeze(1)  # (B, 1, 28, 28)
    if flip:
        mirror = torch.rand(b, generator=gen) < 0.5
        out[mirror] = out[mirror].flip(-1)
    return out


def accuracy(images: torch.Tensor, labels: torch.Tensor, model: Classifier, bf16: bool) -> float:
    """Accuracy through the evaluator's own inference path (bf16 or float32 convolutions)."""
    model.eval()
    _, probs = run_classifier(model, images, torch.device("cpu"), bf16)
    return float((probs.argmax(1) == labels).double().mean())


def train(args) -> dict:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train_set = load_images(args.dataset, args.data_dir, "train", with_labels=True)
    test_set = load_images(args.dataset, args.data_dir, "test", with_labels=True)
    x_tr, y_tr = train_set.images[:-HELD_OUT], train_set.labels[:-HELD_OUT]
    x_val, y_val = train_set.images[-HELD_OUT:], train_set.labels[-HELD_OUT:]
    bf16 = use_bf16(torch.device("cpu")) and not args.fp32

    model = Classifier().to(memory_format=torch.channels_last)
    steps_per_epoch = len(x_tr) // args.batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch
    )
    flip = args.dataset == "fashion-mnist"
    start = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(x_tr), generator=gen)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = order[s * args.batch_size : (s + 1) * args.batch_size]
            x = shift(x_tr[idx].unsqueeze(1).float().div(255), gen, flip=flip)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(x).float(), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        val = accuracy(x_val, y_val, model, bf16)
        print(
            f"epoch {epoch:2d}  loss {total / steps_per_epoch:.4f}  held-out acc {val:.4f}  "
            f"{time.time() - start:.0f}s",
            flush=True,
        )
    seconds = time.time() - start
    model.eval()
    return {"model": model, "seconds": seconds, "bf16": bf16, "test": test_set, "val": (x_val, y_val)}


def save(args, result: dict) -> None:
    from safetensors.torch import save_file

    model = result["model"]
    out = Path(args.out or REPO / "src" / "mnistgan" / "assets" / f"classifier-{args.dataset}.safetensors")
    state = {
        k: v.detach().float().contiguous() if v.is_floating_point() else v.contiguous()
        for k, v in model.state_dict().items()
    }
    write_with(
        out,
        lambda tmp: save_file(state, str(tmp), metadata={"dataset": args.dataset, "seed": str(args.seed)}),
    )
    test = result["test"]
    x_val, y_val = result["val"]
    fp32_test = accuracy(test.images, test.labels, model, False)
    info = {
        "dataset": args.dataset,
        "file": out.name,
        "sha256": file_sha256(out),
        "bytes": out.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": accuracy(
            test.images, test.labels, model, result["bf16"]
        ),  # as the evaluator runs it
        "test_accuracy_fp32": fp32_test,
        "test_first_2000_correct_fp32": round(
            accuracy(test.images[:SLICE], test.labels[:SLICE], model, False) * SLICE
        ),
        "held_out_accuracy_fp32": accuracy(x_val, y_val, model, False),
        "trained_on": f"train[:{-HELD_OUT}] (first 50,000 images); train[-{HELD_OUT}:] held out",
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "bf16_autocast": result["bf16"],
        "threads": args.threads,
        "train_seconds": round(result["seconds"], 1),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "command": "python scripts/train_classifier.py " + " ".join(sys.argv[1:]),
    }
    write_json(out.with_suffix(".json"), info)
    print(json.dumps(info, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (bundled MNIST when omitted)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=4e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1 is kind to a shared machine)")
    p.add_argument("--fp32", action="store_true", help="train without bf16 autocast")
    p.add_argument("--out", default=None, help="weights file (default: the package's assets folder)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    save(args, train(args))


if __name__ == "__main__":
    main()
