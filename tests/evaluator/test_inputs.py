"""Reading images for the evaluator: every accepted layout, and one clear error per kind of bad input."""

import numpy as np
import pytest
from PIL import Image

from mnistgan.errors import MnistganError
from mnistgan.evaluator.inputs import load_input, load_inputs
from mnistgan.generator.images import save_folder, save_grid


@pytest.fixture
def digits():
    """12 distinct uint8 images (N, 28, 28)."""
    return np.random.default_rng(0).integers(0, 256, (12, 28, 28), dtype=np.uint8)


def npz(tmp_path, name="x.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


# ----------------------------------------------------------------------------- accepted inputs


def test_npz_layouts_and_dtypes(tmp_path, digits):
    for i, arr in enumerate([digits, digits[:, None], digits[..., None], digits.astype(np.int64)]):
        got = load_input(npz(tmp_path, f"a{i}.npz", images=arr))
        np.testing.assert_array_equal(got.images, digits)
        assert got.labels is None
    floats = load_input(npz(tmp_path, "f.npz", images=digits.astype(np.float32) / 255.0))
    np.testing.assert_array_equal(floats.images, digits)  # [0, 1] floats round back to the same bytes
    single_array = load_input(npz(tmp_path, "s.npz", arr_0=digits))
    np.testing.assert_array_equal(single_array.images, digits)
    labelled = load_input(npz(tmp_path, "l.npz", images=digits, labels=np.arange(12) % 10))
    assert labelled.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_png_folder_in_natural_order(tmp_path, digits):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in (0, 2, 10, 1):  # 10 must come after 2
        Image.fromarray(digits[i], mode="L").save(folder / f"img{i}.png")
    (folder / "notes.txt").write_text("ignored")
    got = load_input(folder)
    assert got.names == ["img0.png", "img1.png", "img2.png", "img10.png"]
    np.testing.assert_array_equal(got.images, digits[[0, 1, 2, 10]])


def test_mnistgan_folder_and_grid_round_trip(tmp_path, digits):
    save_folder(digits, tmp_path / "folder")
    np.testing.assert_array_equal(load_input(tmp_path / "folder").images, digits)
    save_grid(digits, tmp_path / "grid.png", ncols=4)  # 3x4 tiles drawn 4x larger
    got = load_input(tmp_path / "grid.png")
    np.testing.assert_array_equal(got.images, digits)
    assert "3x4 grid" in got.note
    save_grid(digits, tmp_path / "small.png", ncols=6, scale=1)  # 2x6 tiles of 28 pixels
    explicit = load_input(tmp_path / "small.png", grid="2x6")
    np.testing.assert_array_equal(explicit.images, digits)
    assert explicit.names[7] == "small.png[row 2, col 2]"


def test_single_png_and_several_paths_concatenate(tmp_path, digits):
    Image.fromarray(digits[0], mode="L").save(tmp_path / "one.png")
    path = npz(tmp_path, images=digits[1:4])
    got = load_inputs([tmp_path / "one.png", path])
    np.testing.assert_array_equal(got.images, digits[:4])
    assert len(got.names) == 4


# ----------------------------------------------------------------------------- bad inputs


def with_bad_values(*values) -> np.ndarray:
    """Two grey float images with `values` written into their first pixels."""
    a = np.full((2, 28, 28), 0.5, np.float32)
    a.reshape(-1)[: len(values)] = values
    return a


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((5, 32, 32), np.uint8), r"shape \(5, 32, 32\), expected \(N, 28, 28\)"),
        (np.zeros((5, 28, 28, 3), np.uint8), r"3 channels, expected grayscale"),
        (np.zeros((5, 3, 28, 28), np.uint8), r"3 channels, expected grayscale"),
        (np.zeros((0, 28, 28), np.uint8), "holds no images"),
        (with_bad_values(np.nan, np.inf), "holds 2 NaN or infinite values"),
        (np.full((2, 28, 28), 1.5, np.float32), r"range over \[1\.5, 1\.5\], expected \[0, 1\]"),
        (np.full((2, 28, 28), -0.5, np.float32), r"expected \[0, 1\] \(tanh output\? use \(x \+ 1\) / 2\)"),
        (np.full((2, 28, 28), 300, np.int32), r"integer pixels range over \[300, 300\], expected 0\.\.255"),
        (np.array(["a"] * 784).reshape(1, 28, 28), "has dtype"),
    ],
)
def test_bad_npz_images_give_one_clear_error(tmp_path, array, message):
    with pytest.raises(MnistganError, match=message):
        load_input(npz(tmp_path, images=array))


def test_bad_npz_files(tmp_path, digits):
    with pytest.raises(MnistganError, match="no 'images'"):
        load_input(npz(tmp_path, "two.npz", a=digits, b=digits))
    with pytest.raises(MnistganError, match="must be 12 integer labels"):
        load_input(npz(tmp_path, "lab.npz", images=digits, labels=np.arange(3)))
    with pytest.raises(MnistganError, match="labels outside 0..9"):
        load_input(npz(tmp_path, "lab2.npz", images=digits, labels=np.full(12, 11)))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(MnistganError, match="not a readable .npz"):
        load_input(tmp_path / "junk.npz")
    with pytest.raises(MnistganError, match="not found"):
        load_input(tmp_path / "missing.npz")
    (tmp_path / "x.jpg").write_bytes(b"")
    with pytest.raises(MnistganError, match="expected an .npz file, a folder of PNGs or a .png"):
        load_input(tmp_path / "x.jpg")


def test_bad_png_inputs(tmp_path, digits):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MnistganError, match="holds no .png images"):
        load_input(empty)
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    Image.fromarray(np.stack([digits[0]] * 3, -1), mode="RGB").save(rgb / "a.png")
    with pytest.raises(MnistganError, match=r"mode RGB \(3 channels\); expected grayscale"):
        load_input(rgb)
    big = tmp_path / "big"
    big.mkdir()
    Image.fromarray(digits[0], mode="L").save(big / "a.png")
    Image.new("L", (32, 32)).save(big / "b.png")
    with pytest.raises(MnistganError, match="b.png is 32x32 pixels; every image in a folder must be 28x28"):
        load_input(big)
    Image.new("L", (100, 60)).save(tmp_path / "odd.png")
    with pytest.raises(MnistganError, match="pass --grid ROWSxCOLS"):
        load_input(tmp_path / "odd.png")
    save_grid(digits, tmp_path / "grid.png", ncols=4)
    with pytest.raises(MnistganError, match="expected ROWSxCOLS"):
        load_input(tmp_path / "grid.png", grid="three by four")
    with pytest.raises(MnistganError, match="does not split into 5x4 equal tiles"):
        load_input(tmp_path / "grid.png", grid="5x4")
    (tmp_path / "fake.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(MnistganError, match="not a readable PNG"):
        load_input(tmp_path / "fake.png")
