import gzip

import numpy as np
import pytest
import torch

from mnistgan.config import DataConfig
from mnistgan.data import batches, epoch_order, load_train_data, read_idx, steps_per_epoch
from mnistgan.errors import MnistganError

from helpers import make_dataset_dir, write_idx


def test_idx_roundtrip_raw_and_gz(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for gz in (False, True):
        p = write_idx(tmp_path / f"x{'.gz' if gz else ''}", a, gz=gz)
        assert np.array_equal(read_idx(p), a)
    lbl = write_idx(tmp_path / "l", np.arange(7, dtype=np.uint8))
    assert read_idx(lbl).tolist() == list(range(7))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, gz):
    a = np.zeros((4, 28, 28), np.uint8)
    p = write_idx(tmp_path / "t", a, dims=(5, 28, 28), gz=gz)  # header claims one more image
    with pytest.raises(MnistganError, match="truncated"):
        read_idx(p)


def test_idx_wrong_magic(tmp_path):
    p = write_idx(tmp_path / "m", np.zeros((2, 28, 28), np.uint8), magic=b"\x89PNG")
    with pytest.raises(MnistganError, match="magic"):
        read_idx(p)
    p = write_idx(tmp_path / "d", np.zeros((2, 28, 28), np.uint8), magic=bytes([0, 0, 0x0D, 3]))
    with pytest.raises(MnistganError, match="data type"):
        read_idx(p)


def test_idx_lying_header_is_refused_without_allocating(tmp_path):
    # 4 billion images of 28x28: the reader must refuse from the header, not try to allocate
    p = write_idx(tmp_path / "huge.gz", np.zeros((1, 28, 28), np.uint8), dims=(0xFFFFFFFF, 28, 28), gz=True)
    with pytest.raises(MnistganError, match="more than any"):
        read_idx(p)
    # a plausible size that the (raw) file does not hold
    p = write_idx(tmp_path / "big", np.zeros((1, 28, 28), np.uint8), dims=(60000, 28, 28))
    with pytest.raises(MnistganError, match="truncated or corrupt"):
        read_idx(p)


def test_idx_trailing_data_and_bad_gzip(tmp_path):
    p = write_idx(tmp_path / "x", np.zeros((3, 28, 28), np.uint8), dims=(2, 28, 28))
    with pytest.raises(MnistganError):
        read_idx(p)
    good = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4]))
    bad = good[:-8] + bytes(8)  # wrong CRC and size in the gzip trailer
    (tmp_path / "bad.gz").write_bytes(bad)
    with pytest.raises(MnistganError, match="corrupt"):
        read_idx(tmp_path / "bad.gz")
    (tmp_path / "short.gz").write_bytes(good[:15])
    with pytest.raises(MnistganError):
        read_idx(tmp_path / "short.gz")


def test_bundled_mnist_is_complete():
    data = load_train_data(DataConfig())
    assert data.images.shape == (60000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert abs(data.images.float().mean().item() / 255 - 0.1307) < 1e-3  # the published mean
    assert data.labels is None  # images only, unless a mode needs labels


def test_digit_filter_and_limit(tmp_path):
    d = make_dataset_dir(tmp_path / "ds", n=100)
    data = load_train_data(DataConfig(data_dir=str(d), digit=3), need_labels=True)
    assert len(data) == 10 and (data.labels == 3).all()
    data = load_train_data(DataConfig(data_dir=str(d), digit=3, limit=4))
    assert len(data) == 4
    data = load_train_data(DataConfig(digit=7, limit=5000), need_labels=True)  # the lab's setting
    assert len(data) == 5000 and (data.labels == 7).all()


def test_empty_selection_and_missing_dir(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(d / "train-labels-idx1-ubyte", np.array([1, 1, 2], np.uint8))
    with pytest.raises(MnistganError, match="no training images of digit 5"):
        load_train_data(DataConfig(data_dir=str(d), digit=5))
    with pytest.raises(MnistganError, match="not a folder"):
        load_train_data(DataConfig(data_dir=str(tmp_path / "nope")))
    with pytest.raises(MnistganError, match="--data-dir"):
        load_train_data(DataConfig(dataset="kmnist"))


def test_wrong_image_size(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(MnistganError, match="28x28"):
        load_train_data(DataConfig(data_dir=str(d)))


def test_batches_cover_an_epoch_in_range(tmp_path):
    d = make_dataset_dir(tmp_path / "ds", n=50)
    data = load_train_data(DataConfig(data_dir=str(d)))
    seen = list(batches(data, 16, seed=1, epoch=1))
    assert len(seen) == steps_per_epoch(50, 16) == 3  # the partial last batch is dropped
    x = torch.cat([b for b, _ in seen])
    assert x.shape == (48, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    # the batches are the images of the epoch's permutation, scaled to [-1, 1]
    order = epoch_order(50, 1, 1)[:48]
    assert torch.allclose(x, data.images[order].float() / 127.5 - 1)
    # resuming at batch 2 gives the same batch as the uninterrupted epoch
    assert torch.equal(next(batches(data, 16, 1, 1, start=2))[0], seen[2][0])
    assert not torch.equal(epoch_order(50, 1, 1), epoch_order(50, 1, 2))


# ----------------------------------------------------------------------------- stacked-mnist


def test_stacked_mnist_draws_three_independent_digits_per_image():
    from mnistgan.data import load_images, stacked

    digits = load_images("mnist", with_labels=True)
    s = stacked(digits, 30_000)
    assert s.images.shape == (30_000, 3, 28, 28) and s.images.dtype == torch.uint8
    modes = s.labels
    channel = torch.stack([modes // 100, modes // 10 % 10, modes % 10], 1)  # (N, 3) digits
    # each channel is an MNIST image of the digit its mode says (the first images checked)
    flat = digits.images.flatten(1)
    for i in range(4):
        for c in range(3):
            matches = (flat == s.images[i, c].flatten()).all(1)
            assert channel[i, c] in digits.labels[matches]
    # independent: the channels' digits are uncorrelated, every mode appears, none far above 1/1000
    corr = torch.corrcoef(channel.T.double())
    assert (corr - torch.eye(3)).abs().max() < 0.03
    counts = torch.bincount(modes, minlength=1000)
    assert (counts > 0).sum() >= 995 and counts.max() < 3 * 30


def test_stacked_mnist_is_seeded():
    from mnistgan.data import load_images, stacked

    digits = load_images("mnist", with_labels=True)
    a, b, c = stacked(digits, 500), stacked(digits, 500), stacked(digits, 500, seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
