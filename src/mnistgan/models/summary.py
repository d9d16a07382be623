"""A network's layers in words, in the order its forward pass runs them, with output shapes and
parameter counts: found by running the module once on a dummy batch, so a table cannot drift from
the code (the report's architecture tables; architecture.json of a run with your own G and D)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize


def describe(m: nn.Module) -> str:
    """One layer in words: 'Linear 100→256', 'ConvT 128→64, 4×4, stride 2', 'LeakyReLU(0.2)'."""
    name = type(m).__name__.replace("Parametrized", "")
    if isinstance(m, nn.Linear):
        text = f"Linear {m.in_features}→{m.out_features}"
    elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        kind = "ConvT" if isinstance(m, nn.ConvTranspose2d) else "Conv"
        k, s = m.kernel_size[0], m.stride[0]
        text = f"{kind} {m.in_channels}→{m.out_channels}, {k}×{k}, stride {s}"
    elif isinstance(m, nn.LeakyReLU):
        text = f"LeakyReLU({m.negative_slope:g})"
    elif isinstance(m, nn.Dropout):
        text = f"Dropout({m.p:g})"
    elif isinstance(m, nn.Embedding):
        text = f"Embedding {m.num_embeddings}→{m.embedding_dim}"
    else:
        text = name
    if parametrize.is_parametrized(m):
        text += " + spectral norm"
    return text


def leaves(module: nn.Module) -> list[nn.Module]:
    """Modules that do the work: no children, or only the parametrizations of a spectral-normed layer."""
    out = []
    for m in module.modules():
        kids = [n for n, _ in m.named_children() if n != "parametrizations"]
        if (
            not kids
            and not isinstance(m, (nn.Identity, nn.ModuleDict, nn.ModuleList))
            and type(m).__name__ not in ("ParametrizationList", "_SpectralNorm")
        ):
            out.append(m)
    return out


@torch.no_grad()
def layer_table(model: nn.Module, *inputs: Any) -> list[tuple[str, str, int]]:
    """[(layer, output shape without the batch, parameters)] in the order the forward pass runs them."""
    rows: list[tuple[str, str, int]] = []
    hooks = []
    for m in leaves(model):

        def hook(mod, args, out, m=m):
            shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ()
            rows.append(
                (describe(m), "×".join(map(str, shape)) or "-", sum(p.numel() for p in m.parameters()))
            )

        hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(*inputs)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def model_tables(
    G: nn.Module, D: nn.Module, z_dim: int, labels: bool = False, d_labels: bool = False, channels: int = 1
) -> dict:
    """{"G": rows, "D": rows, "G_params": n, "D_params": n} for G (z, [labels]) and D (images, [labels])."""
    y = torch.tensor([0, 1])
    return {
        "G": layer_table(G, torch.zeros(2, z_dim), y if labels else None),
        "D": layer_table(D, torch.zeros(2, channels, 28, 28), y if d_labels else None),
        "G_params": sum(p.numel() for p in G.parameters()),
        "D_params": sum(p.numel() for p in D.parameters()),
    }
