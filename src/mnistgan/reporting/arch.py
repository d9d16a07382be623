"""Architecture tables for a report: every layer of G and D with its output shape and parameters,
found by running the real models once on a dummy batch (so the table cannot drift from the code)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..config import ModelConfig
from ..models import build_discriminator, build_generator, count_params
from ..models.layers import n_labels
from .data import Run


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


def _leaves(module: nn.Module) -> list[nn.Module]:
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
    for m in _leaves(model):

        def hook(mod, args, out, m=m):
            shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ()
            rows.append(
                (describe(m), "×".join(map(str, shape)) or "-", sum(p.numel() for p in m.parameters()))
            )

        hooks.append(m.register_forward_hook(hook))
    model.eval()
    try:
        model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return rows


def model_tables(mc: ModelConfig) -> dict[str, Any]:
    """{"G": rows, "D": rows, "G_params": n, "D_params": n} for one model config."""
    torch.manual_seed(0)
    G, D = build_generator(mc), build_discriminator(mc)
    labels = torch.tensor([0, 1])  # a cluster G (--clusters) reads its cluster off z; its D needs labels
    return {
        "G": layer_table(G, torch.zeros(2, mc.z_dim), labels if mc.conditional else None),
        "D": layer_table(D, torch.zeros(2, 1, 28, 28), labels if n_labels(mc) else None),
        "G_params": count_params(G),
        "D_params": count_params(D),
    }


def architectures(runs: list[Run]) -> list[dict[str, Any]]:
    """The distinct generators and discriminators among the runs:
    [{"net": "G" | "D", "model": family, "rows": [...], "params": n, "runs": [names]}]."""
    found: dict[tuple, dict[str, Any]] = {}
    cache: dict[str, dict] = {}
    for r in runs:
        key = repr(r.cfg.model)
        if key not in cache:
            cache[key] = model_tables(r.cfg.model)
        t = cache[key]
        for net in ("G", "D"):
            ident = (net, tuple(t[net]))
            entry = found.setdefault(
                ident,
                {
                    "net": net,
                    "model": r.cfg.model.model,
                    "rows": t[net],
                    "params": t[f"{net}_params"],
                    "runs": [],
                },
            )
            entry["runs"].append(r.name)
    return sorted(found.values(), key=lambda e: (e["net"] != "G", e["model"], e["params"]))
