"""barapi as a scikit-learn classifier: ``Reprogrammer(provider="local", budget=2).fit(X, y)``.

Its parameters are the run's settings (generated from the config fields, as the CLI's flags
are), the provider and its options, and ``home`` (the store's folder). Each ``fit`` is a run on
the store, listable and resumable like any other: the images given are kept as an .npz under
the store's folder, so a resume reloads them. A second fit on overlapping images pays only for
the answers the cache does not hold (the same seed draws the same programs, whose bytes on the
same images are cached). Once fitted it is picklable: the learned program travels with it.
"""

from __future__ import annotations

import hashlib
import inspect
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from barapi.api import Predictions, configure, predict_program, provider_option_names, train
from barapi.data import as_images
from barapi.errors import ConfigError
from barapi.settings import SETTINGS
from barapi.store import Store

# fit(X, y) says what the data is: every image given trains, none is held out.
DATA_SETTINGS = ("dataset", "train_per_class", "test_size")


def parameter_names() -> list[str]:
    run = [name for name in SETTINGS if name not in DATA_SETTINGS]
    return ["provider", *run, *sorted(provider_option_names() - SETTINGS.keys()), "home"]


class Reprogrammer(ClassifierMixin, BaseEstimator):
    """Reprograms the provider's model for the classes of ``y``; ``None`` is the default a CLI
    run gets. ``name`` prefixes each fit's run name."""

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(parameter_names()))
        if unknown:
            raise TypeError(f"Reprogrammer got unknown parameter(s) {', '.join(unknown)}: see help(barapi.Reprogrammer)")
        for name in parameter_names():
            setattr(self, name, params.get(name))

    def _store(self) -> Store:
        return Store(Path(self.home)) if self.home else Store()

    def fit(self, X: Any, y: Any, *, on_progress: Any = None) -> Reprogrammer:
        labels = np.asarray(y)
        self.classes_ = np.unique(labels)
        settings = {name: getattr(self, name) for name in parameter_names() if name != "home"}
        prefix = settings.pop("name") or "fit"
        index = np.searchsorted(self.classes_, labels)
        config = configure(**settings, train_per_class=int(np.bincount(index).max()), test_size=0,
                           name=f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}")
        pixels = np.round((as_images(X, config.method.geometry.embed_size) + 1.0) * 127.5).astype(np.uint8)
        if len(pixels) != len(labels):
            raise ConfigError(f"{len(pixels)} images but {len(labels)} labels")
        store = self._store()
        # The images are kept at the embedding size they are read at, as the run's dataset.
        dataset = _kept(store.home, pixels, index, [str(c) for c in self.classes_])
        config = config.model_copy(update={"data": config.data.model_copy(update={"dataset": str(dataset)})})
        run = train(config, store=store, on_progress=on_progress)
        self.run_name_ = run.name
        self.program_ = run.learned()
        self.result_ = run.result
        return self

    def _predictions(self, X: Any, budget: float | None = None) -> Predictions:
        if not hasattr(self, "program_"):
            raise ConfigError("this Reprogrammer is not fitted yet: call fit(X, y) first")
        return predict_program(self.program_, X, self._store(), self.run_name_, budget, None, {})

    def predict_proba(self, X: Any) -> np.ndarray:
        """Each class's share of the mapped scores, columns in the order of ``classes_``."""
        return self._predictions(X).shares

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self._predictions(X).indices]


def _kept(home: Path, pixels: np.ndarray, labels: np.ndarray, classes: list[str]) -> Path:
    """The images as an .npz named by their content, so a resume (and a refit) reloads them."""
    digest = hashlib.sha256(pixels.tobytes() + labels.astype(np.int64).tobytes() + "\0".join(classes).encode()).hexdigest()[:20]
    path = home / "datasets" / f"{digest}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npz")
        np.savez_compressed(partial, x=pixels, y=labels, classes=np.array(classes))
        partial.replace(path)
    return path


Reprogrammer.__init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in parameter_names()]
)
