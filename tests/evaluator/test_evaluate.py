"""The bundled classifiers, the `evaluate` and `predict` commands, and the training-loop hook."""

import hashlib
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from mnistgan.config import Config, to_dict, with_overrides
from mnistgan.data import load_images
from mnistgan.errors import MnistganError
from mnistgan.evaluator import classifier, evaluate_module, metrics_document, predict
from mnistgan.files import write_json
from mnistgan.generator.format import save_generator as export_generator
from mnistgan.generator.images import save_folder, save_grid
from mnistgan.models import build_generator

from helpers import call, run_cli

FASHION_DIRS = [
    os.environ.get("FASHION_MNIST_DIR", ""),
    "/work/shared/data/fashion-mnist",
    "/usr/share/datasets/fashion-mnist",
]


@pytest.fixture(scope="session")
def test_images():
    """The MNIST test set: uint8 (10000, 28, 28) and labels (10000,)."""
    t = load_images("mnist", split="test", with_labels=True)
    return t.images[:, 0].numpy(), t.labels.numpy()  # one channel: (N, 1, 28, 28) -> (N, 28, 28)


@pytest.fixture(scope="session", autouse=True)
def mnist_reference(tmp_path_factory):
    """Compute the cached reference statistics once per session, in the cache every test uses."""
    from mnistgan.evaluator.reference import load_reference

    cache = str(tmp_path_factory.getbasetemp() / "cache")  # what conftest's autouse fixture sets
    before = os.environ.get("MNISTGAN_CACHE")
    os.environ["MNISTGAN_CACHE"] = cache
    try:
        return load_reference("mnist")
    finally:
        os.environ.pop("MNISTGAN_CACHE") if before is None else os.environ.__setitem__(
            "MNISTGAN_CACHE", before
        )


# ----------------------------------------------------------------------------- the classifiers


@pytest.mark.parametrize("dataset", list(classifier.CLASSIFIERS))
def test_weights_are_pinned_small_and_documented(dataset):
    path = classifier.weights_path(dataset)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    info = json.loads(path.with_suffix(".json").read_text())
    assert digest == classifier.CLASSIFIERS[dataset].sha256 == info["sha256"]
    assert path.stat().st_size == info["bytes"] < 5_000_000
    assert info["seed"] == 0 and info["train_seconds"] > 0


def test_mnist_accuracy_claim_holds_on_a_test_slice(test_images):
    info = json.loads(classifier.weights_path("mnist").with_suffix(".json").read_text())
    assert info["test_accuracy"] >= 0.995 and info["test_accuracy_fp32"] >= 0.995
    images, labels = test_images
    _, probs = classifier.classify(torch.from_numpy(images[:2000]), "mnist", bf16=False)
    correct = int((probs.argmax(1).numpy() == labels[:2000]).sum())
    assert abs(correct - info["test_first_2000_correct_fp32"]) <= 2  # same weights, any float32 CPU kernel
    assert correct / 2000 >= 0.995


def test_fashion_accuracy_claim_holds_on_a_test_slice():
    folder = next((d for d in FASHION_DIRS if d and os.path.isdir(d)), None)
    if folder is None:
        pytest.skip("Fashion-MNIST files not found (set FASHION_MNIST_DIR)")
    info = json.loads(classifier.weights_path("fashion-mnist").with_suffix(".json").read_text())
    t = load_images("fashion-mnist", folder, split="test", with_labels=True)
    _, probs = classifier.classify(t.images[:2000], "fashion-mnist", bf16=False)
    correct = int((probs.argmax(1) == t.labels[:2000]).sum())
    assert abs(correct - info["test_first_2000_correct_fp32"]) <= 2
    assert info["test_accuracy"] >= 0.9


def test_corrupt_weights_are_refused(monkeypatch, tmp_path):
    bad = tmp_path / "classifier-mnist.safetensors"
    bad.write_bytes(classifier.weights_path("mnist").read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(classifier, "weights_path", lambda dataset: bad)
    classifier.load_classifier.cache_clear()
    try:
        with pytest.raises(MnistganError, match="corrupt or was replaced"):
            classifier.load_classifier("mnist")
    finally:
        classifier.load_classifier.cache_clear()
    with pytest.raises(MnistganError, match="no bundled classifier for data set 'kmnist'"):
        classifier.load_classifier("kmnist")


# ----------------------------------------------------------------------------- evaluate: the command


def evaluate_json(*args) -> dict:
    return json.loads(run_cli("evaluate", *args, "--json").stdout)


def test_cli_scores_real_test_images_as_near_perfect(tmp_path, test_images):
    images, labels = test_images
    path = tmp_path / "real.npz"
    np.savez(path, images=images[:1000], labels=labels[:1000])
    out = evaluate_json("--samples", path, "--out", tmp_path / "m.json")
    s, r = out["samples"], out["reference"]
    assert out["n"] == s["n"] == r["n"] == 1000
    assert json.loads((tmp_path / "m.json").read_text())["samples"] == s
    assert s["precision"] == 1.0  # every sample is itself a reference image
    assert s["fid"] < 2 * r["fid"]  # at least as close as other real images
    assert s["inception_score"] > 9.5 and s["classes_covered"] == 10 and s["kl_to_uniform"] < 0.01
    assert s["confident_share"] > 0.97 and s["label_accuracy"] > 0.99  # labels = the true digits
    assert s["recall"] > 0.7 and s["coverage"] > 0.3 and 0.8 < s["density"] < 1.5
    assert (
        sum(s["histogram"]) == 1000
        and np.abs(np.array(s["histogram"]) - np.bincount(labels[:1000])).max() <= 5
    )


def test_cli_scores_uniform_noise_as_far_off(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "noise.npz", images=noise)
    out = evaluate_json("--samples", tmp_path / "noise.npz", "--n", "500")
    s, r = out["samples"], out["reference"]
    assert out["n"] == 500
    assert s["fid"] > 20 * r["fid"] and s["fid"] > 10
    assert s["precision"] < 0.05 and s["recall"] < 0.05 and s["coverage"] < 0.05
    assert s["inception_score"] < 2 and s["classes_covered"] <= 3 and s["kl_to_uniform"] > 1.0
    assert r["inception_score"] > 9.5 and r["classes_covered"] == 10


@pytest.fixture
def run_dir(tmp_path):
    """A run folder holding an (untrained) conditional DCGAN generator."""
    cfg = with_overrides(Config(), {"g_width": 8, "z_dim": 16, "conditional": True})
    torch.manual_seed(0)
    run = tmp_path / "run"
    export_generator(build_generator(cfg.model), cfg, run / "generator")
    write_json(run / "config.json", to_dict(cfg))
    return run


def test_evaluate_generator_writes_metrics_into_its_run(run_dir, capsys):
    code, text, _ = call(
        ["evaluate", "--generator", run_dir / "generator", "--n", "300", "--seed", "1"], capsys
    )
    assert code == 0
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["n"] == 300 and saved["seed"] == 1 and saved["dataset"] == "mnist"
    assert 0 <= saved["samples"]["label_accuracy"] <= 1  # conditional: balanced requested digits
    assert saved["reference"]["label_accuracy"] > 0.99  # real held-out digits: the classifier's accuracy
    assert "accuracy of the requested label" in text and f"Wrote {run_dir / 'metrics.json'}" in text


def test_evaluate_errors_are_one_line(tmp_path, run_dir, capsys):
    (tmp_path / "empty").mkdir()
    cases = [
        (["evaluate", "--samples", str(tmp_path / "empty")], "holds no .png images"),
        (["evaluate", "--generator", str(run_dir), "--n", "3"], "at least 4 samples (k = 3), got 3"),
        (["evaluate", "--generator", str(run_dir), "--dataset", "fashion-mnist"], "trained on mnist"),
        (["evaluate"], "exactly one of --generator"),
        (["evaluate", "--samples", str(tmp_path / "empty"), "--dataset", "kmnist"], "no bundled classifier"),
    ]
    for argv, message in cases:
        code, _, err = call(argv, capsys)
        assert code == 2 and err.startswith("error: ") and message in err, (argv, err)
        assert err.count("\n") == 1


# ----------------------------------------------------------------------------- predict


def test_predict_labels_folders_grids_and_npz_in_input_order(tmp_path, test_images, capsys):
    images, labels = test_images
    save_folder(images[:30], tmp_path / "pngs")
    save_grid(images[:30], tmp_path / "grid.png", ncols=6)
    np.savez(tmp_path / "x.npz", images=images[:30])
    for source in ("pngs", "grid.png", "x.npz"):
        code, text, _ = call(["predict", tmp_path / source, "--json"], capsys)
        assert code == 0
        out = json.loads(text)
        assert set(out) == {"labels", "confidence"} and len(out["labels"]) == 30
        assert (np.array(out["labels"]) == labels[:30]).mean() >= 29 / 30, source
        assert all(0.1 <= c <= 1 for c in out["confidence"])
    Image.fromarray(np.zeros((28, 28), np.uint8) + 128, mode="L").save(tmp_path / "pngs" / "zz_grey.png")
    result = predict(tmp_path / "pngs")
    assert result["names"][-1] == "zz_grey.png" and len(result["labels"]) == 31


def test_predict_summary_lists_counts_and_low_confidence(tmp_path, test_images, capsys):
    images, _ = test_images
    blank = np.zeros((3, 28, 28), np.uint8)
    blank[:, 10:18, 10:18] = 255  # squares: no digit, so some predictions are unsure
    np.savez(tmp_path / "x.npz", images=np.concatenate([images[:20], blank]))
    code, text, _ = call(["predict", tmp_path / "x.npz"], capsys)
    assert code == 0
    assert (
        "Labelled 23 images with the bundled mnist classifier" in text and "low confidence (p < 0.9)" in text
    )
    counts = text.splitlines()[2].split()
    assert counts[0] == "count" and sum(map(int, counts[1:])) == 23


# ----------------------------------------------------------------------------- the training-loop hook


class TinyG(torch.nn.Module):
    """z (N, 8) -> (N, 1, 28, 28) in [-1, 1]; with dropout, so eval mode matters."""

    def __init__(self, conditional=False):
        super().__init__()
        self.fc = torch.nn.Linear(8 + (10 if conditional else 0), 784)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, z, labels=None):
        if labels is not None:
            z = torch.cat([z, torch.nn.functional.one_hot(labels, 10).float()], 1)
        return torch.tanh(self.drop(self.fc(z))).view(-1, 1, 28, 28)


def test_evaluate_module_leaves_rng_and_mode_alone():
    G = TinyG().train()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = evaluate_module(G, 8, "mnist", 200, "cpu")
    assert torch.equal(torch.get_rng_state(), state)  # the training run's RNG is untouched
    assert G.training  # mode restored
    assert first == evaluate_module(G, 8, "mnist", 200, "cpu")  # same noise, eval-mode (no dropout) output
    assert first["n"] == 200 and {
        "fid",
        "inception_score",
        "precision",
        "recall",
        "density",
        "coverage",
        "histogram",
        "classes_covered",
        "kl_to_uniform",
        "confident_share",
    } <= set(first)
    doc = metrics_document(first, "mnist", "TinyG", seed=0)  # metrics.json layout, real row for the same n
    assert (
        doc["samples"] == first and doc["reference"]["n"] == 200 and doc["reference"]["classes_covered"] == 10
    )
    G.eval()
    evaluate_module(G, 8, "mnist", 200, "cpu")
    assert not G.training
    cond = evaluate_module(TinyG(conditional=True), 8, "mnist", 100, "cpu", num_classes=10)
    assert 0 <= cond["label_accuracy"] <= 1
    broken = TinyG()
    with torch.no_grad():
        broken.fc.bias.fill_(float("nan"))
    with pytest.raises(MnistganError, match="NaN or infinite pixels"):
        evaluate_module(broken, 8, "mnist", 100, "cpu")


def test_python_api_mnistgan_evaluate(tmp_path, test_images):
    """`mnistgan.evaluate(...)`, the public API, after the evaluator package is imported too."""
    import mnistgan
    import mnistgan.evaluator  # noqa: F401

    images, labels = test_images
    np.savez(tmp_path / "x.npz", images=images[:100], labels=labels[:100])
    result = mnistgan.evaluate(samples=tmp_path / "x.npz", reference=False, out=tmp_path / "m.json")
    assert result["n"] == 100 and result["reference"] is None and result["samples"]["label_accuracy"] > 0.95
    assert json.loads((tmp_path / "m.json").read_text())["samples"] == result["samples"]


def test_low_confidence_lines_never_show_the_threshold_or_above():
    """A confidence just under the 0.9 threshold is listed as low: it must not read "0.900"."""
    from mnistgan.evaluator.table import format_prediction

    result = {
        "labels": [8, 3],
        "confidence": [0.89984, 0.99],
        "names": ["a.png", "b.png"],
        "classes": list(range(10)),
        "dataset": "mnist",
        "runner_up": [3, 5],
        "runner_up_confidence": [0.1, 0.01],
    }
    text = format_prediction(result)
    line = next(x for x in text.splitlines() if x.strip().startswith("a.png"))
    assert "p = 0.899" in line and "b.png" not in text
