"""Hostile and bad input: every loader ends in MnistganError (one line), never another
exception, a hang, a giant allocation or code run from a pickle.

Loaders covered: the IDX reader (data.read_idx), the config loader (config.load_config /
from_dict), the generator loader (checkpoint.read_generator, sample.load_generator), the
resume-state loader (checkpoint.load_checkpoint, `train --resume`) and the image loaders
(evaluate.inputs.load_input / load_inputs: .npz, PNG folders, grid PNGs).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from safetensors.torch import load_file, save_file

from mnistgan.config import SECTIONS, Config, flat_fields, from_dict, load_config, to_dict, with_overrides
from mnistgan.data import read_idx
from mnistgan.errors import MnistganError
from mnistgan.evaluator.inputs import load_input, load_inputs
from mnistgan.generator.format import save_generator as export_generator
from mnistgan.generator.sample import load_generator
from mnistgan.models import build_generator
from mnistgan.training.state import latest_checkpoint, load_checkpoint, save_checkpoint

from helpers import run_cli, write_idx

# sized so that the whole file runs in well under a minute on 2 busy cores
FEW = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SOME = settings(FEW, max_examples=80)

TINY_MODEL = {"g_width": 4, "d_width": 4, "z_dim": 8}


def outcome(fn, *args, **kwargs):
    """Call a loader: return its result, or None when it refused with a one-line MnistganError.

    Any other exception propagates and fails the test: that is the property under test.
    """
    try:
        return fn(*args, **kwargs)
    except MnistganError as e:
        msg = str(e)
        assert msg.strip(), "an error without a message"
        assert "\n" not in msg, f"the CLI prints errors as one line, got: {msg!r}"
        return None


def refuses(fn, *args, match: str | None = None, **kwargs) -> str:
    with pytest.raises(MnistganError, match=match) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


class Evil:
    """Unpickling this object runs `touch marker`: it must never be unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


# ============================================================================ IDX reader


def idx_bytes(dims, payload: bytes, dtype: int = 0x08) -> bytes:
    return bytes([0, 0, dtype, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims) + payload


def check_idx(path: Path, declared: tuple | None = None, payload: bytes | None = None):
    """read_idx either refuses, or returns exactly what the header declares and the file holds."""
    a = outcome(read_idx, path)
    if a is not None:
        assert a.dtype == np.uint8 and a.ndim in (1, 3)
        if declared is not None:
            assert a.shape == tuple(declared) and a.tobytes() == payload
    return a


@FEW
@given(data=st.binary(max_size=3000), gz=st.booleans())
def test_idx_random_bytes(work, data, gz):
    p = work / ("rand.gz" if gz else "rand")
    p.write_bytes(gzip.compress(data) if gz else data)
    check_idx(p)
    (work / "junk.gz").write_bytes(data)  # random bytes that claim to be gzip
    check_idx(work / "junk.gz")


@SOME
@given(
    dims=st.one_of(
        st.lists(st.integers(0, 6), min_size=1, max_size=4),
        st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3),
    ),
    extra=st.integers(-5, 5),
    dtype=st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0B, 0x0D]),
    gz=st.booleans(),
)
def test_idx_headers_must_match_the_data(work, dims, extra, dtype, gz):
    total = int(np.prod(dims, dtype=object))
    n = max(0, total + extra) if total < 10_000 else abs(extra) * 100
    payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
    raw = idx_bytes(dims, payload, dtype)
    p = work / ("h.gz" if gz else "h")
    p.write_bytes(gzip.compress(raw) if gz else raw)
    a = check_idx(p, dims, payload)
    well_formed = dtype == 0x08 and len(dims) in (1, 3) and 0 not in dims and n == total
    assert (a is not None) == well_formed


@SOME
@given(cut=st.integers(0, 10_000), flip=st.integers(0, 10_000), gz=st.booleans())
def test_idx_truncated_or_flipped(work, cut, flip, gz):
    images = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    good = idx_bytes(images.shape, images.tobytes())
    data = gzip.compress(good) if gz else good
    truncated = data[: cut % len(data)]
    p = work / ("t.gz" if gz else "t")
    p.write_bytes(truncated)
    assert check_idx(p) is None, "a truncated IDX file was accepted"
    i = flip % len(data)
    p.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :])
    a = check_idx(p)
    if a is not None and not gz:
        # a flipped raw byte is either in the header (refused) or in the pixels (read as is)
        assert i >= 16 and a.shape == images.shape and int((a != images).sum()) == 1


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dims", [(0xFFFFFFFF, 28, 28), (2**16, 2**8, 2**7), (0xFFFFFFFF,), (60000, 28, 28)])
def test_idx_huge_declared_dimensions_allocate_nothing(work, dims, gz):
    p = work / ("huge.gz" if gz else "huge")
    raw = idx_bytes(dims, bytes(4096))
    p.write_bytes(gzip.compress(raw) if gz else raw)
    tracemalloc.start()
    try:
        refuses(read_idx, p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"refusing a lying header allocated {peak / 2**20:.0f} MiB"


# ============================================================================ config loader

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "none",
            "1",
            "8",
            "1e-3",
            "nan",
            "inf",
            "-1",
            "true",
            "mlp",
            "dcgan",
            "cpu",
            "cuda:x",
            "1,2,x",
            "translation",
            "0x10",
        ]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)
FIELDS = flat_fields()


@st.composite
def raw_configs(draw):
    """Nested dicts shaped like config.json, with every kind of junk in values and keys."""
    raw: dict = {}
    for name, value in draw(st.lists(st.tuples(st.sampled_from(sorted(FIELDS)), json_values), max_size=6)):
        section = (
            FIELDS[name][0] if draw(st.integers(0, 9)) else draw(st.sampled_from(list(SECTIONS) + ["junk"]))
        )
        raw.setdefault(section, {})[name] = value
    if draw(st.integers(0, 9)) == 0:
        raw[draw(st.sampled_from(list(SECTIONS)))] = draw(json_values)  # a section that is not an object
    return raw


@SOME
@given(raw=st.one_of(raw_configs(), json_values))
def test_config_from_dict_refuses_junk_or_returns_a_valid_config(raw):
    cfg = outcome(from_dict, raw)
    if cfg is not None:
        assert isinstance(cfg, Config)
        assert from_dict(json.loads(json.dumps(to_dict(cfg)))) == cfg  # what we accept round-trips


@FEW
@given(data=st.one_of(st.binary(max_size=400), raw_configs().map(lambda r: json.dumps(r).encode())))
def test_config_file_of_random_bytes_or_json(work, data):
    p = work / "config.json"
    p.write_bytes(data)
    outcome(load_config, p)


@pytest.mark.parametrize(
    "raw, message",
    [
        ([], "expected a JSON object"),
        ("model", "expected a JSON object"),
        (None, "expected a JSON object"),
        ({"model": [1]}, "section 'model' must be an object"),
        ({"modle": {}}, "unknown section"),
        ({"model": {"zdim": 8}}, "unknown setting 'model.zdim'"),
        ({"model": {"z_dim": "eight"}}, "invalid value for z_dim"),
        ({"model": {"z_dim": -8}}, "z_dim must be positive"),
        ({"model": {"z_dim": 0}}, "z_dim must be positive"),
        ({"model": {"z_dim": 2.5}}, "invalid value for z_dim"),
        ({"model": {"z_dim": True}}, "invalid value for z_dim"),
        ({"model": {"z_dim": None}}, "invalid value for z_dim"),
        ({"model": {"z_dim": {"a": [1, {"b": None}]}}}, "invalid value for z_dim"),
        ({"model": {"g_width": -4}}, "g_width must be positive"),
        ({"model": {"model": 3}}, "invalid value for model"),
        ({"model": {"model": "gan"}}, "unknown model 'gan'"),
        ({"optim": {"batch_size": [64]}}, "invalid value"),
        ({"optim": {"lr": "fast"}}, "invalid value for lr"),
        ({"optim": {"lr": float("nan")}}, "invalid value for lr"),
        ({"optim": {"lr": float("inf")}}, "invalid value for lr"),
        ({"optim": {"lr": -1e-3}}, "lr must be positive"),
        ({"train": {"epochs": -1}}, "epochs must be positive"),
        ({"data": {"limit": -5}}, "limit must be positive"),
        ({"data": {"digit": 12}}, "digit must be between 0 and 9"),
        ({"data": {"data_dir": 5}}, "invalid value"),
        ({"train": {"sample_epochs": [0]}}, "sample_epochs must be positive"),
        ({"train": {"sample_epochs": "1,x"}}, "invalid value for sample_epochs"),
        ({"train": {"sample_epochs": {"1": 2}}}, "invalid value for sample_epochs"),
        ({"train": {"ema_decay": 1.0}}, r"ema_decay must be in \[0, 1\)"),
        ({"train": {"device": "cuda:x"}}, "unknown device"),
        ({"train": {"deterministic": "maybe"}}, "invalid value for deterministic"),
    ],
)
def test_config_bogus_values_are_one_clear_error(raw, message):
    refuses(from_dict, raw, match=message)


@pytest.mark.parametrize(
    "text",
    [
        '{"optim": {"lr": 1' + "0" * 400 + "}}",  # an integer too large for a float field
        '{"model": {"z_dim": ' + "9" * 5000 + "}}",  # more digits than Python converts
        "[" * 100_000 + "]" * 100_000,  # nesting deeper than the JSON parser recurses
    ],
    ids=["int-too-big-for-float", "5000-digit-int", "deep-nesting"],
)
def test_config_files_that_break_python_number_and_json_limits(work, text):
    p = work / "limits.json"
    p.write_text(text)
    refuses(load_config, p)


def test_config_refuses_seeds_torch_cannot_use():
    refuses(from_dict, {"train": {"seed": 2**64}})


# ============================================================================ generator loader


@pytest.fixture(scope="module")
def generator_dir(work) -> Path:
    cfg = with_overrides(Config(), TINY_MODEL)
    torch.manual_seed(0)
    export_generator(build_generator(cfg.model), cfg, work / "gen")
    return work / "gen"


def copy_generator(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def check_generator(d: Path):
    g = outcome(load_generator, d)
    if g is not None:  # whatever loads draws finite images in range, or refuses to draw
        x = outcome(g.predict, np.zeros((2, g.z_dim)))
        if x is not None:
            assert x.shape == (2, 28, 28) and np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    return g


@FEW
@given(data=st.binary(max_size=600))
def test_generator_random_weights_file(work, generator_dir, data):
    d = copy_generator(generator_dir, work / "g_rand")
    (d / "model.safetensors").write_bytes(data)
    assert check_generator(d) is None


@SOME
@given(cut=st.integers(0, 100_000), flip=st.integers(0, 100_000), bit=st.integers(0, 7))
def test_generator_truncated_or_flipped_weights(work, generator_dir, cut, flip, bit):
    d = copy_generator(generator_dir, work / "g_flip")
    good = (generator_dir / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(good[: cut % len(good)])
    assert check_generator(d) is None
    i = flip % len(good)
    (d / "model.safetensors").write_bytes(good[:i] + bytes([good[i] ^ (1 << bit)]) + good[i + 1 :])
    check_generator(d)


@FEW
@given(
    data=st.one_of(
        st.binary(max_size=300),
        raw_configs().map(lambda r: json.dumps(r).encode()),
        raw_configs().map(lambda r: json.dumps({"format": "mnistgan-generator", "config": r}).encode()),
        json_values.map(lambda v: json.dumps({"format": "mnistgan-generator", "config": v}).encode()),
    )
)
def test_generator_malformed_config_json(work, generator_dir, data):
    d = copy_generator(generator_dir, work / "g_cfg")
    (d / "config.json").write_bytes(data)
    check_generator(d)


def edit_config(d: Path, section: str, key: str, value) -> None:
    meta = json.loads((d / "config.json").read_text())
    meta["config"][section][key] = value
    (d / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("model", "z_dim", 10**9, "weight|beyond what mnistgan supports"),  # would be a 1.5 TB layer
        ("model", "z_dim", 200_000, "weight|beyond what mnistgan supports"),  # would be a 300 MB layer
        ("model", "g_width", 100_000, "weight|beyond what mnistgan supports"),
        ("model", "model", "mlp", "does not match"),
        ("model", "conditional", True, "weight"),
        ("model", "z_dim", "8x", "invalid value for z_dim"),
        ("model", "z_dim", -8, "z_dim must be positive"),
        ("model", "g_norm", {"nested": ["junk"]}, "invalid value for g_norm"),
    ],
)
def test_generator_config_that_lies_about_the_weights(work, generator_dir, section, key, value, message):
    d = copy_generator(generator_dir, work / "g_lie")
    edit_config(d, section, key, value)
    refuses(load_generator, d, match=message)


def test_generator_config_json_beyond_parser_limits(work, generator_dir):
    d = copy_generator(generator_dir, work / "g_deep")
    (d / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    refuses(load_generator, d, match="corrupt")
    (d / "config.json").write_text('{"format": "mnistgan-generator", "config": ' + "9" * 5000 + "}")
    refuses(load_generator, d, match="corrupt")
    (d / "config.json").write_bytes(b"\xff\xfe{}")
    refuses(load_generator, d, match="corrupt")


def weights_of(generator_dir: Path) -> dict:
    return load_file(str(generator_dir / "model.safetensors"))


def first_float(state: dict) -> str:
    return next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda s, k: s.__setitem__(k, s[k].clone().index_fill_(0, torch.tensor([0]), float("nan"))),
            "NaN or Inf",
        ),
        (
            lambda s, k: s.__setitem__(k, s[k].clone().index_fill_(0, torch.tensor([0]), float("-inf"))),
            "NaN or Inf",
        ),
        (lambda s, k: s.__setitem__(k, s[k].flatten()), "has shape"),
        (lambda s, k: s.__setitem__(k, s[k].unsqueeze(0).contiguous()), "has shape"),
        (lambda s, k: s.__setitem__("extra.weight", torch.zeros(3)), "unexpected"),
        (lambda s, k: s.pop(k), "missing"),
        (lambda s, k: s.__setitem__(k + "_renamed", s.pop(k)), "missing"),
        (lambda s, k: s.clear() or s.__setitem__("x", torch.zeros(1)), "missing"),
        (lambda s, k: s.__setitem__(k, s[k].to(torch.float8_e4m3fn)), "dtype"),
        (lambda s, k: s.__setitem__(k, s[k].to(torch.complex64)), "dtype"),
        (lambda s, k: s.__setitem__(k, s[k].to(torch.int64)), "dtype"),
    ],
)
def test_generator_weights_with_wrong_values_names_shapes_or_dtypes(work, generator_dir, edit, message):
    d = copy_generator(generator_dir, work / "g_bad")
    state = weights_of(generator_dir)
    edit(state, first_float(state))
    save_file(state, str(d / "model.safetensors"))
    refuses(load_generator, d, match=message)


def test_generator_whose_weights_make_nan_images_refuses_to_draw(work, generator_dir):
    """Finite but impossible weights (a negative BatchNorm variance: one flipped sign bit) give NaN images."""
    d = copy_generator(generator_dir, work / "g_var")
    state = weights_of(generator_dir)
    var = next(k for k in state if k.endswith("running_var"))
    state[var] = -state[var]
    save_file(state, str(d / "model.safetensors"))
    g = load_generator(d)
    refuses(g.predict, np.zeros((2, g.z_dim)), match="NaN")
    refuses(g.generate, 4, match="NaN")


def test_generator_weights_in_other_float_precisions_still_load(work, generator_dir):
    d = copy_generator(generator_dir, work / "g_half")
    state = {k: v.half() if v.is_floating_point() else v for k, v in weights_of(generator_dir).items()}
    save_file(state, str(d / "model.safetensors"))
    assert check_generator(d) is not None


@pytest.mark.parametrize("how", ["torch.save", "torch.save-legacy", "pickle"])
def test_generator_whose_weights_are_a_pickle_is_refused_without_running_it(work, generator_dir, how):
    marker = work / f"pwned-{how}"
    d = copy_generator(generator_dir, work / "g_pickle")
    payload = {"net.fc.weight": Evil(marker)}
    if how == "pickle":
        (d / "model.safetensors").write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, d / "model.safetensors", _use_new_zipfile_serialization=how == "torch.save")
    refuses(load_generator, d, match="corrupt")
    refuses(load_generator, d / "model.safetensors", match="corrupt")
    # a checkpoint-like .pt handed to the generator loader is never opened as a pickle either
    shutil.copy(d / "model.safetensors", work / "evil.pt")
    refuses(load_generator, work / "evil.pt", match="not found")
    assert not marker.exists(), "loading ran code from a pickle"


# ============================================================================ resume-state loader


@pytest.fixture(scope="module")
def checkpoint_file(work) -> Path:
    """A real resume checkpoint, as the training loop writes it (one tiny epoch through the CLI)."""
    run = work / "ckrun"
    run_cli(
        "train",
        "--run-dir",
        run,
        "--epochs",
        "1",
        "--limit",
        "16",
        "--sample-epochs",
        "1",
        "--precision",
        "fp32",
        "--g-width",
        "4",
        "--d-width",
        "4",
        "--z-dim",
        "8",
        "--batch-size",
        "16",
        "--no-progress",
        env={"MNISTGAN_OFFLINE": "1"},
    )
    return run / "checkpoints" / "last.pt"


@FEW
@given(cut=st.integers(0, 10**6), flip=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_checkpoint_truncated_or_flipped(work, checkpoint_file, cut, flip, bit):
    good = checkpoint_file.read_bytes()
    p = work / "flip.pt"
    p.write_bytes(good[: cut % len(good)])
    assert outcome(load_checkpoint, p) is None
    i = flip % len(good)
    p.write_bytes(good[:i] + bytes([good[i] ^ (1 << bit)]) + good[i + 1 :])
    state = outcome(load_checkpoint, p)
    if state is not None:
        assert isinstance(state["G"], dict) and isinstance(state["step"], int)


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.pop("G"),
        lambda s: s.pop("rng_cpu"),
        lambda s: s.__setitem__("epoch", "3"),
        lambda s: s.__setitem__("step", -1),
        lambda s: s.__setitem__("batch", True),
        lambda s: s.__setitem__("G", [1, 2]),
        lambda s: s.__setitem__("D", {"w": 1.0}),
        lambda s: s.__setitem__("opt_g", None),
        lambda s: s.__setitem__("epoch_stats", [0.0]),
        lambda s: s.__setitem__("rng_cpu", torch.zeros(3)),
        lambda s: s.__setitem__("train_time", "long"),
    ],
    ids=[
        "no-G",
        "no-rng",
        "epoch-str",
        "step-negative",
        "batch-bool",
        "G-list",
        "D-float",
        "opt-None",
        "stats-short",
        "rng-float",
        "time-str",
    ],
)
def test_checkpoint_with_missing_or_mistyped_fields_is_refused(work, checkpoint_file, edit):
    state = load_checkpoint(checkpoint_file)
    edit(state)
    p = work / "bad.pt"
    torch.save(state, p)
    refuses(load_checkpoint, p, match="not an mnistgan checkpoint|corrupt")


def test_resume_refuses_pickled_code_in_every_checkpoint_without_running_it(work, checkpoint_file):
    """A run whose last.pt and both epoch checkpoints run code when unpickled (three pickle flavours)."""
    run = work / "evilrun"
    shutil.rmtree(run, ignore_errors=True)
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoint_file.parent.parent / "config.json", run / "config.json")
    marker = work / "pwned-resume"
    evil = {"format": "mnistgan-checkpoint", "G": Evil(marker)}
    torch.save(evil, run / "checkpoints" / "last.pt")
    torch.save(evil, run / "checkpoints" / "epoch_002.pt", _use_new_zipfile_serialization=False)
    (run / "checkpoints" / "epoch_001.pt").write_bytes(pickle.dumps(evil))
    refuses(latest_checkpoint, run, match="no usable checkpoint")
    proc = run_cli("train", "--resume", run, "--no-progress", check=False, env={"MNISTGAN_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no usable checkpoint"), proc.stderr
    assert not marker.exists(), "resume ran code from a pickled checkpoint"
    assert not (run / "generator").exists()


def test_resume_with_weights_of_another_shape_is_one_clear_error(work, checkpoint_file):
    from mnistgan.training import run_training as train

    run = work / "otherrun"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(checkpoint_file.parent.parent, run)
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    state["G"] = {k: (v[:1].clone() if v.dim() else v) for k, v in state["G"].items()}
    for p in (run / "checkpoints").glob("*.pt"):
        p.unlink()
    save_checkpoint(run / "checkpoints" / "last.pt", state)
    refuses(train, load_config(run / "config.json"), resume=run, progress=False, log=lambda m: None)


# ============================================================================ image loaders


def save_npz(path: Path, **arrays) -> Path:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def check_loaded(loaded, n: int | None = None):
    if loaded is not None:
        assert (
            loaded.images.dtype == np.uint8
            and loaded.images.ndim == 3
            and loaded.images.shape[1:] == (28, 28)
        )
        assert len(loaded.names) == len(loaded.images) and (n is None or len(loaded.images) == n)
        if loaded.labels is not None:
            assert (
                loaded.labels.shape == (len(loaded.images),)
                and 0 <= loaded.labels.min() <= loaded.labels.max() <= 9
            )
    return loaded


npz_dtypes = st.one_of(
    hnp.scalar_dtypes(),
    st.sampled_from([np.dtype("U3"), np.dtype("S2"), np.dtype([("a", "u1"), ("b", "f4")])]),
)
npz_shapes = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=4, max_side=4),
    st.sampled_from(
        [
            (2, 28, 28),
            (1, 1, 28, 28),
            (3, 28, 28, 1),
            (28, 28),
            (0, 28, 28),
            (2, 3, 28, 28),
            (2, 28, 28, 3),
            (2, 28, 27),
        ]
    ),
)


@SOME
@given(
    images=hnp.arrays(npz_dtypes, npz_shapes),
    labels=st.one_of(
        st.none(),
        hnp.arrays(
            st.sampled_from([np.int64, np.uint8, np.float32, np.int8]),
            hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
        ),
    ),
    key=st.sampled_from(["images", "images", "other"]),
)
def test_npz_arrays_of_any_dtype_and_shape(work, images, labels, key):
    arrays = {key: images}
    if labels is not None:
        arrays["labels"] = labels
    p = save_npz(work / "a.npz", **arrays)
    check_loaded(outcome(load_input, p))


@FEW
@given(data=st.binary(max_size=800), suffix=st.sampled_from([".npz", ".png"]))
def test_image_files_of_random_bytes(work, data, suffix):
    p = work / f"random{suffix}"
    p.write_bytes(data)
    assert outcome(load_input, p) is None
    assert outcome(load_inputs, [p, p]) is None


@pytest.fixture(scope="module")
def good_images(work) -> dict:
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    single, grid = work / "one.png", work / "grid.png"
    Image.fromarray(digits[0], mode="L").save(single)
    Image.fromarray(
        np.kron(np.block([[digits[0], digits[1]], [digits[2], digits[3]]]), np.ones((4, 4), np.uint8)),
        mode="L",
    ).save(grid)
    npz = save_npz(work / "good.npz", images=digits, labels=np.arange(4))
    return {"png": single.read_bytes(), "grid": grid.read_bytes(), "npz": npz.read_bytes()}


@SOME
@given(
    kind=st.sampled_from(["png", "grid", "npz"]),
    cut=st.integers(0, 10**5),
    flip=st.integers(0, 10**5),
    bit=st.integers(0, 7),
)
def test_image_files_truncated_or_flipped(work, good_images, kind, cut, flip, bit):
    good = good_images[kind]
    p = work / f"mut.{'npz' if kind == 'npz' else 'png'}"
    p.write_bytes(good[: cut % len(good)])
    assert outcome(load_input, p) is None
    i = flip % len(good)
    p.write_bytes(good[:i] + bytes([good[i] ^ (1 << bit)]) + good[i + 1 :])
    check_loaded(outcome(load_input, p))


@FEW
@given(
    mode=st.sampled_from(["L", "1", "LA", "RGB", "RGBA", "P", "I;16"]),  # what PIL writes as PNG
    w=st.sampled_from([1, 27, 28, 29, 56, 112, 224, 57]),
    h=st.sampled_from([1, 28, 56, 112, 113]),
    grid=st.one_of(
        st.none(),
        st.sampled_from(["2x2", "1x1", "0x3", "x", "4,4", "99999999999999999999x1", " 2 X 1 "]),
        st.text(max_size=8),
    ),
)
def test_png_of_any_mode_size_and_grid_argument(work, mode, w, h, grid):
    p = work / "m.png"
    Image.new(mode, (w, h)).save(p)
    check_loaded(outcome(load_input, p, grid))
    folder = work / "folder"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    shutil.copy(p, folder / "b.png")
    Image.new("L", (28, 28)).save(folder / "a.png")
    check_loaded(outcome(load_input, folder))


def png_header_only(w: int, h: int, color_type: int = 0) -> bytes:
    """A PNG that declares w x h pixels and holds (almost) no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def npz_header_only(shape: tuple, descr: str = "|u1") -> bytes:
    """An .npz whose images.npy declares `shape` and holds no data."""
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, shape)
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("images.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    return buf.getvalue()


HUGE_FILES = [
    ("bomb.png", png_header_only(100_000, 100_000), "too large|decompression"),
    ("long.png", png_header_only(2**31 - 1, 1), "too large|decompression"),
    ("rgb.png", png_header_only(12_000, 12_000, color_type=2), "too large|RGB"),
    ("rgb-small.png", png_header_only(9_000, 9_000, color_type=2), "RGB"),
    ("huge.npz", npz_header_only((10**12, 28, 28)), "not a readable .npz|too large"),
    ("big.npz", npz_header_only((10**7, 28, 28)), "not a readable .npz|too large"),  # 7.8 GB
    ("neg.npz", npz_header_only((-1, 28, 28)), "not a readable .npz"),
    ("obj.npz", npz_header_only((2, 28, 28), "|O"), "not a readable .npz"),
]


@pytest.mark.parametrize("name, data, message", HUGE_FILES, ids=[c[0] for c in HUGE_FILES])
def test_image_files_with_huge_declared_sizes(work, name, data, message):
    p = work / name
    p.write_bytes(data)
    refuses(load_input, p, match=message)


def test_npz_holding_pickled_objects_is_refused_without_running_them(work):
    marker = work / "pwned-npz"
    p = work / "objects.npz"
    np.savez(p, images=np.array([Evil(marker)], dtype=object))
    refuses(load_input, p, match="not a readable .npz")
    assert not marker.exists()


# ============================================================================ memory, in a fresh process

MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from mnistgan.errors import MnistganError
    from mnistgan.data import read_idx
    from mnistgan.evaluator.inputs import load_input
    from mnistgan.generator.sample import load_generator
    LOADERS = {"idx": read_idx, "image": load_input, "generator": load_generator}
    good, bad = json.loads(sys.argv[1])
    for kind, p in good:  # warm up: imports, allocator pools, PIL plugins
        LOADERS[kind](Path(p))
    base, results = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, []
    for kind, p in bad:
        try:
            LOADERS[kind](Path(p))
            results.append("loaded")
        except MnistganError:
            results.append("refused")
        except BaseException as e:
            results.append(type(e).__name__)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(json.dumps({"results": results, "grown_mib": grown}))
""")


def test_hostile_sizes_never_make_a_loader_allocate(work, generator_dir, good_images):
    """Peak memory (max RSS of a fresh process) barely moves while every hostile file is refused."""
    d = work / "mem"
    d.mkdir(exist_ok=True)
    (d / "good.npz").write_bytes(good_images["npz"])
    (d / "good.png").write_bytes(good_images["grid"])
    write_idx(d / "good-idx.gz", np.zeros((2, 28, 28), np.uint8), gz=True)
    good = [
        ["idx", str(d / "good-idx.gz")],
        ["image", str(d / "good.npz")],
        ["image", str(d / "good.png")],
        ["generator", str(generator_dir)],
    ]
    bad = []
    for i, dims in enumerate([(2**16, 2**8, 2**7), (0xFFFFFFFF, 28, 28)]):
        raw = idx_bytes(dims, bytes(1000))
        (d / f"{i}.idx").write_bytes(raw)
        (d / f"{i}.idx.gz").write_bytes(gzip.compress(raw))
        bad += [["idx", str(d / f"{i}.idx")], ["idx", str(d / f"{i}.idx.gz")]]
    for name, data in [
        ("bomb.png", png_header_only(100_000, 100_000)),
        ("huge.npz", npz_header_only((10**12, 28, 28))),
        ("big.npz", npz_header_only((10**7, 28, 28))),
        ("rgb.png", png_header_only(9_000, 9_000, color_type=2)),
    ]:
        (d / name).write_bytes(data)
        bad.append(["image", str(d / name)])
    for i, (key, value) in enumerate([("z_dim", 10**9), ("z_dim", 200_000), ("g_width", 500)]):
        g = copy_generator(generator_dir, d / f"gen{i}")
        edit_config(g, "model", key, value)
        bad.append(["generator", str(g)])
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, json.dumps([good, bad])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["results"] == ["refused"] * len(bad), list(zip([b[1] for b in bad], report["results"]))
    assert report["grown_mib"] < 64, (
        f"refusing hostile files raised peak memory by {report['grown_mib']:.0f} MiB"
    )
