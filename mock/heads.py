"""The models the local server serves: the real network's 1,000 ImageNet probabilities, or few
labels computed from them, the shape of the paper's real APIs (§ 4.4).

- ``efficientnet-lite0`` (and -lite1, -lite2): every ImageNet class;
- ``coarse-2``, ``coarse-5``, ``coarse-10``: the probabilities summed over fixed groups of
  consecutive ImageNet classes (``coarse_groups.json``). They stand in for Clarifai's NSFW (2
  concepts) and Moderation (5) models in shape only: their labels mean what the groups say;
- a trained project (``--project NAME=DATASET``), as Custom Vision makes one: a multinomial
  logistic regression on the real network's log-probabilities of a labelled dataset's images,
  fitted once and cached under BARAPI_HOME/projects; its tags are the dataset's classes.

A ``ServedModel`` is a head over the network: (n, 1000) probabilities → (n, labels).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from barapi.data import load_split
from barapi.errors import ConfigError
from barapi.method.program import encode_png
from barapi.method.readout import LinearReadout

COARSE_MODELS = ("coarse-2", "coarse-5", "coarse-10")
# A project is fitted on this many images per class (Custom Vision needs ≥ 5 per tag; more
# makes the stand-in a better classifier of its own task) and checked on a held-out set.
PROJECT_IMAGES_PER_CLASS = 100
PROJECT_CHECK_IMAGES = 500
PROJECT_L2 = 0.01


@dataclass(frozen=True)
class ServedModel:
    name: str
    labels: list[str]
    head: Callable[[np.ndarray], np.ndarray]  # (n, 1000) ImageNet probabilities → (n, labels)

    def scores(self, probabilities: np.ndarray) -> np.ndarray:
        return self.head(np.atleast_2d(probabilities))


def coarse_groups() -> dict[str, list[dict]]:
    text = resources.files("barapi.mock").joinpath("coarse_groups.json").read_text("utf-8")
    return {name: groups for name, groups in json.loads(text).items() if not name.startswith("_")}


def group_matrix(groups: list[dict], n_classes: int = 1000) -> np.ndarray:
    """(1000, k): column j is 1 on group j's ImageNet classes."""
    matrix = np.zeros((n_classes, len(groups)))
    for j, group in enumerate(groups):
        matrix[group["first"] : group["last"] + 1, j] = 1.0
    if not np.array_equal(matrix.sum(axis=1), np.ones(n_classes)):
        raise ConfigError("coarse groups must cover every ImageNet class exactly once")
    return matrix


def coarse_model(name: str) -> ServedModel:
    groups = coarse_groups()[name]
    matrix = group_matrix(groups)
    return ServedModel(name, [g["name"] for g in groups], lambda p: p @ matrix)


def imagenet_model(name: str, classes: list[str]) -> ServedModel:
    return ServedModel(name, list(classes), lambda p: p)


def project_model(name: str, readout: LinearReadout, tags: list[str]) -> ServedModel:
    return ServedModel(name, list(tags), readout.target_scores)


def parse_project(spec: str) -> tuple[str, str]:
    """'NAME=DATASET' → (name, dataset spec)."""
    name, _, dataset = spec.partition("=")
    if not name or not dataset or "/" in name:
        raise ConfigError(f"--project {spec!r}: write NAME=DATASET, e.g. --project fashion=fashion-mnist")
    return name, dataset


def project_path(home: Path, network: str, dataset: str, seed: int, per_class: int = PROJECT_IMAGES_PER_CLASS) -> Path:
    key = json.dumps([network, dataset, seed, per_class, PROJECT_L2])
    return home / "projects" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def trained_project(name: str, dataset: str, classify: Callable[[list[bytes]], np.ndarray], network: str, size: int, home: Path, seed: int = 0,
                    per_class: int = PROJECT_IMAGES_PER_CLASS) -> ServedModel:
    """The project's classifier: fitted once on the network's answers to ``per_class`` of the
    dataset's images a class (each the whole input, as a Custom Vision project's photos are),
    then read from its cache."""
    path = project_path(home, network, dataset, seed, per_class)
    if path.is_file():
        with np.load(path, allow_pickle=False) as archive:
            readout = LinearReadout.from_state({k: archive[k] for k in ("mean", "scale", "weights")})
            tags = [str(t) for t in archive["tags"]]
        return project_model(name, readout, tags)
    split = load_split(dataset, embed_size=size, train_per_class=per_class, test_size=PROJECT_CHECK_IMAGES, seed=seed)

    def answers(images: np.ndarray) -> np.ndarray:
        return np.concatenate([classify([encode_png(image) for image in images[i : i + 32]]) for i in range(0, len(images), 32)])

    readout = LinearReadout.fit(answers(split.x_train), split.y_train, split.n_classes, PROJECT_L2)
    held_out = float(np.mean(np.argmax(readout.target_scores(answers(split.x_test)), axis=1) == split.y_test))
    print(f"project {name}: {split.n_classes} tags from {dataset}, {len(split.y_train)} training images, "
          f"{held_out:.1%} on {len(split.y_test)} held-out images", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, tags=np.asarray(split.classes, dtype=str), **readout.state())
    partial.replace(path)
    return project_model(name, readout, split.classes)
