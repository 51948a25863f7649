from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from barapi.data import load_split
from barapi.errors import DatasetError


def save_modes(folder: Path) -> None:
    """One image per pillow mode a user's folder may hold."""
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    folder.mkdir(parents=True)
    rgb.convert("L").save(folder / "grey.png")
    rgb.convert("RGBA").save(folder / "rgba.png")
    rgb.convert("P").save(folder / "palette.png")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray((np.arange(600).reshape(20, 30) * 100).astype(np.uint16)).save(folder / "sixteen.png")
    rgb.save(folder / "plain.jpg")


def test_every_common_image_mode_simply_works(tmp_path: Path) -> None:
    save_modes(tmp_path / "data" / "a")
    save_modes(tmp_path / "data" / "b")
    split = load_split(str(tmp_path / "data"), embed_size=16, train_per_class=3, test_size=6, seed=0)
    assert split.classes == ["a", "b"]
    assert split.x_train.shape == (6, 16, 16, 3) and split.x_test.shape == (6, 16, 16, 3)
    assert split.x_train.min() >= -1 and split.x_train.max() <= 1


def test_a_folder_as_users_keep_it_skips_what_is_not_an_image_and_says_so(tmp_path: Path) -> None:
    save_modes(tmp_path / "data" / "a")
    save_modes(tmp_path / "data" / "b")
    (tmp_path / "data" / "a" / "notes.txt").write_text("shot on a Tuesday")
    (tmp_path / "data" / "b" / ".DS_Store").write_bytes(b"\0Bud1")
    (tmp_path / "data" / "b" / "Thumbs.db").write_bytes(b"\xd0\xcf")
    split = load_split(str(tmp_path / "data"), embed_size=16, train_per_class=3, test_size=6, seed=0)
    assert split.x_train.shape == (6, 16, 16, 3) and split.x_test.shape == (6, 16, 16, 3)
    assert split.notes == (f"skipped 3 file(s) in {tmp_path / 'data'} not named as images (.DS_Store, Thumbs.db, notes.txt)",)


def test_a_class_short_of_train_per_class_says_what_was_used(tmp_path: Path) -> None:
    save_modes(tmp_path / "data" / "a")
    save_modes(tmp_path / "data" / "b")
    split = load_split(str(tmp_path / "data"), embed_size=16, train_per_class=10, test_size=4, seed=0)
    assert len(split.y_train) == 10  # 6 images a class, one of each kept for the test set
    assert split.notes == ("--train-per-class 10: a 5, b 5 image(s) used (all a class has, less one for the test set)",)
    everything = load_split(str(tmp_path / "data"), embed_size=16, train_per_class=6, test_size=0, seed=0)
    assert len(everything.y_train) == 12 and len(everything.y_test) == 0 and everything.notes == ()


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n truncated", b"plain text, not an image"])
def test_unreadable_files_are_named_in_the_error(tmp_path: Path, content: bytes) -> None:
    save_modes(tmp_path / "data" / "a")
    save_modes(tmp_path / "data" / "b")
    (tmp_path / "data" / "b" / "bad.png").write_bytes(content)
    with pytest.raises(DatasetError, match="bad.png"):
        load_split(str(tmp_path / "data"), embed_size=16, train_per_class=3, test_size=20, seed=0)


def test_npz_with_float_images_and_named_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x=rng.random((40, 10, 10)), y=np.repeat([3, 7], 20), classes=np.array(["three", "seven"]))
    split = load_split(str(tmp_path / "d.npz"), embed_size=8, train_per_class=5, test_size=10, seed=0)
    assert split.classes == ["three", "seven"] and set(split.y_train) == {0, 1}
    assert len(split.y_train) == 10 and len(split.y_test) == 10


def test_digits_split_is_stratified_seeded_and_disjoint() -> None:
    a = load_split("digits", embed_size=8, train_per_class=5, test_size=50, seed=4)
    b = load_split("digits", embed_size=8, train_per_class=5, test_size=50, seed=4)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert np.bincount(a.y_train).tolist() == [5] * 10
    assert np.bincount(a.y_test).tolist() == [5] * 10  # the test set is stratified too


def test_the_test_set_follows_the_class_shares_of_what_is_left() -> None:
    from barapi.data import stratified_indices

    labels = np.repeat(np.arange(3), [40, 30, 10])  # after 5 each for training: 35, 25 and 5 left
    _, test = stratified_indices(labels, 3, 5, 13, np.random.default_rng(1))
    assert np.bincount(labels[test]).tolist() == [7, 5, 1]


def test_train_and_test_indices_never_overlap() -> None:
    from barapi.data import stratified_indices

    labels = np.repeat(np.arange(4), 10)
    train, test = stratified_indices(labels, 4, 6, 100, np.random.default_rng(0))
    assert not set(train) & set(test)
    assert len(train) == 24 and len(test) == 16


def write_idx(path: Path, array: np.ndarray) -> None:
    import gzip

    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_the_idx_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (40, 28, 28)), np.repeat(np.arange(10), 4)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("BARAPI_FASHION_MNIST", str(tmp_path))
    split = load_split("fashion-mnist", embed_size=28, train_per_class=2, test_size=10, seed=0)
    assert split.classes[0] == "T-shirt/top" and split.n_classes == 10
    assert split.x_train.shape == (20, 28, 28, 3) and len(split.y_test) == 10
    decoded = np.rint((split.x_train[:, :, :, 0] + 1) * 127.5)
    for image, label in zip(decoded, split.y_train):
        matches = [i for i in range(len(images)) if np.array_equal(images[i], image)]
        assert matches and labels[matches[0]] == label  # each image decoded intact, with its own label


def test_fashion_mnist_missing_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BARAPI_FASHION_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_split("fashion-mnist", embed_size=28, train_per_class=2, test_size=10, seed=0)


def test_the_real_fashion_mnist_from_debian() -> None:
    # .ci/run installs Debian's dataset-fashion-mnist; this reads the real files.
    split = load_split("fashion-mnist", embed_size=32, train_per_class=5, test_size=20, seed=1)
    assert split.n_classes == 10 and np.bincount(split.y_train).tolist() == [5] * 10
    assert -1.0 <= split.x_train.min() < split.x_train.max() <= 1.0
