"""Target-task datasets: scikit-learn's digits, Fashion-MNIST (Debian's dataset-fashion-mnist),
an image folder (one sub-folder per class), or an .npz with arrays ``x`` (images) and ``y``
(labels) and optionally ``classes``.

Images come out resized to the embedding size, RGB, in [-1, 1]; the split is stratified and
seeded so that a resumed run reloads exactly the same samples.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from barapi.errors import DatasetError

if TYPE_CHECKING:
    from barapi.config import RunConfig

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Decompression bombs are refused by pillow above this many pixels; a real dataset never needs more.
MAX_IMAGE_PIXELS = 64_000_000
# Debian's package installs the original idx files here; BARAPI_FASHION_MNIST relocates them.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@dataclass(frozen=True)
class Split:
    classes: list[str]
    x_train: np.ndarray  # (n, s, s, 3) in [-1, 1]
    y_train: np.ndarray  # (n,) int
    x_test: np.ndarray
    y_test: np.ndarray
    notes: tuple[str, ...] = ()  # what the user should know about how the data was read (files skipped, classes short)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def to_unit_range(images: np.ndarray, size: int) -> np.ndarray:
    """uint8-like RGB or grey images of any size → (n, size, size, 3) floats in [-1, 1]."""
    out = np.empty((len(images), size, size, 3), dtype=np.float64)
    for i, image in enumerate(images):
        out[i] = resize_rgb(Image.fromarray(np.asarray(image, dtype=np.uint8)), size)
    return out


def resize_rgb(image: Image.Image, size: int) -> np.ndarray:
    image = normalise_mode(image).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float64) / 127.5 - 1.0


def normalise_mode(image: Image.Image) -> Image.Image:
    """Any pillow mode (16-bit, CMYK, palette, RGBA, grey) → 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if pixels.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(pixels / top * 255.0, 0, 255).astype(np.uint8))
    elif image.mode == "F":
        pixels = np.nan_to_num(np.asarray(image, dtype=np.float64))
        span = max(float(pixels.max(initial=0) - pixels.min(initial=0)), 1e-12)
        image = Image.fromarray(((pixels - pixels.min()) / span * 255.0).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def load_digits_images() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).astype(np.uint8)
    return images, digits.target.astype(int), [str(c) for c in digits.target_names]


def read_idx(path: Path) -> np.ndarray:
    """An idx file (MNIST's format, gzipped): big-endian dims after a 4-byte magic."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The 60,000 training images: a run samples its own train and test split from them."""
    root = Path(os.environ.get("BARAPI_FASHION_MNIST", FASHION_MNIST_DIR))
    images, labels = root / "train-images-idx3-ubyte.gz", root / "train-labels-idx1-ubyte.gz"
    if not (images.is_file() and labels.is_file()):
        raise DatasetError(
            f"Fashion-MNIST is not in {root}: install it with `apt-get install dataset-fashion-mnist` "
            "or point BARAPI_FASHION_MNIST at a folder with its idx files"
        )
    try:
        return read_idx(images), read_idx(labels).astype(int), list(FASHION_MNIST_CLASSES)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"cannot read Fashion-MNIST from {root}: {error}") from error


def load_folder(root: Path) -> tuple[list[Path], np.ndarray, list[str], list[str]]:
    """Images by class folder. Files not named as images (notes.txt, Thumbs.db, .DS_Store) are
    skipped and counted; a file named as an image that does not decode stays an error."""
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist: pass 'digits', 'fashion-mnist' or a folder with one sub-folder per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[Path] = []
    labels: list[int] = []
    skipped: list[Path] = []
    for index, name in enumerate(classes):
        for path in sorted(p for p in (root / name).rglob("*") if p.is_file()):
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                files.append(path)
                labels.append(index)
            else:
                skipped.append(path)
    notes = []
    if skipped:
        names = sorted({p.name for p in skipped})
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        notes.append(f"skipped {len(skipped)} file(s) in {root} not named as images ({shown})")
    return files, np.asarray(labels, dtype=int), classes, notes


def as_images(images: object, size: int) -> np.ndarray:
    """What a user holds → (n, size, size, 3) in [-1, 1]: a list of paths or PIL images, or a
    numpy array, which is a batch: (n, h, w) grey or (n, h, w, channels), uint8 or in [0, 1]."""
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise DatasetError(f"an image array is a batch, (n, h, w) or (n, h, w, channels); got shape {images.shape}")
        if images.dtype != np.uint8:
            top = 1.0 if images.max(initial=0) <= 1.0 else 255.0
            images = np.clip(np.asarray(images, dtype=np.float64) / top * 255.0, 0, 255).round().astype(np.uint8)
        return to_unit_range(images[..., 0] if images.ndim == 4 and images.shape[-1] == 1 else images, size)
    if isinstance(images, (str, Path, Image.Image)):
        images = [images]
    out = []
    for item in images:  # type: ignore[attr-defined]
        if isinstance(item, Image.Image):
            out.append(resize_rgb(item, size))
        elif isinstance(item, (str, Path)):
            out.append(read_image(Path(item), size))
        else:
            out.append(as_images(np.asarray(item)[None], size)[0])
    return np.stack(out) if out else np.zeros((0, size, size, 3))


def read_image(path: Path, size: int) -> np.ndarray:
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(path) as image:
            image.load()
            return resize_rgb(image, size)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"cannot read image {path}: {error}; remove or replace the file") from error


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["x"], archive["y"].astype(int)
            names = [str(c) for c in archive["classes"]] if "classes" in archive else None
    except (OSError, KeyError, ValueError) as error:
        raise DatasetError(f"cannot read {path}: it needs arrays 'x' (images) and 'y' (labels): {error}") from error
    if images.dtype != np.uint8:
        top = 1.0 if images.max(initial=0) <= 1.0 else 255.0
        images = np.clip(images / top * 255.0, 0, 255).astype(np.uint8)
    classes = names or [str(c) for c in sorted(set(labels.tolist()))]
    remap = {v: i for i, v in enumerate(sorted(set(labels.tolist())))}
    return images, np.asarray([remap[v] for v in labels.tolist()]), classes


def stratified_indices(
    labels: np.ndarray, n_classes: int, train_per_class: int, test_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``train_per_class`` images of each class for training (fewer where a class has fewer: one
    is kept for the test set unless ``test_size`` is 0); the test set drawn from the rest with each
    class in proportion to its share of the rest (largest remainders), so a balanced dataset gives
    a balanced test set."""
    train: list[int] = []
    rest: list[np.ndarray] = []
    least = 2 if test_size else 1
    for c in range(n_classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) < least:
            raise DatasetError(f"class {c} has {len(members)} image(s): each class needs at least {least}"
                               + (" (one to train, one to test)" if test_size else ""))
        keep = min(train_per_class, len(members) - (least - 1))
        train += members[:keep].tolist()
        rest.append(members[keep:])
    sizes = np.array([len(r) for r in rest])
    if not test_size or not sizes.sum():
        return rng.permutation(np.asarray(train)), np.zeros(0, dtype=int)
    wanted = min(test_size, int(sizes.sum())) * sizes / sizes.sum()
    quota = np.floor(wanted).astype(int)
    for c in np.argsort(-(wanted - quota), kind="stable")[: min(test_size, int(sizes.sum())) - int(quota.sum())]:
        quota[c] += 1
    test = np.concatenate([r[:q] for r, q in zip(rest, quota)])
    return rng.permutation(np.asarray(train)), np.sort(test)


# The datasets that ship with barapi's dependencies, by name; anything else is a folder or an .npz.
BUNDLED: dict[str, Callable[[], tuple[np.ndarray | list[Path], np.ndarray, list[str]]]] = {
    "digits": load_digits_images, "fashion-mnist": load_fashion_mnist,
}


def _source(spec: str) -> tuple[np.ndarray | list[Path], np.ndarray, list[str], list[str]]:
    """``spec`` is 'digits', 'fashion-mnist', a folder path or an .npz path, optionally followed
    by ':' and the classes to keep, by name or index ('fashion-mnist:T-shirt/top,Shirt',
    'digits:3,8'): raw images (or their files), labels, class names, notes on how it was read."""
    base, selection = _split_selection(spec)
    notes: list[str] = []
    if base in BUNDLED:
        source, labels, classes = BUNDLED[base]()
    else:
        path = Path(base).expanduser()
        if path.suffix == ".npz" and path.is_file():
            source, labels, classes = load_npz(path)
        else:
            source, labels, classes, notes = load_folder(path)
    if selection is not None:
        source, labels, classes = _select(source, labels, classes, selection, spec)
    if len(classes) < 2:
        raise DatasetError(f"dataset {spec!r} has {len(classes)} class(es): reprogramming needs at least 2")
    return source, labels, classes, notes


def _split_selection(spec: str) -> tuple[str, list[str] | None]:
    base, colon, selection = spec.rpartition(":")
    named = base in BUNDLED or (bool(base) and Path(base).expanduser().exists())
    if not colon or not selection or not named or Path(spec).expanduser().exists():
        return spec, None
    return base, [name.strip() for name in selection.split(",")]


def _select(source: np.ndarray | list[Path], labels: np.ndarray, classes: list[str], wanted: list[str], spec: str) -> tuple[np.ndarray | list[Path], np.ndarray, list[str]]:
    """Keep the named classes, relabelled 0… in the order given."""
    chosen = []
    for name in wanted:
        if name in classes:
            chosen.append(classes.index(name))
        elif name.isdigit() and int(name) < len(classes):
            chosen.append(int(name))
        else:
            raise DatasetError(f"dataset {spec!r}: no class {name!r}; it has {', '.join(classes)}")
    if len(set(chosen)) != len(chosen):
        raise DatasetError(f"dataset {spec!r} names a class twice")
    keep = np.flatnonzero(np.isin(labels, chosen))
    relabel = {old: new for new, old in enumerate(chosen)}
    kept = source[keep] if isinstance(source, np.ndarray) else [source[i] for i in keep]
    return kept, np.asarray([relabel[int(v)] for v in labels[keep]]), [classes[c] for c in chosen]


def _materialise(source: np.ndarray | list[Path], indices: np.ndarray, embed_size: int) -> np.ndarray:
    if not len(indices):
        return np.zeros((0, embed_size, embed_size, 3))
    if isinstance(source, np.ndarray):
        return to_unit_range(source[indices], embed_size)
    return np.stack([read_image(source[i], embed_size) for i in indices])


def dataset_classes(spec: str) -> list[str]:
    """The class names, without decoding a single image."""
    return _source(spec)[2]


def load_dataset(spec: str, *, embed_size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every image of a dataset, for evaluating a trained program on new data."""
    source, labels, classes, _ = _source(spec)
    return _materialise(source, np.arange(len(labels)), embed_size), labels, classes


def load_split(spec: str, *, embed_size: int, train_per_class: int, test_size: int, seed: int) -> Split:
    if train_per_class < 1 or test_size < 0:
        raise DatasetError("--train-per-class must be at least 1 and --test-size at least 0")
    source, labels, classes, notes = _source(spec)
    rng = np.random.default_rng([seed, 0xDA7A])
    train_idx, test_idx = stratified_indices(labels, len(classes), train_per_class, test_size, rng)
    counts = np.bincount(labels[train_idx], minlength=len(classes))
    short = [f"{name} {n}" for name, n in zip(classes, counts) if n < train_per_class]
    if short:
        notes.append(f"--train-per-class {train_per_class}: " + ", ".join(short) + " image(s) used (all a class has"
                     + (", less one for the test set)" if test_size else ")"))
    return Split(classes, _materialise(source, train_idx, embed_size), labels[train_idx], _materialise(source, test_idx, embed_size),
                 labels[test_idx], tuple(notes))


def run_split(config: RunConfig) -> Split:
    """A run's training and test images, exactly as every resume reloads them."""
    return load_split(
        config.data.dataset,
        embed_size=config.method.geometry.embed_size,
        train_per_class=config.data.train_per_class,
        test_size=config.data.test_size,
        seed=config.seed if config.data.split_seed is None else config.data.split_seed,
    )
