"""The training loop. Progress is counted in steps and images seen; each step is
(1) update D, (2) update G, (3) update G_ema, (4) log, sample and checkpoint when due.
"""

from __future__ import annotations

import copy
import signal
import time
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm import tqdm

from .checkpoint import latest_checkpoint, prune_checkpoints, save_checkpoint
from .config import Config, LossConfig, from_dict, to_dict, validate, with_overrides
from .data import batches, load_train_data, steps_per_epoch
from .errors import MnistganError
from .files import remove_stale_temps
from .monitor import Monitor, Stats, require_tensorboard, truncate_log
from .hardware import autocast_for, resolve_device, resolve_precision, setup_backends
from .augment import d_view as make_d_view
from .losses import LOSSES, Loss, d_accuracy_counts, gradient_penalty, r1_penalty
from .models import build_discriminator, build_generator
from .models.vae import vae_losses
from .outputs import new_run_dir, save_epoch_samples, write_finish, write_start


class Diverged(MnistganError):
    """Training produced NaN/Inf; the last good checkpoint is kept."""


def d_step(D, opt_d, loss: Loss, lc: LossConfig, real, fake, y_real, y_fake, view, amp
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """One discriminator update on a real and a (detached) fake batch. Returns (loss_d, #correct)."""
    real_in, fake_in = view(real), view(fake)
    if lc.r1_weight > 0:
        real_in = real_in.detach().requires_grad_(True)
    with amp():
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


def g_step(D, opt_g, loss: Loss, fake, y_fake, view, amp) -> torch.Tensor:
    """One generator update through D (D's weights get no gradients: they are frozen here)."""
    D.requires_grad_(False)
    with amp():
        f = D(view(fake), y_fake).float()
    loss_g = loss.g(f)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    D.requires_grad_(True)
    return loss_g.detach()


def make_step(cfg: Config, G, D, opt_g, opt_d, amp, device):
    """The update of one batch, for the model family: step(real, y, step, progress) -> (loss_d, #correct, loss_g).

    GAN: (1) update D on real and G(z), (2) update G every n_critic steps, reusing G(z).
    VAE: one update of encoder (D's slot) and decoder (G) on the negative ELBO; the stats
    slots then hold KL (loss_d) and reconstruction (loss_g).
    """
    loss, lc, view_of = LOSSES[cfg.loss.loss], cfg.loss, make_d_view(cfg.loss)
    z_dim = cfg.model.z_dim

    def gan_step(real, y, step: int, progress: float):
        view = lambda x: view_of(x, progress)  # noqa: E731 (augment + instance noise)
        do_g = (step + 1) % lc.n_critic == 0
        z = torch.randn(real.shape[0], z_dim, device=device)
        with torch.set_grad_enabled(do_g), amp():
            fake = G(z, y)  # (B, 1, 28, 28) in [-1, 1]; its graph is reused by the G step
        # (1) update D (y: the real batch's labels, reused for the fake batch; None if unconditional)
        loss_d, correct = d_step(D, opt_d, loss, lc, real, fake.detach(), y, y, view, amp)
        # (2) update G, every n_critic D steps
        loss_g = g_step(D, opt_g, loss, fake, y, view, amp) if do_g else None
        return loss_d, correct, loss_g

    def vae_step(real, y, step: int, progress: float):
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


@torch.no_grad()
def ema_update(G_ema, G, decay: float, n_updates: int) -> None:
    """G_ema <- d G_ema + (1 - d) G, d warmed up as min(decay, (1 + n) / (10 + n)); buffers copied."""
    d = min(decay, (1 + n_updates) / (10 + n_updates))
    torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 1.0 - d)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def make_optimizer(params, cfg: Config, lr: float, device: torch.device) -> torch.optim.Optimizer:
    o = cfg.optim
    fused = device.type == "cuda"  # fused Adam: one kernel for all parameters on GPU
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=o.momentum)
    return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), fused=fused or None,
                            foreach=None if fused else True)


def sample_due(cfg: Config, epoch: int) -> bool:
    t = cfg.train
    if t.sample_every:
        return epoch % t.sample_every == 0 or epoch == 1
    return epoch in t.sample_epochs


def train(cfg: Config, out_dir: str | Path = "runs", run_dir: Optional[str | Path] = None,
          resume: Optional[str | Path] = None, progress: bool = True, log=print) -> Path:
    """Train a GAN; returns the run directory holding every output."""
    state: Optional[dict[str, Any]] = None
    if resume is not None:
        run_dir = Path(resume)
        state = latest_checkpoint(run_dir)
        remove_stale_temps(run_dir)
    validate(cfg)
    if cfg.train.tensorboard:
        require_tensorboard()
    device = resolve_device(cfg.train.device)
    precision = resolve_precision(cfg.train.precision, device)
    setup_backends(device, cfg.train.deterministic)
    log(f"Using device: {device} ({precision})")
    amp = autocast_for(device, precision)

    data = load_train_data(cfg.data, device, need_labels=cfg.model.conditional)
    torch.manual_seed(cfg.train.seed)
    G, D = build_generator(cfg.model).to(device), build_discriminator(cfg.model).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.train.ema_decay > 0 else None
    opt_g = make_optimizer(G.parameters(), cfg, cfg.optim.lr_g or cfg.optim.lr, device)
    opt_d = make_optimizer(D.parameters(), cfg, cfg.optim.lr_d or cfg.optim.lr, device)
    n_fixed = 80 if cfg.model.conditional else 64  # conditional: 8 rows of the ten digits
    fixed_z = torch.randn(n_fixed, cfg.model.z_dim, generator=torch.Generator().manual_seed(cfg.train.seed + 1))
    fixed_y = torch.arange(n_fixed, device=device) % 10 if cfg.model.conditional else None
    train_step = make_step(cfg, G, D, opt_g, opt_d, amp, device)

    epoch, start_batch, step, images_seen, train_time = 1, 0, 0, 0, 0.0
    eval_every = cfg.train.eval_every
    epoch_stats = Stats(device)
    if state is None:
        run_dir = new_run_dir(cfg, out_dir, run_dir)
        write_start(run_dir, cfg, data)
    else:
        G.load_state_dict(state["G"]); D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"]); opt_d.load_state_dict(state["opt_d"])
        if G_ema is not None:
            G_ema.load_state_dict(state["G_ema"])
        epoch, start_batch, step = state["epoch"], state["batch"], state["step"]
        images_seen, train_time = state["images"], state["train_time"]
        epoch_stats = Stats(device, state["epoch_stats"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state.get("rng_cuda"):
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        truncate_log(run_dir / "log.jsonl", step)
        log(f"Resuming {run_dir} at epoch {epoch}, step {step}")
    run_dir = Path(run_dir)
    monitor = Monitor(run_dir, cfg, log, device)
    fixed_z = fixed_z.to(device)
    G_show = G_ema if G_ema is not None else G
    n_steps = steps_per_epoch(len(data), cfg.optim.batch_size)
    B = min(cfg.optim.batch_size, len(data))
    total_images = cfg.train.epochs * n_steps * B  # for annealing instance noise

    def checkpoint(name: str = "last.pt") -> None:
        save_checkpoint(run_dir / "checkpoints" / name, {
            "format": "mnistgan-checkpoint", "version": 1, "config": to_dict(cfg),
            "epoch": epoch, "batch": batch, "step": step, "images": images_seen, "train_time": train_time,
            "G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict() if G_ema else {},
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "epoch_stats": epoch_stats.values(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        })

    stop: dict[str, Any] = {}
    handlers = install_stop_handlers(stop)
    t_start = time.monotonic()
    budget = cfg.train.time_budget
    tick = Stats(device)
    batch = start_batch
    try:
        while epoch <= cfg.train.epochs and not stop:
            t_epoch, images_epoch = time.monotonic(), 0
            bar = tqdm(total=n_steps, initial=start_batch, desc=f"Epoch {epoch}/{cfg.train.epochs}",
                       disable=not progress, leave=False, unit="step", dynamic_ncols=True)
            for batch, (real, y) in enumerate(batches(data, cfg.optim.batch_size, cfg.train.seed, epoch, start_batch),
                                              start=start_batch):
                # (1) update D, (2) update G (see make_step)
                loss_d, correct, loss_g = train_step(real, y, step, images_seen / total_images)
                # (3) update G_ema
                if G_ema is not None and loss_g is not None:
                    ema_update(G_ema, G, cfg.train.ema_decay, step // cfg.loss.n_critic)
                step += 1
                images_seen += B
                images_epoch += B
                epoch_stats.add(loss_d, correct, 2 * B, loss_g)
                tick.add(loss_d, correct, 2 * B, loss_g)
                bar.update(1)
                # (4) log, and stop when asked (time budget, Ctrl-C, SIGTERM)
                if step % cfg.train.log_every == 0:
                    if not tick.finite():
                        raise diverged(run_dir, epoch, step)
                    monitor.tick(tick, epoch, epoch - 1 + (batch + 1) / n_steps, step, images_seen, bar)
                    tick = Stats(device)
                if budget is not None and train_time + time.monotonic() - t_start >= budget:
                    stop["budget"] = True
                if stop:
                    batch += 1
                    break
            else:
                batch = n_steps
            bar.close()
            train_time += time.monotonic() - t_start  # sampling, evaluation and checkpoints are not training time
            finished_epoch = batch >= n_steps
            seconds = time.monotonic() - t_epoch
            if not epoch_stats.finite():
                raise diverged(run_dir, epoch, step)
            monitor.epoch(epoch_stats, epoch, step, images_seen, images_epoch / max(seconds, 1e-9), finished_epoch,
                          train_time)
            if finished_epoch:
                if sample_due(cfg, epoch) or epoch == cfg.train.epochs:
                    monitor.samples(save_epoch_samples(G_show, fixed_z, run_dir, epoch, fixed_y), epoch)
                if eval_every and (epoch % eval_every == 0 or epoch == cfg.train.epochs):
                    monitor.evaluate(G_show, epoch, step)
                epoch, start_batch, batch = epoch + 1, 0, 0
                epoch_stats = Stats(device)
                if (epoch - 1) % cfg.train.checkpoint_every == 0:
                    checkpoint(f"epoch_{epoch - 1:03d}.pt")
                    link_last(run_dir)
                    prune_checkpoints(run_dir, cfg.train.keep_checkpoints)
            t_start = time.monotonic()
    finally:
        restore_stop_handlers(handlers)
        monitor.close()
    checkpoint()
    if stop.get("signal"):
        raise MnistganError(f"interrupted at step {step}; state saved. Continue with: mnistgan train --resume {run_dir}")
    if stop.get("budget") and not any(run_dir.glob("samples/epoch_*.png")):
        save_epoch_samples(G_show, fixed_z, run_dir, max(epoch - (batch == 0), 1), fixed_y)
    log(f"Finished {step} steps ({images_seen:,} images) in {train_time:.1f} s; writing outputs to {run_dir}")
    write_finish(run_dir, G_show, cfg, data, {"steps": step, "images_seen": images_seen, "ema": G_ema is not None})
    if eval_every:  # the final metrics, from the exported generator, into metrics.json
        from .evaluate.api import evaluate

        evaluate(generator=run_dir / "generator", n=cfg.train.eval_samples)
        log(f"Wrote {run_dir / 'metrics.json'}")
    return run_dir


def diverged(run_dir: Path, epoch: int, step: int) -> Diverged:
    return Diverged(f"training diverged: NaN/Inf loss in epoch {epoch} by step {step}. The last good checkpoint "
                    f"in {run_dir / 'checkpoints'} is kept; lower --lr or change the loss, then resume or rerun")


def link_last(run_dir: Path) -> None:
    """Point checkpoints/last.pt at the newest epoch checkpoint (hard link, atomic rename)."""
    import os

    ckdir = run_dir / "checkpoints"
    newest = sorted(ckdir.glob("epoch_*.pt"))[-1]
    tmp = ckdir / ".last.pt.link"
    tmp.unlink(missing_ok=True)
    try:
        os.link(newest, tmp)
    except OSError:
        import shutil
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
