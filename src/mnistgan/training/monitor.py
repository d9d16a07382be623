"""What the loop reports: running stats, log.jsonl rows, console lines, alarms, evaluation
during training (`--eval-every`) and TensorBoard (`--tensorboard`).

Rows of log.jsonl (one JSON object a line, `kind` says which):
  tick   every --log-every steps: epoch_progress, step, images, loss_d, loss_g, d_acc, images_per_s
  epoch  after each epoch: epoch_progress, the epoch means, images_per_s, partial (time budget / interrupt)
  eval   every --eval-every epochs: the evaluator's metrics of G (G_ema when on)
  alarm  something looks wrong: what, and at which step

TensorBoard (`RUN/tensorboard`) holds the same numbers, every event at the training step of its
log.jsonl row (the values as logged, rounded to 6 decimals, stored as float32):
  train/loss_d, train/loss_g, train/d_acc   each tick row (a VAE: train/loss_recon, train/loss_kl)
  eval/<metric>                             each eval row: every number in it (fid, inception_score,
                                            classes_covered, precision, recall, ...; not the histogram)
  samples (image)                           each saved sample grid (samples/epoch_NNN.png), at the
                                            step its epoch ended: the same step as that epoch's eval row
A resumed run discards the events after the checkpoint's step, as it truncates log.jsonl there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from ..config import Config
from ..errors import MnistganError
from ..evaluator import evaluate_module
from ..files import append_line, write_text
from ..rundir import read_log
from .distributed import reduce_sums

# alarm thresholds (per tick means)
D_COLLAPSE = 0.01  # loss_d below this: D is certain everywhere, G gets vanishing gradients
G_EXPLODE = 15.0  # loss_g above this: D rejects every fake with large margin
MIN_CLASSES = 8  # fewer classes covered than this in evaluation: mode collapse


class Stats:
    """Running sums: loss_d, loss_g, #correct on the device (no host sync per step, one small
    kernel each), and #D-decisions, #G-steps, #D-steps on the host, where they are known."""

    def __init__(self, device, values: Optional[list[float]] = None):
        self.t0 = time.monotonic()  # for a tick's images/s (the loop moves it past non-training pauses)
        ld, lg, correct, *self.counts = values or [0.0] * 6
        self.loss_d, self.loss_g, self.correct = (
            torch.tensor(v, dtype=torch.float64, device=device) for v in (ld, lg, correct)
        )

    def add(self, loss_d, correct, n_decisions, loss_g=None):
        self.loss_d += loss_d
        self.correct += correct
        self.counts[0] += n_decisions
        self.counts[2] += 1
        if loss_g is not None:
            self.loss_g += loss_g
            self.counts[1] += 1

    @property
    def t(self) -> torch.Tensor:
        """All six sums as one float64 tensor on the device."""
        counts = torch.tensor(self.counts, dtype=torch.float64, device=self.loss_d.device)
        return torch.cat([torch.stack([self.loss_d, self.loss_g, self.correct]), counts])

    def means(self) -> dict[str, float]:
        ld, lg, correct, dec, ng, nd = self.values()
        return {"loss_d": ld / max(nd, 1), "loss_g": lg / max(ng, 1), "d_acc": correct / max(dec, 1)}

    def finite(self) -> bool:
        return bool(torch.isfinite(torch.stack([self.loss_d, self.loss_g])).all())

    def reduced(self, dd) -> "Stats":
        """Global stats over all processes (the same object when there is one)."""
        return self if not dd.on else Stats(self.loss_d.device, reduce_sums(self.t, dd).tolist())

    def values(self) -> list[float]:
        return self.t.tolist()


def loss_alarms(m: dict, loss_name: str) -> list[str]:
    """Alarms from a tick's mean losses (WGAN losses are unbounded: only G explosion is checked)."""
    out = []
    if loss_name in ("bce", "lsgan", "hinge") and m["loss_d"] < D_COLLAPSE:
        out.append(
            f"D loss collapsed to {m['loss_d']:.4f}: D wins everywhere and G learns nothing "
            f"(try --label-smoothing 0.1, --instance-noise 0.1, --dropout 0.3 or a lower --lr-d)"
        )
    if m["loss_g"] > G_EXPLODE:
        out.append(f"G loss exploding ({m['loss_g']:.1f}): G's samples are rejected with large margins")
    return out


def eval_line(m: dict) -> str:
    """One line of evaluator metrics for the console."""
    if "modes_covered" in m:  # stacked-mnist
        return (
            f"modes {m['modes_covered']}/1000, KL {m['modes_kl']:.3f}, confident {m['confident_share']:.1%}"
        )
    cond = f", conditional accuracy {m['label_accuracy']:.3f}" if "label_accuracy" in m else ""
    return (
        f"FID {m['fid']:.3f}, IS {m['inception_score']:.2f}, digits {m['classes_covered']}/10, "
        f"precision {m['precision']:.3f}, recall {m['recall']:.3f}{cond}"
    )


def eval_alarms(metrics: dict) -> list[str]:
    covered = metrics.get("classes_covered")
    if covered is not None and covered < MIN_CLASSES:
        return [
            f"mode collapse: only {covered} of 10 digits among the samples (histogram "
            f"{metrics.get('histogram')})"
        ]
    return []


class Monitor:
    def __init__(
        self,
        run_dir: Path,
        cfg: Config,
        log: Callable[[str], None],
        device: torch.device,
        enabled: bool = True,
    ):
        self.run_dir, self.cfg, self.log, self.device = run_dir, cfg, log, device
        self.path = run_dir / "log.jsonl"
        self.enabled = enabled  # only rank 0 writes when several processes train
        self.tb = open_tensorboard(run_dir) if cfg.train.tensorboard and enabled else None
        self.epoch_step = 0  # the step of the last epoch row: where that epoch's sample grid goes
        self.raised: set[str] = set()  # each alarm kind is printed once per epoch
        self.vae = cfg.model.model == "vae"

    def named(self, m: dict) -> dict:
        """A VAE's stats slots hold KL (loss_d) and reconstruction (loss_g): log them by their names."""
        return {"loss_recon": m["loss_g"], "loss_kl": m["loss_d"]} if self.vae else m

    def row(self, row: dict) -> None:
        if self.enabled:
            append_line(self.path, json.dumps(row))

    def tick(
        self, stats: Stats, epoch: int, epoch_progress: float, step: int, images: int, bar, ips: float
    ) -> None:
        m = stats.means()
        shown = self.named(m)
        logged = {k: round(v, 6) for k, v in shown.items()}
        self.row(
            {
                "kind": "tick",
                "epoch": epoch,
                "epoch_progress": epoch_progress,
                "step": step,
                "images": images,
                **logged,
                "images_per_s": round(ips, 1),
            }
        )
        bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()})
        if self.tb is not None:
            for k, v in logged.items():
                self.tb.add_scalar(f"train/{k}", v, step)
        for msg in [] if self.vae else loss_alarms(m, self.cfg.loss.loss):
            self.alarm(msg, epoch, step)

    def alarm(self, msg: str, epoch: int, step: int) -> None:
        self.row({"kind": "alarm", "epoch": epoch, "step": step, "message": msg})
        key = msg.split(":")[0].split("(")[0]
        if key not in self.raised:
            self.raised.add(key)
            self.log(f"ALARM (epoch {epoch}, step {step}): {msg}")

    def epoch(
        self,
        stats: Stats,
        epoch: int,
        step: int,
        images: int,
        ips: float,
        finished: bool,
        train_seconds: float,
        epoch_progress: float,
    ) -> None:
        m = stats.means()
        row = {
            "kind": "epoch",
            "epoch": epoch,
            "epoch_progress": epoch_progress,
            "step": step,
            "images": images,
            **{k: round(v, 6) for k, v in self.named(m).items()},
            "images_per_s": round(ips, 1),
            "partial": not finished,
            "train_seconds": round(train_seconds, 2),
            "time": round(time.time(), 3),
        }
        self.row(row)
        self.epoch_step = step
        part = " (partial)" if not finished else ""
        if self.vae:
            losses = f"Reconstruction: {m['loss_g']:.2f}, KL: {m['loss_d']:.2f} (nats/image)"
        else:
            losses = f"Loss D: {m['loss_d']:.4f}, Loss G: {m['loss_g']:.4f}, D acc: {m['d_acc']:.2f}"
        self.log(f"Epoch [{epoch}/{self.cfg.train.epochs}]{part} {losses} | {ips:,.0f} images/s")
        self.raised.clear()

    def samples(self, images, epoch: int) -> None:
        """TensorBoard copy of an epoch's sample grid (uint8 (N, 28, 28)), at the step that epoch ended
        (its epoch row's step), so that it lines up with the scalars and the epoch's eval row."""
        if self.tb is not None:
            pictures = torch.as_tensor(images)
            pictures = pictures.unsqueeze(1) if pictures.dim() == 3 else pictures  # (N, C, 28, 28)
            k = self.cfg.model.n_classes
            from torchvision.utils import make_grid  # here: importing torchvision costs ~1.5 s

            grid = make_grid(pictures, nrow=k if self.cfg.model.conditional else 8)
            self.tb.add_image("samples", grid, self.epoch_step)

    def evaluate(self, G: torch.nn.Module, epoch: int, step: int) -> dict:
        """The evaluator's metrics of G, through the same module as `mnistgan evaluate`."""
        t0 = time.monotonic()
        cfg = self.cfg
        m = evaluate_module(
            G,
            cfg.model.z_dim,
            cfg.data.dataset,
            n=cfg.train.eval_samples,
            device=self.device,
            data_dir=cfg.data.data_dir,
            num_classes=cfg.model.n_classes if cfg.model.conditional else None,
            images=cfg.data.images,
        )
        keep = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in m.items()}
        self.row(
            {"kind": "eval", "epoch": epoch, "step": step, **keep, "seconds": round(time.monotonic() - t0, 2)}
        )
        self.log(f"  eval (n={m['n']}): {eval_line(m)}")
        if self.tb is not None:
            for k, v in keep.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.tb.add_scalar(f"eval/{k}", v, step)
        for msg in eval_alarms(m):
            self.alarm(msg, epoch, step)
        return m

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def require_tensorboard():
    """SummaryWriter, or one clear error before anything is written."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional dependency (mnistgan[tensorboard])
    except ImportError:
        raise MnistganError(
            '--tensorboard needs the tensorboard package: pip install "mnistgan[tensorboard]"'
        ) from None
    return SummaryWriter


def open_tensorboard(run_dir: Path):
    """The run's SummaryWriter. When the folder already holds events (a resumed run), the writer
    first marks a restart at the step after the last one log.jsonl keeps (truncate_log has cut it
    back to the checkpoint): TensorBoard drops the older events from that step on, which the resumed
    run writes again, instead of showing both."""
    folder = run_dir / "tensorboard"
    purge_step = None
    if any(folder.glob("events.out.tfevents.*")):
        purge_step = max((r.get("step", 0) for r in read_log(run_dir / "log.jsonl")), default=0) + 1
    return require_tensorboard()(str(folder), purge_step=purge_step)


def truncate_log(path: Path, step: int) -> None:
    """On resume, drop log lines written after the checkpoint (they will be written again)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("step", 0) <= step:
            keep.append(line)
    write_text(path, "".join(f"{line}\n" for line in keep))
