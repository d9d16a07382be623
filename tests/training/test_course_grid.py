"""After training, the run says which digits the course's seed-504 grid shows (issue 18 item 4)."""

import dataclasses

import numpy as np
import torch

from mnistgan.config import Config, with_overrides
from mnistgan.data import load_images
from mnistgan.evaluator.classifier import classify
from mnistgan.generator.sample import load_generator
from mnistgan.training.outputs import course_grid_digits


def test_real_digits_named_and_missing_ones_said():
    test = load_images("mnist", split="test", with_labels=True)
    images, labels = test.images[:, 0].numpy(), test.labels.numpy()  # (N, 28, 28) like generate()
    every = np.concatenate([np.flatnonzero(labels == d)[:2] for d in range(10)] + [np.arange(5)])
    all_ten = course_grid_digits(images[every], Config())
    assert all_ten.endswith("shows 0, 1, 2, 3, 4, 5, 6, 7, 8, 9: all 10 classes"), all_ten

    no_seven = np.concatenate([np.flatnonzero(labels == d)[:3] for d in range(10) if d != 7])[:25]
    line = course_grid_digits(images[no_seven], Config())
    assert line.endswith("; missing: 7") and "shows 0, 1, 2, 3, 4, 5, 6, 8" in line, line

    sevens = images[np.flatnonzero(labels == 7)[:25]]
    seven, three = with_overrides(Config(), {"digit": 7}), with_overrides(Config(), {"digit": 3})
    assert course_grid_digits(sevens, seven).endswith("shows 7: the target class")
    assert course_grid_digits(sevens, three).endswith("shows 7; missing: 3")


def test_no_line_where_no_classifier_knows_the_images():
    cfg = dataclasses.replace(Config(), data=dataclasses.replace(Config().data, images="my_folder"))
    assert course_grid_digits(np.zeros((25, 28, 28), np.uint8), cfg) is None


def test_training_prints_what_final_grid_shows(tiny_run):
    """The line the user sees agrees with the bundled classifier on the saved final grid."""
    said = [
        s
        for s in (tiny_run.parent / "stdout.txt").read_text().splitlines()
        if "final_grid.png (seed 504)" in s
    ]
    assert len(said) == 1, said
    grid = load_generator(tiny_run / "generator").generate(25, 504)
    _, probs = classify(torch.from_numpy(grid), "mnist")
    shown = sorted(set(probs.argmax(1).tolist()))
    assert f"shows {', '.join(map(str, shown))}" in said[0]
    missing = [d for d in range(10) if d not in shown]
    assert ("missing: " + ", ".join(map(str, missing))) in said[0] if missing else "all 10" in said[0]
