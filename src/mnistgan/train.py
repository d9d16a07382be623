"""The training loop. Progress is counted in steps and images seen; each step is
(1) update D, (2) update G, (3) update G_ema, (4) log, sample and checkpoint when due.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass, replace
import signal
import time
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm import tqdm

from .clusters import auto_clusters, kmeans_labels
from .cudagraph import graph_blockers, maybe_graphed
from .checkpoint import latest_checkpoint, load_state_strict, prune_checkpoints, save_checkpoint
from .config import Config, LossConfig, from_dict, to_dict, validate, with_overrides
from .data import batches, load_train_data, steps_per_epoch
from .distributed import Dist, any_rank, barrier, check_config, setup, shard, share_path, teardown, unwrap, wrap
from .errors import MnistganError
from .files import remove_stale_temps
from .monitor import Monitor, Stats, require_tensorboard, truncate_log
from .hardware import autocast_for, resolve_device, resolve_precision, setup_backends
from .augment import d_view as make_d_view
from .losses import LOSSES, Loss, d_accuracy_counts, gradient_penalty, r1_penalty
from .models import build_discriminator, build_generator
from .models.vae import vae_losses
from .outputs import check_run_dir, new_run_dir, save_epoch_samples, write_finish, write_start


class Diverged(MnistganError):
    """Training produced NaN/Inf; the last good checkpoint is kept."""


def d_step(D, opt_d, loss: Loss, lc: LossConfig, real, fake, y_real, y_fake, view, amp, one_pass: bool = True
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """One discriminator update on a real and a (detached) fake batch. Returns (loss_d, #correct).

    one_pass: D sees real and fake as one batch of 2B (fewer, larger kernels; one DDP forward).
    Only valid when D has no batch statistics (BatchNorm in D must see real and fake apart).
    """
    real_in, fake_in = view(real), view(fake)
    if lc.r1_weight > 0:
        real_in = real_in.detach().requires_grad_(True)
    with amp():
        if one_pass:
            y = None if y_real is None else torch.cat([y_real, y_fake])
            r, f = D(torch.cat([real_in, fake_in]), y).float().chunk(2)
        else:
            r, f = D(real_in, y_real).float(), D(fake_in, y_fake).float()
    loss_d = loss.d(r, f, smooth=lc.label_smoothing) if lc.label_smoothing else loss.d(r, f)
    if loss.gradient_penalty and lc.gp_weight > 0:
        with amp():
            loss_d = loss_d + lc.gp_weight * gradient_penalty(lambda x: D(x, y_real), real_in, fake_in)
    if lc.r1_weight > 0:
        loss_d = loss_d + 0.5 * lc.r1_weight * r1_penalty(r, real_in)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    return loss_d.detach(), d_accuracy_counts(r.detach(), f.detach(), loss.threshold)


def g_step(D, opt_g, loss: Loss, fake, y_fake, view, amp, d_params: Optional[list] = None) -> torch.Tensor:
    """One generator update through D (D's weights get no gradients: they are frozen here).

    d_params: list(D.parameters()), taken once by the caller (walking the modules every step
    costs ~0.1 ms of Python)."""
    d_params = list(D.parameters()) if d_params is None else d_params
    for p in d_params:
        p.requires_grad_(False)
    with amp():
        f = D(view(fake), y_fake).float()
    loss_g = loss.g(f)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    for p in d_params:
        p.requires_grad_(True)
    return loss_g.detach()


def make_step(cfg: Config, G, D, opt_g, opt_d, amp, device, dd: Dist = Dist()):
    """The update of one batch, for the model family: step(real, y, step, progress) -> (loss_d, #correct, loss_g).

    GAN: (1) update D on real and G(z), (2) update G every n_critic steps, reusing G(z).
    VAE: one update of encoder (D's slot) and decoder (G) on the negative ELBO; the stats
    slots then hold KL (loss_d) and reconstruction (loss_g).
    """
    loss, lc, view_of = LOSSES[cfg.loss.loss], cfg.loss, make_d_view(cfg.loss)
    z_dim, one_pass, D_plain = cfg.model.z_dim, cfg.model.d_norm != "batch", unwrap(D)
    d_params = list(D_plain.parameters())
    clusters_of = unwrap(G).clusters_of if cfg.model.clusters else None

    def gan_step(real, y, step: int, progress: float, z=None):
        view = lambda x: view_of(x, progress)  # noqa: E731 (augment + instance noise)
        do_g = (step + 1) % lc.n_critic == 0
        if z is None:  # (a CUDA-graph replay draws z outside the graph, with this same call)
            z = torch.randn(real.shape[0], z_dim, device=device)
        z = shard(z, dd)  # the global batch's noise, our slice
        real, y = shard(real, dd), shard(y, dd)
        # the fake batch's labels: the real batch's digits (conditional), the clusters G reads
        # off z (--clusters), or None (unconditional)
        y_fake = clusters_of(z) if clusters_of else y
        with torch.set_grad_enabled(do_g), amp():
            fake = G(z, y_fake)  # (B, 1, 28, 28) in [-1, 1]; its graph is reused by the G step
        # (1) update D
        loss_d, correct = d_step(D, opt_d, loss, lc, real, fake.detach(), y, y_fake, view, amp, one_pass)
        # (2) update G, every n_critic D steps (through the plain D: its weights are frozen there)
        loss_g = g_step(D_plain, opt_g, loss, fake, y_fake, view, amp, d_params) if do_g else None
        return loss_d, correct, loss_g

    def vae_step(real, y, step: int, progress: float, z=None):
        with amp():
            mu, logvar = D(real)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation
            recon, kl = vae_losses(real, G(z), mu, logvar)
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)
        (recon + kl).backward()
        opt_g.step()
        opt_d.step()
        return kl.detach(), torch.zeros((), device=device), recon.detach()

    return vae_step if cfg.model.model == "vae" else gan_step


class EMA:
    """G_ema <- d G_ema + (1 - d) G, d warmed up as min(decay, (1 + n) / (10 + n)); buffers copied.
    The tensor lists are taken once (walking the modules every step costs ~0.1 ms of Python)."""

    def __init__(self, G_ema, G):
        self.params = list(G_ema.parameters()), list(G.parameters())
        self.buffers = list(G_ema.buffers()), list(G.buffers())

    @torch.no_grad()
    def update(self, decay: float, n_updates: int) -> None:
        d = min(decay, (1 + n_updates) / (10 + n_updates))
        torch._foreach_lerp_(*self.params, 1.0 - d)
        for b_ema, b in zip(*self.buffers):
            b_ema.copy_(b)


def make_optimizer(params, cfg: Config, lr: float, device: torch.device) -> torch.optim.Optimizer:
    o = cfg.optim
    params = list(params)
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=o.momentum)
    # capturable on CUDA: its step count stays on the GPU, so the step can be a CUDA graph (cudagraph.py)
    capturable = device.type == "cuda"
    try:  # fused Adam, one kernel for all parameters: +30% per MLP step on the CPU box (docs/performance.md)
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), fused=True, capturable=capturable)
    except (RuntimeError, TypeError):  # a device/torch without the fused kernel
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), foreach=True, capturable=capturable)


def sample_due(cfg: Config, epoch: int) -> bool:
    t = cfg.train
    if t.sample_every:
        return epoch % t.sample_every == 0 or epoch == 1
    return epoch in t.sample_epochs


@dataclass
class Run:
    """Everything one training run holds: models, optimisers, where it is, where it writes."""

    cfg: Config
    dd: Dist
    device: torch.device
    amp: Any
    run_dir: Path
    data: Any
    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: Optional[torch.nn.Module]
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    fixed_z: torch.Tensor
    fixed_y: Optional[torch.Tensor]
    monitor: Any = None
    epoch: int = 1
    batch: int = 0  # next batch of `epoch`
    step: int = 0
    images: int = 0
    train_time: float = 0.0  # seconds of training steps (no sampling/evaluation/checkpoints)
    epoch_stats: Any = None

    @property
    def G_show(self) -> torch.nn.Module:
        """What samples, grids and the export use: G_ema when it is on."""
        return self.G_ema if self.G_ema is not None else unwrap(self.G)


def train(cfg: Config, out_dir: str | Path = "runs", run_dir: Optional[str | Path] = None,
          resume: Optional[str | Path] = None, progress: bool = True, log=print) -> Path:
    """Train a GAN (or the VAE baseline); returns the run directory holding every output."""
    dd, device_override = setup(cfg.train.device)
    try:
        r = prepare(cfg, dd, device_override, out_dir, run_dir, resume, log if dd.main else (lambda m: None))
        stop = loop(r, progress and dd.main)
        return finish(r, stop, log if dd.main else (lambda m: None))
    finally:
        teardown(dd)


def prepare(cfg, dd: Dist, device_override, out_dir, run_dir, resume, log) -> Run:
    """Check, load the data, build (or restore) models and optimisers, create the run folder."""
    state: Optional[dict[str, Any]] = None
    if resume is not None:
        run_dir = Path(resume)
        state = latest_checkpoint(run_dir)
        if dd.main:
            remove_stale_temps(run_dir)
    validate(cfg)
    if state is None and run_dir is not None and dd.main:
        check_run_dir(run_dir)  # before the data is loaded (and clustered): a taken folder is said at once
    if cfg.train.tensorboard:
        require_tensorboard()
    device = resolve_device(device_override or cfg.train.device)
    check_config(cfg, dd, device)
    precision = resolve_precision(cfg.train.precision, device)
    setup_backends(device, cfg.train.deterministic)
    why_eager = graph_blockers(cfg, device, dd.world)
    graphs = "" if device.type != "cuda" else (
        f", eager steps (no CUDA graphs: {', '.join(why_eager)})" if why_eager else ", CUDA graphs")
    log(f"Using device: {device} ({precision}{graphs})" + (f", {dd.world} processes" if dd.on else ""))

    data = load_train_data(cfg.data, device, need_labels=cfg.model.conditional)
    cfg = with_overrides(cfg, {"clusters": auto_clusters(cfg.model, len(data.images))})
    if cfg.model.clusters:
        data = with_clusters(data, cfg, state, log)
    torch.manual_seed(cfg.train.seed)
    # channels_last: oneDNN's (transposed) convolutions run faster in NHWC (+8% per step on the CPU box)
    G = build_generator(cfg.model).to(device, memory_format=torch.channels_last)
    if cfg.model.clusters:
        G.set_cluster_sizes(torch.bincount(data.labels, minlength=cfg.model.clusters))
    D = build_discriminator(cfg.model).to(device, memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.train.ema_decay > 0 else None
    opt_g = make_optimizer(G.parameters(), cfg, cfg.optim.lr_g or cfg.optim.lr, device)
    opt_d = make_optimizer(D.parameters(), cfg, cfg.optim.lr_d or cfg.optim.lr, device)
    n_fixed = 80 if cfg.model.conditional else 64  # conditional: 8 rows of the ten digits
    fixed_z = torch.randn(n_fixed, cfg.model.z_dim, generator=torch.Generator().manual_seed(cfg.train.seed + 1))
    fixed_y = torch.arange(n_fixed, device=device) % 10 if cfg.model.conditional else None
    r = Run(cfg, dd, device, autocast_for(device, precision), Path("."), data, G, D, G_ema, opt_g, opt_d,
            fixed_z.to(device), fixed_y, epoch_stats=Stats(device))
    if state is None:
        if dd.main:
            run_dir = new_run_dir(cfg, out_dir, run_dir)
            write_start(run_dir, cfg, data)
    else:
        restore(r, state)
        if dd.main:
            truncate_log(run_dir / "log.jsonl", r.step)
        log(f"Resuming {run_dir} at epoch {r.epoch}, step {r.step}")
        if r.epoch > cfg.train.epochs:
            n = cfg.train.epochs
            log(f"It has finished its {n} epoch{'s' * (n != 1)}: nothing to train, its outputs are written again "
                f"from the last checkpoint (give --epochs N to train it further)")
    r.run_dir = share_path(run_dir, dd)
    r.G, r.D = wrap(G, dd, device), wrap(D, dd, device)
    r.monitor = Monitor(r.run_dir, cfg, log, device, enabled=dd.main)
    return r


def with_clusters(data, cfg: Config, state: Optional[dict], log):
    """The training images with k-means cluster labels (--clusters): computed, or the checkpoint's."""
    if state is not None:
        labels = state["clusters"].long()
    else:
        t0 = time.perf_counter()
        labels = kmeans_labels(data.images, cfg.model.clusters, cfg.train.seed)
        sizes = torch.bincount(labels)
        log(f"Clustered {len(labels):,} images into {cfg.model.clusters} k-means clusters "
            f"({int(sizes.min()):,} to {int(sizes.max()):,} images each) in {time.perf_counter() - t0:.1f} s")
    return replace(data, labels=labels.to(data.images.device))


def restore(r: Run, state: dict) -> None:
    source = f"the checkpoint of {r.run_dir}"
    advice = "it cannot be resumed; start a new run"
    load_state_strict(r.G, state["G"], source, advice)
    load_state_strict(r.D, state["D"], source, advice)
    if r.G_ema is not None:
        load_state_strict(r.G_ema, state["G_ema"], source, advice)
    try:
        r.opt_g.load_state_dict(state["opt_g"])
        r.opt_d.load_state_dict(state["opt_d"])
    except (ValueError, KeyError, RuntimeError):
        raise MnistganError(f"{source} holds optimiser state that does not fit its config; it cannot be resumed") from None
    r.epoch, r.batch, r.step = state["epoch"], state["batch"], state["step"]
    r.images, r.train_time = state["images"], state["train_time"]
    r.epoch_stats = Stats(r.device, state["epoch_stats"])
    torch.set_rng_state(state["rng_cpu"])
    if r.device.type == "cuda" and state.get("rng_cuda"):
        torch.cuda.set_rng_state_all(state["rng_cuda"])


def save_state(r: Run, name: str = "last.pt") -> None:
    """The resume checkpoint (rank 0 only): everything needed to continue bit-identically."""
    if not r.dd.main:
        return
    save_checkpoint(r.run_dir / "checkpoints" / name, {
        "format": "mnistgan-checkpoint", "version": 1, "config": to_dict(r.cfg),
        "epoch": r.epoch, "batch": r.batch, "step": r.step, "images": r.images, "train_time": r.train_time,
        "G": unwrap(r.G).state_dict(), "D": unwrap(r.D).state_dict(),
        "clusters": r.data.labels.to("cpu", torch.int16) if r.cfg.model.clusters else None,
        "G_ema": r.G_ema.state_dict() if r.G_ema is not None else {},
        "opt_g": r.opt_g.state_dict(), "opt_d": r.opt_d.state_dict(), "epoch_stats": r.epoch_stats.values(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if r.device.type == "cuda" else [],
    })


def loop(r: Run, progress: bool) -> dict:
    """The epochs. Returns why it stopped: {} (done), {"budget": True} or {"signal": n}."""
    cfg, dd, device, monitor = r.cfg, r.dd, r.device, r.monitor
    n_steps = steps_per_epoch(len(r.data), cfg.optim.batch_size)
    B = min(cfg.optim.batch_size, len(r.data))  # the global batch
    train_step = maybe_graphed(make_step(cfg, r.G, r.D, r.opt_g, r.opt_d, r.amp, device, dd), cfg, device, dd.world,
                               B, monitor.log)
    total_images = cfg.train.epochs * n_steps * B  # for annealing instance noise
    ema = EMA(r.G_ema, unwrap(r.G)) if r.G_ema is not None else None
    budget, stop, tick = cfg.train.time_budget, {}, Stats(device)
    handlers = install_stop_handlers(stop)
    t_start = time.monotonic()
    try:
        while r.epoch <= cfg.train.epochs and not stop:
            t_epoch, images_epoch, start = time.monotonic(), 0, r.batch
            bar = tqdm(total=n_steps, initial=start, desc=f"Epoch {r.epoch}/{cfg.train.epochs}",
                       disable=not progress, leave=False, unit="step", dynamic_ncols=True)
            for r.batch, (real, y) in enumerate(batches(r.data, cfg.optim.batch_size, cfg.train.seed, r.epoch, start),
                                                start=start):
                # (1) update D, (2) update G (see make_step)
                loss_d, correct, loss_g = train_step(real, y, r.step, r.images / total_images)
                # (3) update G_ema
                if ema is not None and loss_g is not None:
                    ema.update(cfg.train.ema_decay, r.step // cfg.loss.n_critic)
                r.step, r.images, images_epoch = r.step + 1, r.images + B, images_epoch + B
                r.epoch_stats.add(loss_d, correct, 2 * B // dd.world, loss_g)
                tick.add(loss_d, correct, 2 * B // dd.world, loss_g)
                bar.update(1)
                # (4) log, and stop when asked (time budget, Ctrl-C, SIGTERM) - all ranks at the same step
                if r.step % cfg.train.log_every == 0:
                    tick = report_tick(r, tick, n_steps, B, bar)
                over = budget is not None and r.train_time + time.monotonic() - t_start >= budget
                if any_rank(over or bool(stop), dd, device):
                    stop.setdefault("budget" if over else "signal", True)
                    r.batch += 1
                    break
            else:
                r.batch = n_steps
            bar.close()
            t_pause = time.monotonic()
            r.train_time += t_pause - t_start  # sampling, evaluation, checkpoints: not training time
            end_epoch(r, n_steps, images_epoch / max(t_pause - t_epoch, 1e-9))
            t_start = time.monotonic()
            tick.t0 += t_start - t_pause  # nor in a tick's images/s
    finally:
        restore_stop_handlers(handlers)
        monitor.close()
    return stop


def report_tick(r: Run, tick: Stats, n_steps: int, B: int, bar) -> Stats:
    """The tick row (B: the global batch, for its images/s); a fresh tick."""
    total = tick.reduced(r.dd)
    if not total.finite():
        raise diverged(r.run_dir, r.epoch, r.step)
    ips = tick.counts[2] * B / max(time.monotonic() - tick.t0, 1e-9)
    r.monitor.tick(total, r.epoch, r.epoch - 1 + (r.batch + 1) / n_steps, r.step, r.images, bar, ips)
    return Stats(r.device)


def end_epoch(r: Run, n_steps: int, images_per_s: float) -> None:
    """Epoch line; then, for a finished epoch, samples, evaluation and the checkpoint when due."""
    cfg, stats = r.cfg, r.epoch_stats.reduced(r.dd)
    if not stats.finite():
        raise diverged(r.run_dir, r.epoch, r.step)
    finished = r.batch >= n_steps
    r.monitor.epoch(stats, r.epoch, r.step, r.images, images_per_s, finished, r.train_time,
                    r.epoch - 1 + min(r.batch, n_steps) / n_steps)
    if not finished:
        return
    if r.dd.main and (sample_due(cfg, r.epoch) or r.epoch == cfg.train.epochs):
        r.monitor.samples(save_epoch_samples(r.G_show, r.fixed_z, r.run_dir, r.epoch, r.fixed_y), r.epoch)
    if r.dd.main and cfg.train.eval_every and (r.epoch % cfg.train.eval_every == 0 or r.epoch == cfg.train.epochs):
        r.monitor.evaluate(r.G_show, r.epoch, r.step)
    r.epoch, r.batch, r.epoch_stats = r.epoch + 1, 0, Stats(r.device)
    if (r.epoch - 1) % cfg.train.checkpoint_every == 0 and r.dd.main:
        save_state(r, f"epoch_{r.epoch - 1:03d}.pt")
        link_last(r.run_dir)
        prune_checkpoints(r.run_dir, cfg.train.keep_checkpoints)


def finish(r: Run, stop: dict, log) -> Path:
    """The final checkpoint, then every output from the exported generator (rank 0)."""
    save_state(r)
    if stop.get("signal"):
        raise MnistganError(f"interrupted at step {r.step}; state saved. Continue with: mnistgan train --resume {r.run_dir}")
    if r.dd.main:
        last = max(r.epoch - (r.batch == 0), 1)  # the epoch the budget stopped in (or just finished)
        if stop.get("budget") and not (r.run_dir / "samples" / f"epoch_{last:03d}.png").exists():
            save_epoch_samples(r.G_show, r.fixed_z, r.run_dir, last, r.fixed_y)  # the last epoch's grid
        log(f"Finished {r.step} steps ({r.images:,} images) in {r.train_time:.1f} s; writing outputs to {r.run_dir}")
        write_finish(r.run_dir, r.G_show, r.cfg, r.data,
                     {"steps": r.step, "images_seen": r.images, "ema": r.G_ema is not None})
        if r.cfg.train.eval_every:  # the final metrics, from the exported generator, into metrics.json
            from .evaluate.api import evaluate

            evaluate(generator=r.run_dir / "generator", n=r.cfg.train.eval_samples)
            log(f"Wrote {r.run_dir / 'metrics.json'}")
    barrier(r.dd)
    return r.run_dir


def diverged(run_dir: Path, epoch: int, step: int) -> Diverged:
    return Diverged(f"training diverged: NaN/Inf loss in epoch {epoch} by step {step}. The last good checkpoint "
                    f"in {run_dir / 'checkpoints'} is kept; start a new run with a lower --lr or another --loss "
                    f"(mnistgan train --config {run_dir / 'config.json'} --lr ...)")


def link_last(run_dir: Path) -> None:
    """Point checkpoints/last.pt at the newest epoch checkpoint (hard link, atomic rename)."""
    ckdir = run_dir / "checkpoints"
    newest = sorted(ckdir.glob("epoch_*.pt"))[-1]
    tmp = ckdir / ".last.pt.link"
    tmp.unlink(missing_ok=True)
    try:
        os.link(newest, tmp)
    except OSError:  # a file system without hard links
        shutil.copyfile(newest, tmp)
    os.replace(tmp, ckdir / "last.pt")


def install_stop_handlers(stop: dict) -> dict:
    """Ctrl-C and SIGTERM ask the loop to stop after the current step and save its state."""
    def ask(signum, frame):
        if stop.get("signal"):  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        stop["signal"] = signum

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, ask)
        except ValueError:  # not the main thread (e.g. a notebook worker): leave signals alone
            pass
    return old


def restore_stop_handlers(old: dict) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)


def train_api(config: Optional[Config | dict | str] = None, out_dir: str | Path = "runs",
              run_dir: Optional[str | Path] = None, progress: bool = True, **overrides) -> Path:
    """Python API: `mnistgan.train(epochs=1, model="mlp")` -> run directory."""
    from .config import load_config

    if config is None:
        cfg = Config()
    elif isinstance(config, Config):
        cfg = config
    elif isinstance(config, dict):
        cfg = from_dict(config)
    else:
        cfg = load_config(config)
    return train(validate(with_overrides(cfg, overrides)), out_dir=out_dir, run_dir=run_dir, progress=progress)
