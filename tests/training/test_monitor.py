import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistgan.rundir import read_log
from mnistgan.training.monitor import eval_alarms, loss_alarms

from helpers import TINY, resume_from_epoch_1, run_cli

TRAIN_TAGS = ["train/loss_d", "train/loss_g", "train/d_acc"]


def read_events(run: Path):
    """The run's TensorBoard events, read back by TensorBoard's own reader (all of them: no sampling)."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def scalars(events, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in events.Scalars(tag)]


def logged(rows: list[dict], kind: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of log.jsonl's `kind` rows, the value as TensorBoard stores it (float32)."""
    return [(r["step"], float(np.float32(r[key]))) for r in rows if r["kind"] == kind]


def test_loss_alarms():
    assert loss_alarms({"loss_d": 1.2, "loss_g": 0.9, "d_acc": 0.6}, "bce") == []
    collapsed = loss_alarms({"loss_d": 0.001, "loss_g": 9.0, "d_acc": 1.0}, "bce")
    assert len(collapsed) == 1 and "D loss collapsed" in collapsed[0]
    assert "exploding" in loss_alarms({"loss_d": 0.5, "loss_g": 40.0, "d_acc": 1.0}, "bce")[0]
    assert loss_alarms({"loss_d": -3.0, "loss_g": 2.0, "d_acc": 0.5}, "wgan-gp") == []  # unbounded critic


def test_eval_alarm_on_histogram_collapse():
    assert eval_alarms({"classes_covered": 10}) == []
    assert "mode collapse" in eval_alarms({"classes_covered": 3, "histogram": [1] * 10})[0]


def test_eval_every_and_tensorboard(tmp_path):
    run = tmp_path / "run"
    out = run_cli(
        "train",
        "--run-dir",
        run,
        "--epochs",
        2,
        "--limit",
        32,
        "--eval-every",
        1,
        "--eval-samples",
        200,
        "--tensorboard",
        "--log-every",
        1,
        "--sample-epochs",
        1,
        *TINY,
    ).stdout
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["epoch"] for r in evals] == [1, 2]
    assert all(r["n"] == 200 and r["fid"] > 0 and sum(r["histogram"]) == 200 for r in evals)
    assert "eval (n=200): FID" in out
    metrics = json.loads((run / "metrics.json").read_text())  # the final metrics, asked for by --eval-every
    assert metrics["samples"]["n"] == 200

    # TensorBoard, read back by its own reader: the numbers of log.jsonl at the steps of its rows
    events = read_events(run)
    numbers = [k for k, v in evals[0].items() if isinstance(v, (int, float)) and k not in ("epoch", "step")]
    numbers.remove("seconds")  # how long the evaluation took: log.jsonl only
    assert {"fid", "inception_score", "classes_covered", "precision", "recall", "coverage"} <= set(numbers)
    assert sorted(events.Tags()["scalars"]) == sorted(TRAIN_TAGS + [f"eval/{k}" for k in numbers])
    ticks = [r["step"] for r in rows if r["kind"] == "tick"]
    assert ticks == [1, 2, 3, 4]  # --limit 32 / batch 16 = 2 steps an epoch, a tick every step
    for tag in TRAIN_TAGS:
        assert scalars(events, tag) == logged(rows, "tick", tag.split("/")[1])
    for k in numbers:
        assert scalars(events, f"eval/{k}") == logged(rows, "eval", k)  # at steps 2 and 4: each epoch's end
    # the sample grids: epochs 1 (--sample-epochs) and 2 (the last), at the step each epoch ended
    epoch_steps = [r["step"] for r in rows if r["kind"] == "epoch"]
    assert epoch_steps == [2, 4]
    images = events.Images("samples")
    assert [e.step for e in images] == epoch_steps
    for e, epoch in zip(images, (1, 2)):
        # torchvision's make_grid: 8 x 8 tiles of 28 pixels with 2 pixels of padding around each
        assert (e.width, e.height) == (8 * 30 + 2, 8 * 30 + 2)
        grid = np.asarray(Image.open(io.BytesIO(e.encoded_image_string)).convert("L"))
        assert grid.shape == (242, 242) and grid.std() > 0  # not blank
        # every tile is the image of samples/epoch_00N.png (there: no padding, each pixel drawn 4x4)
        png = np.asarray(Image.open(run / "samples" / f"epoch_{epoch:03d}.png"))[::4, ::4]
        assert png.shape == (224, 224)
        for i in range(8):
            for j in range(8):
                tile = grid[2 + 30 * i : 30 * (i + 1), 2 + 30 * j : 30 * (j + 1)]
                assert np.array_equal(tile, png[28 * i : 28 * (i + 1), 28 * j : 28 * (j + 1)]), (epoch, i, j)


def test_tensorboard_after_resume_shows_each_step_once(tmp_path):
    """A resumed run writes epoch 2 again; TensorBoard shows the resumed values, once per step."""
    full = tmp_path / "full"
    run_cli(
        "train", "--run-dir", full, "--epochs", 2, "--limit", 32, "--log-every", 1, "--tensorboard", *TINY
    )
    half = tmp_path / "half"
    resume_from_epoch_1(full, half)  # its tensorboard folder still holds the first run's epoch 2
    rows = read_log(half / "log.jsonl")
    events = read_events(half)
    for tag in TRAIN_TAGS:
        assert [s for s, _ in scalars(events, tag)] == [1, 2, 3, 4]
        assert scalars(events, tag) == logged(rows, "tick", tag.split("/")[1])
    assert [e.step for e in events.Images("samples")] == [2, 4]  # epoch 1 (default --sample-epochs) and 2
