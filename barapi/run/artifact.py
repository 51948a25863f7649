"""A learned program as a portable artifact: what `export` writes and `predict --program` reads.

The folder holds everything needed to apply the program without the database that trained it:

- ``program.npz``: W (``w``: the first view), every view a prediction is sent through
  (``programs``, V × W's shape: a portfolio's, or the one), the mask, the canvas/embedding
  geometry and, for the linear mapping, the readout's arrays (``readout_mean``,
  ``readout_scale``, ``readout_weights``: over the V views' answers side by side);
- ``mapping.json``: the target classes, the provider's label vocabulary and, per class, the m
  source labels whose mean scores it (with the linear mapping: the labels the frequency
  mapping would use, for reading; the readout uses every label);
- ``config.json``: the run's configuration (provider, data, method; never a key);
- ``program.png``: the (first view's) universal program P = tanh(upsample(W) ⊙ M) as an image (the embedding
  area is mid-grey: P is 0 there); ``program-stretched.png``: the same with its contrast
  stretched to the full range, because a learned P is often a few grey levels away from flat;
- ``example-*.png``: target images with the program applied, byte for byte what the API gets;
- ``view-2.png`` … ``view-V.png``: a portfolio's other programs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from barapi.run.checkpoint import load_config, require_state
from barapi.classifier import Classifier, Scores, SelectableLabels, canvas_encoding
from barapi.config import RunConfig
from barapi.errors import ConfigError
from barapi.method.labels import LabelMap, fill_missing
from barapi.method.readout import LinearReadout, StackedReadout, prefixed, target_mapper
from barapi.method.views import check_identity, free_features, free_views
from barapi.method.program import Program, encode_png, program_sha256
from barapi.config import Geometry
from barapi.money import Budget
from barapi.run.queries import QueryEngine
from barapi.run.strategies import restored_mapping
from barapi.store import Store

PROGRAM_FILE, MAPPING_FILE, CONFIG_FILE = "program.npz", "mapping.json", "config.json"
PICTURE_FILE, STRETCHED_FILE = "program.png", "program-stretched.png"
# How many example images an export shows: enough to see the program around different classes.
EXAMPLES = 4


@dataclass(frozen=True)
class Prediction:
    shares: np.ndarray  # (images, classes), rows summing to 1
    queries_paid: int
    queries_cached: int
    cost_usd: float


@dataclass(frozen=True)
class LearnedProgram:
    config: RunConfig
    programs: np.ndarray  # (V, *W's shape): each image is sent through every one
    classes: list[str]
    vocabulary: list[str]
    assignment: np.ndarray  # (classes, m) indices into vocabulary
    readout: dict[str, np.ndarray]  # LinearReadout (or StackedReadout) arrays when the mapping is "linear", else empty
    free: tuple[str, ...] = ()  # the free views the readout reads after the paid ones (barapi.method.views)
    free_identities: tuple[dict, ...] = ()  # what each was when the readout was fitted (a local network's checksum)

    @property
    def mapper(self) -> LabelMap | LinearReadout | StackedReadout:
        return target_mapper(self.assignment, self.readout)

    @property
    def geometry(self) -> Geometry:
        return self.config.method.geometry

    @property
    def w(self) -> np.ndarray:
        return self.programs[0]

    @property
    def views(self) -> int:
        return len(self.programs)

    @property
    def sha256(self) -> str:
        """As the run reports it (one view's stack hashes as its W: the same bytes)."""
        return program_sha256(self.programs)

    @property
    def mapped_labels(self) -> list[str] | None:
        """The labels the scores depend on; None when it is every label (the linear readout)."""
        return None if self.readout else sorted({self.vocabulary[i] for i in self.assignment.ravel()})

    @classmethod
    def from_run(cls, store: Store, run: str, classes: list[str]) -> LearnedProgram:
        """The run's latest checkpoint: the program and the mapping its predictions use."""
        config, state = load_config(store, run), require_state(store, run)
        mapping = restored_mapping(config.method, len(classes), state.arrays, state.iteration)
        serving = prefixed(state.arrays, "portfolio.readout.") or prefixed(mapping.state(state.iteration), "readout.")
        free = tuple(str(spec) for spec in state.arrays.get("portfolio.free", ()))
        identities = tuple(view.identity() for view in free_views(",".join(free)))
        return cls(config, state.views, list(classes), state.vocabulary, mapping.described(), serving, free, identities)

    def target_shares(self, responses: Sequence[Scores], images: np.ndarray) -> np.ndarray:
        """Provider answers (and the images, for the free views) → (n, classes): each class's
        share of the mapped scores (rows sum to 1), so the top class and its score read the same
        for every provider."""
        index = {label: i for i, label in enumerate(self.vocabulary)}
        answers = np.split(np.stack([fill_missing(r, self.vocabulary, index) for r in responses]), self.views) if responses else []
        scores = self.mapper.target_scores(np.hstack([*answers, *free_features(self.free, images)]))
        return scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-300)

    def predict(self, classifier: Classifier, store: Store, images: np.ndarray, *, budget_usd: float | None, price_per_1k: float, ledger: str | None) -> Prediction:
        """Target images → their class shares through ``classifier``: each image through every
        view, all sent together (the adapters batch or send them concurrently); every query goes
        through a budget, the cache and the ledger (booked to ``ledger``, the run, or else to this
        program), and nothing is sent unless every image fits the budget."""
        if isinstance(classifier, SelectableLabels) and self.mapped_labels:
            classifier.restrict_to(self.mapped_labels)  # top-k truncation never hides a mapped label
        check_identity(free_views(",".join(self.free)), self.free_identities)
        spending = Budget(max_usd=budget_usd, max_queries=None, per_1k=price_per_1k)
        engine = QueryEngine(classifier, store, spending, ledger or f"predict-{self.sha256[:12]}")
        cached_before = engine.queries_cached
        program = Program(self.geometry, canvas_encoding(classifier))
        responses = engine.score([image for w in self.programs for image in program.encode_batch(w, images)], all_or_nothing=True)
        return Prediction(self.target_shares(responses, images), spending.spent_queries, engine.queries_cached - cached_before, spending.spent_usd)

    # -- the folder ------------------------------------------------------------------------------
    def save(self, directory: Path, examples: np.ndarray) -> list[Path]:
        """Write the artifact; ``examples``: a few target images (embed × embed × 3, [-1, 1])."""
        directory.mkdir(parents=True, exist_ok=True)
        program = Program(self.geometry)
        g = self.geometry
        with (directory / PROGRAM_FILE).open("wb") as handle:
            np.savez(
                handle, **({"w": self.w} if self.views else {}), programs=self.programs, mask=program.mask[:, :, 0], canvas_size=g.canvas_size, embed_size=g.embed_size,
                offset=g.offset, program_resolution=g.program_resolution or 0,
                **{f"readout_{name}": array for name, array in self.readout.items()},
            )
        mapping = {
            "mapping": self.config.method.mapping,
            "classes": self.classes,
            "labels_per_class": {c: [self.vocabulary[i] for i in row] for c, row in zip(self.classes, self.assignment)},
            "vocabulary": self.vocabulary,
            "program_sha256": self.sha256,
            "views": self.views,
            "free_views": [{"spec": spec} | identity for spec, identity in zip(self.free, self.free_identities)],
        }
        (directory / MAPPING_FILE).write_text(json.dumps(mapping, indent=1, ensure_ascii=False))
        (directory / CONFIG_FILE).write_text(self.config.model_dump_json(indent=1))
        written = [directory / name for name in (PROGRAM_FILE, MAPPING_FILE, CONFIG_FILE)]
        return written + (self._pictures(directory, program, examples) if self.views else [])

    def _pictures(self, directory: Path, program: Program, examples: np.ndarray) -> list[Path]:
        """The programs as images, and a few examples as the API gets them (none where only the free views are served)."""
        perturbation = program.perturbation(self.w)
        (directory / PICTURE_FILE).write_bytes(encode_png(perturbation))
        (directory / STRETCHED_FILE).write_bytes(encode_png(perturbation / max(float(np.abs(perturbation).max()), 1e-12)))
        written = [directory / PICTURE_FILE, directory / STRETCHED_FILE]
        for i, image in enumerate(program.encode_batch(self.w, examples[:EXAMPLES])):
            path = directory / f"example-{i + 1}.png"
            path.write_bytes(image)
            written.append(path)
        for k, view in enumerate(self.programs[1:], start=2):  # a portfolio's other views, as program.png shows the first
            path = directory / f"view-{k}.png"
            path.write_bytes(encode_png(program.perturbation(view)))
            written.append(path)
        return written

    @classmethod
    def load(cls, directory: Path) -> LearnedProgram:
        missing = [name for name in (PROGRAM_FILE, MAPPING_FILE, CONFIG_FILE) if not (directory / name).is_file()]
        if missing:
            raise ConfigError(f"{directory} is not a barapi export (missing {', '.join(missing)}): make one with `barapi export RUN --out DIR`")
        try:
            config = RunConfig.model_validate_json((directory / CONFIG_FILE).read_text("utf-8"))
            mapping = json.loads((directory / MAPPING_FILE).read_text("utf-8"))
            with np.load(directory / PROGRAM_FILE, allow_pickle=False) as archive:
                programs = np.array(archive["programs"] if "programs" in archive.files else archive["w"][None], dtype=np.float64)
                readout = {name.removeprefix("readout_"): np.array(archive[name]) for name in archive.files if name.startswith("readout_")}
            vocabulary = [str(label) for label in mapping["vocabulary"]]
            index = {label: i for i, label in enumerate(vocabulary)}
            classes = [str(c) for c in mapping["classes"]]
            assignment = np.asarray([[index[label] for label in mapping["labels_per_class"][c]] for c in classes])
            identities = [dict(view) for view in mapping.get("free_views", [])]
            free = tuple(str(identity.pop("spec")) for identity in identities)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"cannot read the export in {directory}: {error}; export the run again") from error
        if programs.shape[1:] != config.method.geometry.parameter_shape:
            raise ConfigError(f"{directory}: W has shape {programs.shape[1:]} but the config says {config.method.geometry.parameter_shape}")
        if readout and readout_shape(readout) != ([len(programs) * len(vocabulary)] * bool(len(programs)) + [None] * len(free), {len(classes)}):
            raise ConfigError(f"{directory}: the readout does not match {len(programs)} view(s) of {len(vocabulary)} labels, "
                              f"{len(free)} free view(s) and {len(classes)} classes: export the run again")
        return cls(config, programs, classes, vocabulary, assignment, readout, free, tuple(identities))


def readout_shape(readout: dict[str, np.ndarray]) -> tuple[list[int | None], set[int]]:
    """The paid block's width, then None for each free one (their widths are the views' own);
    and the class counts its blocks read out."""
    if "columns" not in readout:
        return [readout["weights"].shape[0] - 1], {readout["weights"].shape[1]}
    blocks = [prefixed(readout, f"block{i}.") for i in range(len(readout["columns"]))]
    widths = [int(width) if bool(block.get("logged", True)) else None for width, block in zip(readout["columns"], blocks)]
    return widths, {block["weights"].shape[1] for block in blocks}
