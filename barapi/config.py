"""A run's whole configuration: everything needed to rebuild it exactly on resume. Never a key."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

from barapi.declare import setting
from barapi.method.bases import BASES
from barapi.method.estimators import ESTIMATORS
from barapi.method.losses import LOSSES
from barapi.method.mapping import MAPPINGS
from barapi.method.optim import OPTIMIZERS
from barapi.method.portfolio import CANDIDATES
from barapi.method.views import FREE_VIEWS
from barapi.money import Pricing

# The estimator's default perturbation, in 8-bit grey levels per coordinate of W (root mean
# square). An API sees a move only where it crosses a grey level, and the loss is far from linear
# over several: bench/results/zo_signal.md finds the two-sided estimate aligned with the autograd
# gradient only when W's coordinates move by about two levels or less, and orthogonal to it at
# ~9 (β = 2 on a 16×16 W, the default before). 1.5 was chosen on validation folds (bench/tune.py).
# The radius grows with √d because a unit-sphere direction spreads over d coordinates.
PERTURBATION_LEVELS = 1.5


GREY_LEVEL = 1 / 127.5  # one 8-bit step of the [-1, 1] canvas (barapi.method.program.quantize)


def registered(field: str, name: str, registry: dict) -> None:
    """A strategy named in a config must be one its registry holds."""
    if name not in registry:
        raise ValueError(f"unknown {field} {name!r}: choose one of {', '.join(registry)}")


class Geometry(BaseModel):
    """Canvas size, the embedded target image's size, the resolution of W and how W becomes the canvas."""

    canvas_size: int = setting(224, "Side of the image sent to the API, px.", group="Program", ge=16, le=1024)
    embed_size: int = setting(64, "Side of the target image in the canvas, px.", group="Program", ge=4)
    program_resolution: int | None = setting(
        None, "Side of W per channel (grid points, or cosine frequencies with --program-basis cosine); 0 = one per pixel.",
        group="Program", zero_is_none=True, ge=2,
    )
    basis: str = setting("bilinear", "How W becomes the canvas: bilinear (a grid, upsampled) or cosine (the lowest 2-D frequencies).",
                         group="Program", flag="program_basis")
    visible_size: int | None = setting(
        None, "Side of the canvas centre the provider's model sees after its own crop, px (the local server's: "
        "196); 0 = the whole canvas.", group="Program", zero_is_none=True, ge=4,
    )

    @model_validator(mode="after")
    def _check(self) -> Geometry:
        registered("basis", self.basis, BASES)
        if self.embed_size >= self.span:
            raise ValueError(
                f"embed size {self.embed_size} leaves no room for a program in the {self.span}px the model sees: "
                "choose an embed size below the canvas (or visible) size"
            )
        if self.visible_size is not None and self.visible_size > self.canvas_size:
            raise ValueError(f"visible size {self.visible_size} exceeds the {self.canvas_size}px canvas")
        if self.program_resolution is not None and self.program_resolution > self.span:
            raise ValueError("program resolution cannot exceed the canvas (or visible) size")
        return self

    @property
    def span(self) -> int:
        """Side of the square the program covers: what the model sees."""
        return self.visible_size or self.canvas_size

    @property
    def resolution(self) -> int:
        return self.program_resolution or self.span

    @property
    def offset(self) -> int:
        return (self.canvas_size - self.embed_size) // 2

    @property
    def parameter_shape(self) -> tuple[int, int, int]:
        return (self.resolution, self.resolution, 3)


class MethodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iterations: int = setting(20, "Zeroth-order steps (0: serve the start); a portfolio's refine its views in turn (default "
                              "there: 0).", group="Zeroth-order steps", shapes_run=True, ge=0)
    batch_size: int = setting(20, "Images per step.", group="Zeroth-order steps", shapes_run=True, ge=1)
    q: int = setting(5, "Random directions per gradient estimate.", group="Zeroth-order steps", shapes_run=True, ge=1)
    beta: float | None = setting(None, "Radius of the estimator's perturbation of W (default: what moves each coordinate of W by "
                                 "1.5 grey levels).", group="Zeroth-order steps", shapes_run=True, gt=0)
    lr: float = setting(0.01, "Initial step size.", group="Zeroth-order steps", shapes_run=True, gt=0)
    lr_decay: float = setting(0.995, "Step size multiplier per step.", group="Zeroth-order steps", shapes_run=True, gt=0, le=1)
    estimator: str = setting("two-sided", "Gradient estimator: one-sided is the paper's; null a control (the losses shuffled).",
                             group="Zeroth-order steps", shapes_run=True)
    optimizer: str = setting("adam", "sgd is the paper's; nesterov-gc with spsa is SPSA-GC; cma-es samples 2q programs a step.",
                             group="Zeroth-order steps", shapes_run=True)
    init_scale: float = setting(0.005, "Std of the random starting W (never exactly 0).", group="Zeroth-order steps", shapes_run=True, gt=0)
    eval_every: int = setting(0, "Evaluate on the test images every N steps; 0 = at the end only.", group="Zeroth-order steps",
                              shapes_run=True, ge=0)
    keep_better_start: bool = setting(
        False, "Serve the starting program where its training answers cross-validate significantly better "
        "(free: cached).", group="Zeroth-order steps", shapes_run=True,
    )
    loss: str = setting("focal", "Training loss.", group="Label mapping", shapes_run=True)
    focal_gamma: float = setting(2.0, "The focal loss's gamma.", group="Label mapping", shapes_run=True, ge=0)
    relative_scores: bool = setting(True, "Loss on each target label's share of their scores, not the raw score.",
                                    group="Label mapping", shapes_run=True)
    mapping: str = setting("linear", "Label mapping: linear is a readout over every label's score; iterative is re-fitted from "
                           "paid answers.", group="Label mapping", shapes_run=True)
    remap_every: int = setting(5, "Iterative and linear mappings: re-fit every N steps.", group="Label mapping", shapes_run=True, ge=1)
    remap_memory: float = setting(0.9, "Iterative mapping: weight older answers keep per step.", group="Label mapping",
                                  shapes_run=True, ge=0, lt=1)
    labels_per_class: int | None = setting(None, "Source labels per target class of the m-to-1 mappings (default: 5, or as many as "
                                           "fit).", group="Label mapping", ge=1)
    readout_l2: float = setting(0.01, "Linear mapping: L2 penalty of the readout.", group="Label mapping", shapes_run=True, gt=0)
    geometry: Geometry = Geometry(embed_size=112, program_resolution=16)

    views: int = setting(1, "Programs each image is sent through, read by one readout (default: 8 through at most 100 "
                         "labels, else 1).", group="Portfolio", shapes_run=True, ge=1)
    candidates: int = setting(1, "Programs paid for on the training images, the views chosen of them by cross-validation "
                              "(default: up to 48).", group="Portfolio", shapes_run=True, ge=1)
    # Bands won the three few-label cells of README's table, not every cell (bench/results/portfolio.md).
    candidate_family: str = setting("bands", "random, bands, casts or mixed.", group="Portfolio",
                                    shapes_run=True)
    free_views: str = setting("pixels", "Free views beside the paid: pixels, local[=FILE.onnx], none.",
                              group="Portfolio")

    @model_validator(mode="after")
    def _check(self) -> MethodConfig:
        for field, registry in (("estimator", ESTIMATORS), ("optimizer", OPTIMIZERS), ("loss", LOSSES), ("mapping", MAPPINGS),
                                ("candidate_family", CANDIDATES)):
            registered(field, getattr(self, field), registry)
        for kind in (spec.partition("=")[0].strip() for spec in self.free_views.split(",") if spec.strip() not in ("", "none")):
            registered("free_views", kind, FREE_VIEWS)
        if self.views > self.candidates:
            raise ValueError(f"{self.views} views need at least as many candidates (got {self.candidates}): raise --candidates")
        if self.is_portfolio and not MAPPINGS[self.mapping].reads_every_label:
            raise ValueError(f"a portfolio is read by one linear readout over its views' answers: use --mapping linear, not {self.mapping}")
        return self

    @property
    def is_portfolio(self) -> bool:
        """Several candidates or views (barapi.method.portfolio); otherwise the one program of Algorithm 1."""
        return self.candidates > 1

    @property
    def interim_evaluations(self) -> int:
        """Test evaluations --eval-every asks for before the last step (the last one is always made)."""
        return (self.iterations - 1) // self.eval_every if self.eval_every else 0

    @property
    def perturbation_radius(self) -> float:
        """β: as configured, or PERTURBATION_LEVELS grey levels per coordinate of this W."""
        if self.beta is not None:
            return self.beta
        return PERTURBATION_LEVELS * GREY_LEVEL * math.sqrt(math.prod(self.geometry.parameter_shape))


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = setting("digits", "digits, fashion-mnist, a folder of class folders or an .npz (x, y); ':A,B' keeps "
                           "classes A and B.", group="Data")
    train_per_class: int = setting(50, "Training images per class.", group="Data", ge=1)
    test_size: int = setting(200, "Held-out test images (0: none, every image trains).", group="Data", ge=0)
    split_seed: int | None = setting(None, "Seed of the train/test split (default: the run's seed).", group="Data")


class ProviderConfig(BaseModel):
    """Which API and how to reach it; secrets stay in the environment."""

    name: str
    options: dict[str, str | int | float | bool | None] = {}


class PredictionCap(BaseModel):
    """--max-usd-per-1k-predictions: each predicted image costs V queries at the run's price."""

    model_config = ConfigDict(extra="forbid")

    usd_per_1k: float = setting(..., "Most dollars 1,000 predictions may cost: caps the views at the provider's price.",
                                group="Portfolio", flag="max_usd_per_1k_predictions", ge=0)
    views_asked: bool = False  # --views given: refused above the cap rather than lowered to fit


class ShapeByApi(BaseModel):
    """A run that left its shape (one program or a portfolio, how many views and candidates) to the
    kind of API it reprograms: fitted to the API's label count before the first paid query
    (barapi.run.planning.shaped)."""

    model_config = ConfigDict(extra="forbid")

    labels: int | None = None  # the label count it was fitted to; None until known


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = setting(..., "Run name (default: generated).", group="Run")
    seed: int = setting(0, "Seed of every random choice.", group="Run")
    provider: ProviderConfig
    data: DataConfig = DataConfig()
    method: MethodConfig = MethodConfig()
    budget_usd: float | None = setting(None, "Most dollars this run may spend.", group="Budget", flag="budget", ge=0)
    pool: str | None = setting(None, "Also draw on this named budget pool, shared by every run on the store.", group="Budget")
    max_queries: int | None = setting(None, "Most images this run may send (paid).", group="Budget", ge=0)
    price_per_1k: float = setting(0.0, "Dollars per 1,000 images (overrides the price table).", group="Budget", ge=0)
    pricing: Pricing | None = Field(None, description="billed by the hour or the request: how price_per_1k was reached")
    prediction_cap: PredictionCap | None = None
    shape_by_api: ShapeByApi | None = None
    candidates_from: list[str] = setting([], "Earlier runs on the store (repeatable) whose programs are tried as candidates first, "
                                         "after the start.", group="Portfolio", shapes_run=True)

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if "/" in self.name or not self.name.strip():
            raise ValueError(f"run name {self.name!r} must be non-empty and contain no '/'")
        if self.candidates_from and not self.method.is_portfolio:
            raise ValueError("--candidates-from gives a portfolio candidates: pass --views or --candidates above 1 with it")
        return self


# Named method settings. "paper" is Algorithm 1 as published (full-resolution W, one-sided
# estimator with q = 25 unit-sphere directions, b = d, SGD with exponential decay, minibatch 20,
# focal loss, frequency mapping) with the one change an 8-bit API forces: β = 0.01 moves no
# pixel by a grey level (tests/test_program.py shows it), so β and the step are the best found for that
# algorithm. "default" is what the benchmarks showed works best (bench/fewlabel.py's default and
# paper rows): above all the linear readout over every label's score instead of m labels per class.
PRESETS: dict[str, MethodConfig] = {
    "default": MethodConfig(),
    # Same data geometry and m as the default, so the two differ only in the method.
    "paper": MethodConfig(
        q=25, beta=5.0, lr=2.0, lr_decay=0.99, estimator="one-sided", optimizer="sgd", mapping="frequency",
        relative_scores=False, loss="focal", init_scale=0.5, geometry=Geometry(program_resolution=None, embed_size=112),
    ),
}
