"""--images: folders of image files (any size, gray or colour; class subfolders) and .npz/.npy arrays,
read, fitted to 28x28 and checked; hostile files get one line naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnistgan.data import one_class, user_images
from mnistgan.errors import MnistganError
from mnistgan.userdata import fit, load_user_images, read_array

from helpers import run_cli


def save(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_a_28x28_grayscale_file_is_read_as_it_is(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    save(tmp_path / "f" / "x.png", a)
    assert np.array_equal(load_user_images(tmp_path / "f").images[0], a)


def test_other_sizes_keep_their_aspect_and_are_padded_with_their_background():
    wide = np.full((20, 40), 200, dtype=np.uint8)  # a light background ...
    wide[5:15, 10:30] = 0  # ... with a dark bar
    out = fit(wide)
    assert out.shape == (28, 28)
    assert (out[:7] == 200).all() and (out[-7:] == 200).all()  # 40 -> 28 wide, 20 -> 14 tall: 7 rows padded
    assert out[11:17, 8:20].max() < 60  # the bar, scaled, in the middle
    tall = np.zeros((56, 14), dtype=np.uint8)
    assert fit(tall).shape == (28, 28) and (fit(tall) == 0).all()


def test_colour_files_become_gray_and_subfolders_are_classes(tmp_path):
    for name, value in (("zebra", 30), ("ant", 220)):  # labels follow the subfolders' name order
        for k in range(3):
            save(tmp_path / "d" / name / f"{k}.jpg", np.full((30, 30, 3), value, dtype=np.uint8))
    (tmp_path / "d" / "notes.txt").write_text("not an image: ignored")
    (tmp_path / "d" / "empty").mkdir()
    data = user_images(str(tmp_path / "d"))
    assert data.images.shape == (6, 1, 28, 28) and data.classes == ["ant", "zebra"]
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert (
        abs(int(data.images[0].float().mean()) - 220) <= 2
        and abs(int(data.images[-1].float().mean()) - 30) <= 2
    )
    zebras = one_class(data, "zebra")
    assert len(zebras) == 3 and (zebras.labels == 1).all()
    with pytest.raises(MnistganError, match="no such class in .*its classes: ant, zebra"):
        one_class(data, "horse")


def test_arrays_uint8_floats_labels_and_npy(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "u.npz", images=a, labels=np.arange(5))
    images, labels, _ = read_array(tmp_path / "u.npz")
    assert np.array_equal(images, a) and labels.tolist() == [0, 1, 2, 3, 4]
    np.save(tmp_path / "f.npy", a[:, None].astype(np.float32) / 255)  # (N, 1, 28, 28) floats in [0, 1]
    assert np.array_equal(read_array(tmp_path / "f.npy")[0], a)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: np.save(p / "x.npy", np.zeros((3, 32, 32))), "has shape (3, 32, 32)"),
        (lambda p: np.save(p / "x.npy", np.full((2, 28, 28), np.nan)), "NaN or infinite"),
        (lambda p: np.save(p / "x.npy", np.full((2, 28, 28), 2.0)), "expected [0, 1]"),
        (lambda p: np.savez(p / "x.npz", images=np.zeros((2, 28, 28)), labels=np.arange(3)), "one per image"),
        (lambda p: (p / "x.npz").write_bytes(b"PK\x03\x04 not a zip"), "not a readable .npz"),
    ],
)
def test_bad_arrays_are_one_line_naming_the_file(tmp_path, make, message):
    make(tmp_path)
    path = next(tmp_path.iterdir())
    with pytest.raises(MnistganError) as e:
        load_user_images(path)
    assert message in str(e.value) and path.name in str(e.value) and "\n" not in str(e.value)


def test_bad_folders_say_what_is_wrong(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MnistganError, match="holds no image files"):
        load_user_images(tmp_path / "empty")
    save(tmp_path / "mixed" / "a.png", np.zeros((28, 28), np.uint8))
    save(tmp_path / "mixed" / "cls" / "b.png", np.zeros((28, 28), np.uint8))
    with pytest.raises(MnistganError, match="images and class subfolders"):
        load_user_images(tmp_path / "mixed")
    save(tmp_path / "broken" / "a.png", np.zeros((28, 28), np.uint8))
    (tmp_path / "broken" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(MnistganError, match=r"b\.png is not a readable image"):
        load_user_images(tmp_path / "broken")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_any_bytes_named_png_are_read_or_refused_in_one_line(tmp_path, data):
    folder = tmp_path / "h"
    folder.mkdir(exist_ok=True)
    (folder / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    try:
        out = load_user_images(folder)
    except MnistganError as e:
        assert "x.png" in str(e) and "\n" not in str(e)
    else:
        assert out.images.shape == (1, 28, 28) and out.images.dtype == np.uint8


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.integers(0, 40), min_size=0, max_size=4),
    st.sampled_from([np.uint8, np.int64, np.float32, np.float64, np.bool_, np.complex64]),
    st.one_of(st.floats(-3, 300), st.just(float("nan"))),
)
def test_any_array_is_read_or_refused_in_one_line(tmp_path, shape, dtype, fill):
    path = tmp_path / "a.npy"
    with np.errstate(all="ignore"):
        np.save(path, np.full(shape, fill).astype(dtype))
    try:
        images = load_user_images(path).images
    except MnistganError as e:
        assert "a.npy" in str(e) and "\n" not in str(e)
    else:
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28) and len(images) > 0


def test_a_decoded_folder_is_cached_beside_the_runs_and_refreshed_when_a_file_changes(tmp_path):
    for k in range(3):
        save(tmp_path / "f" / f"{k}.png", np.full((40, 40), 10 * k, dtype=np.uint8))
    cache = tmp_path / "runs" / ".images-cache"
    first = load_user_images(tmp_path / "f", cache)
    assert "cached in" in first.source and len(list(cache.iterdir())) == 1
    second = load_user_images(tmp_path / "f", cache)
    assert "(cached:" in second.source and np.array_equal(first.images, second.images)
    save(tmp_path / "f" / "0.png", np.full((40, 50), 255, dtype=np.uint8))
    third = load_user_images(tmp_path / "f", cache)
    assert "cached in" in third.source and third.images[0].max() == 255


def test_train_refuses_bad_images_in_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    for args, message in [
        (["--images", "nope"], "not found"),
        (["--images", "empty"], "holds no image files"),
        (["--images", "empty", "--digit", "3"], "use --class NAME"),
        (["--class", "a"], "give --images FOLDER too"),
    ]:
        proc = run_cli("train", *args, "--epochs", 1, cwd=tmp_path, check=False)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
