"""The training loop. Progress is counted in steps and images seen; each step is
(1) update D, (2) update G, (3) update G_ema, (4) log, sample and checkpoint when due.
"""

from __future__ import annotations

import copy
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm import tqdm

from ..config import Config, auto_clusters, validate, with_overrides
from ..data import batches, load_train_data, steps_per_epoch
from ..errors import Diverged, MnistganError
from ..evaluator import evaluate
from ..files import remove_stale_temps
from ..hardware import autocast_for, resolve_device, resolve_precision, setup_backends
from ..models import Built, build_models
from ..rundir import IMAGES_CACHE, check_run_dir, model_source, new_run_dir
from .clusters import kmeans_labels
from .cudagraph import graph_blockers, maybe_graphed
from .distributed import (
    Dist,
    barrier,
    check_config,
    check_modules,
    rank_max,
    setup,
    share_path,
    teardown,
    unwrap,
    wrap,
)
from .monitor import Monitor, Stats, require_tensorboard, truncate_log
from .outputs import course_grid_digits, sample_due, save_epoch_samples, write_finish, write_start
from .state import Run, latest_checkpoint, link_last, prune_checkpoints, restore, save_state
from .step import EMA, lr_factor, make_optimizer, make_step, set_lr


def run_training(
    cfg: Config,
    out_dir: str | Path = "runs",
    run_dir: Optional[str | Path] = None,
    resume: Optional[str | Path] = None,
    progress: bool = True,
    log=print,
    instances: Optional[tuple] = None,
) -> Path:
    """Train a GAN (or the VAE baseline); returns the run directory holding every output.

    instances: (G, D) module instances to train instead of the config's model
    (mnistgan.train(generator=..., discriminator=...))."""
    dd, device_override = setup(cfg.train.device)
    try:
        quiet = log if dd.main else (lambda m: None)
        r = prepare(cfg, dd, device_override, out_dir, run_dir, resume, quiet, instances)
        stop = loop(r, progress and dd.main)
        return finish(r, stop, log if dd.main else (lambda m: None))
    finally:
        teardown(dd)


def prepare(cfg, dd: Dist, device_override, out_dir, run_dir, resume, log, instances=None) -> Run:
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
    graphs = (
        ""
        if device.type != "cuda"
        else (f", eager steps (no CUDA graphs: {', '.join(why_eager)})" if why_eager else ", CUDA graphs")
    )
    log(f"Using device: {device} ({precision}{graphs})" + (f", {dd.world} processes" if dd.on else ""))

    cache = (Path(run_dir).parent if run_dir is not None else Path(out_dir)) / IMAGES_CACHE
    data = load_train_data(cfg.data, device, need_labels=cfg.model.conditional, cache_dir=cache)
    if cfg.data.images is not None or cfg.data.dataset == "stacked-mnist":
        log(f"Training images: {len(data):,} from {data.source}")
    cfg = with_overrides(cfg, data_settings(cfg, data))
    if cfg.model.clusters:
        data = with_clusters(data, cfg, state, log)
    torch.manual_seed(cfg.train.seed)
    copy_of_source = model_source(run_dir, cfg.model.model) if run_dir is not None else None
    built = build_models(cfg.model, training=True, instances=instances, source_copy=copy_of_source)
    for note in built.notes:
        log(f"Adapted: {note}")
    check_modules(built.G, built.D, dd, device)
    r = assemble(cfg, dd, device, autocast_for(device, precision), data, built)
    if state is None:
        if dd.main:
            run_dir = new_run_dir(cfg, out_dir, run_dir)
            write_start(run_dir, cfg, data, built)
    else:
        restore(r, state)
        if dd.main:
            truncate_log(run_dir / "log.jsonl", r.step)
        log(f"Resuming {run_dir} at epoch {r.epoch}, step {r.step}")
        if r.epoch > cfg.train.epochs:
            n = cfg.train.epochs
            log(
                f"It has finished its {n} epoch{'s' * (n != 1)}: nothing to train, its outputs are written "
                "again from the last checkpoint (give --epochs N to train it further)"
            )
    r.run_dir = share_path(run_dir, dd)
    r.G, r.D = wrap(r.G, dd, device), wrap(r.D, dd, device)
    r.monitor = Monitor(r.run_dir, cfg, log, device, enabled=dd.main)
    return r


def assemble(cfg: Config, dd: Dist, device: torch.device, amp, data, built: Built) -> Run:
    """The run's models on the device, G_ema, the optimisers and the fixed noise of the sample grids."""
    # channels_last: oneDNN's (transposed) convolutions run faster in NHWC (docs/performance.md)
    G = built.G.to(device, memory_format=torch.channels_last)
    if cfg.model.clusters:
        G.set_cluster_sizes(torch.bincount(data.labels, minlength=cfg.model.clusters))
    D = built.D.to(device, memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.train.ema_decay > 0 else None
    opt_g = make_optimizer(G.parameters(), cfg, cfg.optim.lr_of("g"), device)
    opt_d = make_optimizer(D.parameters(), cfg, cfg.optim.lr_of("d"), device)
    n_fixed = 8 * cfg.model.n_classes if cfg.model.conditional else 64  # conditional: 8 rows of the classes
    fixed_z = torch.randn(
        n_fixed, cfg.model.z_dim, generator=torch.Generator().manual_seed(cfg.train.seed + 1)
    )
    fixed_y = torch.arange(n_fixed, device=device) % cfg.model.n_classes if cfg.model.conditional else None
    return Run(
        cfg,
        dd,
        device,
        amp,
        Path("."),
        data,
        G,
        D,
        G_ema,
        opt_g,
        opt_d,
        fixed_z.to(device),
        fixed_y,
        epoch_stats=Stats(device),
        source=built.classes.source if built.classes else None,
    )


def data_settings(cfg: Config, data) -> dict:
    """What the data decides: the image channels, the classes of --conditional, --clusters when unset."""
    settings = {"channels": data.channels, "clusters": auto_clusters(cfg.model, len(data.images))}
    if cfg.model.conditional and data.classes:
        settings["n_classes"] = len(data.classes)
    return settings


def with_clusters(data, cfg: Config, state: Optional[dict], log):
    """The training images with k-means cluster labels (--clusters): computed, or the checkpoint's."""
    if state is not None:
        labels = state["clusters"].long()
    else:
        t0 = time.perf_counter()
        labels = kmeans_labels(data.images, cfg.model.clusters, cfg.train.seed)
        sizes = torch.bincount(labels)
        log(
            f"Clustered {len(labels):,} images into {cfg.model.clusters} k-means clusters "
            f"({int(sizes.min()):,} to {int(sizes.max()):,} images each) in {time.perf_counter() - t0:.1f} s"
        )
    return replace(data, labels=labels.to(data.images.device))


def loop(r: Run, progress: bool) -> dict:
    """The epochs. Returns why it stopped: {} (done), {"budget": True} or {"signal": n}."""
    cfg, dd, device, monitor = r.cfg, r.dd, r.device, r.monitor
    n_steps = steps_per_epoch(len(r.data), cfg.optim.batch_size)
    B = min(cfg.optim.batch_size, len(r.data))  # the global batch
    train_step = maybe_graphed(
        make_step(cfg, r.G, r.D, r.opt_g, r.opt_d, r.amp, device, dd), cfg, device, dd.world, B, monitor.log
    )
    total_images = cfg.train.epochs * n_steps * B  # for annealing instance noise and --lr-tail
    ema = EMA(r.G_ema, unwrap(r.G)) if r.G_ema is not None else None
    budget, stop, tick = cfg.train.time_budget, {}, Stats(device)
    lrs = [(r.opt_g, cfg.optim.lr_of("g")), (r.opt_d, cfg.optim.lr_of("d"))]
    time_used = 0.0  # the time budget's share used, as all ranks agreed at the last step
    handlers = install_stop_handlers(stop)
    t_start = time.monotonic()
    try:
        while r.epoch <= cfg.train.epochs and not stop:
            t_epoch, images_epoch, start = time.monotonic(), 0, r.batch
            bar = tqdm(
                total=n_steps,
                initial=start,
                desc=f"Epoch {r.epoch}/{cfg.train.epochs}",
                disable=not progress,
                leave=False,
                unit="step",
                dynamic_ncols=True,
            )
            epoch_batches = batches(r.data, cfg.optim.batch_size, cfg.train.seed, r.epoch, start)
            for r.batch, (real, y) in enumerate(epoch_batches, start=start):  # r.batch: the run's position
                done = r.images / total_images  # the share of the epochs trained
                if cfg.optim.lr_tail:  # the run's end: its last epoch or its time budget, the sooner
                    set_lr(lrs, lr_factor(cfg.optim.lr_tail, max(done, time_used)))
                # (1) update D, (2) update G (see make_step)
                loss_d, correct, loss_g = train_step(real, y, r.step, done)
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
                elapsed = r.train_time + time.monotonic() - t_start
                signal, time_used = rank_max(
                    [float(bool(stop)), elapsed / budget if budget else 0.0], dd, device
                )
                over = time_used >= 1
                if over or signal:
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
    r.monitor.epoch(
        stats,
        r.epoch,
        r.step,
        r.images,
        images_per_s,
        finished,
        r.train_time,
        r.epoch - 1 + min(r.batch, n_steps) / n_steps,
    )
    if not finished:
        return
    if r.dd.main and (sample_due(cfg, r.epoch) or r.epoch == cfg.train.epochs):
        r.monitor.samples(save_epoch_samples(r.G_show, r.fixed_z, r.run_dir, r.epoch, r.fixed_y), r.epoch)
    if (
        r.dd.main
        and cfg.train.eval_every
        and (r.epoch % cfg.train.eval_every == 0 or r.epoch == cfg.train.epochs)
    ):
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
        raise MnistganError(
            f"interrupted at step {r.step}; state saved. Continue with: mnistgan train --resume {r.run_dir}"
        )
    if r.dd.main:
        last = max(r.epoch - (r.batch == 0), 1)  # the epoch the budget stopped in (or just finished)
        if stop.get("budget") and not (r.run_dir / "samples" / f"epoch_{last:03d}.png").exists():
            save_epoch_samples(r.G_show, r.fixed_z, r.run_dir, last, r.fixed_y)  # the last epoch's grid
        log(
            f"Finished {r.step} steps ({r.images:,} images) in {r.train_time:.1f} s; writing "
            f"outputs to {r.run_dir}"
        )
        extra = {"steps": r.step, "images_seen": r.images, "ema": r.G_ema is not None}
        grid = write_finish(r.run_dir, r.G_show, r.cfg, r.data, extra, r.source)
        shown = course_grid_digits(grid, r.cfg)
        if shown:
            log(shown)
        if r.cfg.train.eval_every:  # the final metrics, from the saved generator, into metrics.json
            evaluate(generator=r.run_dir / "generator", n=r.cfg.train.eval_samples)
            log(f"Wrote {r.run_dir / 'metrics.json'}")
    barrier(r.dd)
    return r.run_dir


def diverged(run_dir: Path, epoch: int, step: int) -> Diverged:
    return Diverged(
        f"training diverged: NaN/Inf loss in epoch {epoch} by step {step}. The last good checkpoint "
        f"in {run_dir / 'checkpoints'} is kept; start a new run with a lower --lr or another --loss "
        f"(mnistgan train --config {run_dir / 'config.json'} --lr ...)"
    )


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
