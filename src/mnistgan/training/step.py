"""One training step: (1) update D, (2) update G, and the EMA of G and the optimisers they use."""

from __future__ import annotations

from typing import Optional

import torch

from ..config import Config, LossConfig
from ..models.vae import vae_losses
from .augment import d_view as make_d_view
from .distributed import SINGLE_PROCESS, Dist, has_batch_norm, shard, unwrap
from .losses import LOSSES, Loss, d_accuracy_counts, gradient_penalty, r1_penalty


def d_step(
    D, opt_d, loss: Loss, lc: LossConfig, real, fake, y_real, y_fake, view, amp, one_pass: bool = True
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

    d_params: list(D.parameters()), taken once by the caller rather than walking the modules every step."""
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


def make_step(cfg: Config, G, D, opt_g, opt_d, amp, device, dd: Dist = SINGLE_PROCESS):
    """The update of one batch, for the model family:
    step(real, y, step, progress) -> (loss_d, #correct, loss_g).

    GAN: (1) update D on real and G(z), (2) update G every n_critic steps, reusing G(z).
    VAE: one update of encoder (D's slot) and decoder (G) on the negative ELBO; the stats
    slots then hold KL (loss_d) and reconstruction (loss_g).
    """
    loss, lc, view_of = LOSSES[cfg.loss.loss], cfg.loss, make_d_view(cfg.loss)
    # one pass of D over real and fake together, unless D has batch statistics (they must see them apart)
    z_dim, D_plain = cfg.model.z_dim, unwrap(D)
    one_pass = not has_batch_norm(D_plain)
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
    The tensor lists are taken once, not by walking the modules every step."""

    def __init__(self, G_ema, G):
        self.params = list(G_ema.parameters()), list(G.parameters())
        self.buffers = list(G_ema.buffers()), list(G.buffers())

    @torch.no_grad()
    def update(self, decay: float, n_updates: int) -> None:
        d = min(decay, (1 + n_updates) / (10 + n_updates))
        torch._foreach_lerp_(*self.params, 1.0 - d)
        for b_ema, b in zip(*self.buffers):
            b_ema.copy_(b)


def lr_factor(tail: float, progress: float) -> float:
    """The learning-rate multiplier at run progress p in [0, 1] (--lr-tail): 1, then linearly down to
    0 over the last `tail` of the run. Ending at a small step lets the weights settle instead of
    stopping mid-oscillation; the EMA of G then averages over an ever smaller neighbourhood."""
    if tail <= 0:
        return 1.0
    return min(1.0, max(0.0, (1.0 - progress) / tail))


def set_lr(optimizers: list[tuple[torch.optim.Optimizer, float]], factor: float) -> None:
    """Each optimiser's learning rate = its base rate x factor."""
    for opt, base in optimizers:
        for group in opt.param_groups:
            group["lr"] = base * factor


def make_optimizer(params, cfg: Config, lr: float, device: torch.device) -> torch.optim.Optimizer:
    o = cfg.optim
    params = list(params)
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=o.momentum)
    # capturable on CUDA: its step count stays on the GPU, so the step can be a CUDA graph (cudagraph.py)
    capturable = device.type == "cuda"
    try:  # fused Adam: one kernel for all parameters (docs/performance.md)
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), fused=True, capturable=capturable)
    except (RuntimeError, TypeError):  # a device/torch without the fused kernel
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), foreach=True, capturable=capturable)
