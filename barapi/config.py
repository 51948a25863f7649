"""A run's whole configuration: everything needed to rebuild it exactly on resume. Never a key."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

    canvas_size: int = Field(224, ge=16, le=1024)
    embed_size: int = Field(64, ge=4)
    program_resolution: int | None = Field(
        None, ge=2, description="side of W per channel (grid points, or cosine frequencies); None = one per visible pixel"
    )
    basis: str = Field("bilinear", description="W as a grid upsampled bilinearly, or as coefficients of the lowest 2-D cosines (barapi.method.program.BASES)")
    visible_size: int | None = Field(
        None, ge=4, description="side of the canvas centre the provider's model sees after its own resize and crop; "
        "the program lives there (None: the whole canvas)",
    )

    @model_validator(mode="after")
    def _check(self) -> Geometry:
        from barapi.method.bases import BASES

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

    iterations: int = Field(20, ge=0, description="zeroth-order steps of the one program (0: serve the start), or of a portfolio's views, one view after another")
    batch_size: int = Field(20, ge=1)
    q: int = Field(5, ge=1)
    beta: float | None = Field(None, gt=0, description="radius of the estimator's perturbation; None: PERTURBATION_LEVELS grey levels per coordinate of W")
    lr: float = Field(0.01, gt=0)
    lr_decay: float = Field(0.995, gt=0, le=1)
    estimator: str = "two-sided"
    optimizer: str = "adam"
    loss: str = "focal"
    focal_gamma: float = Field(2.0, ge=0)
    relative_scores: bool = Field(True, description="loss on h_j / Σ_k h_k (the target classes' share) instead of h_j")
    mapping: str = "linear"
    remap_every: int = Field(5, ge=1, description="iterative and linear mappings: re-fit every N iterations")
    remap_memory: float = Field(0.9, ge=0, lt=1, description="iterative mapping: weight kept by older answers per iteration")
    labels_per_class: int | None = Field(None, ge=1, description="m of the m-to-1 mappings; None: 5, or the most the vocabulary allows")
    readout_l2: float = Field(0.01, gt=0, description="linear mapping: L2 penalty of the readout (fitted on paid answers)")
    init_scale: float = Field(0.005, gt=0, description="std of the random starting W (never exactly 0)")
    geometry: Geometry = Geometry(embed_size=112, program_resolution=16)
    eval_every: int = Field(0, ge=0, description="evaluate on the test set every N iterations; 0 = only at the end")
    keep_better_start: bool = Field(
        False, description="at the closing pass, serve the starting program instead of the trained one when its training answers "
        "cross-validate significantly better (barapi.method.selection; no extra query: the label mapping's answers at W0 are cached; "
        "mappings with a closing pass only)",
    )

    views: int = Field(1, ge=1, description="programs each prediction is sent through (barapi.method.portfolio): V queries per predicted image")
    candidates: int = Field(1, ge=1, description="programs whose answers on the training images are paid for, of which the views are chosen")
    # Cosine bands measured better than random programs on every few-label cell (bench/results/portfolio.md).
    candidate_family: str = Field("bands", description="how the candidates are drawn (barapi.method.portfolio.CANDIDATES)")

    @model_validator(mode="after")
    def _check(self) -> MethodConfig:
        # The registries hold the names (imported here: they import this module).
        from barapi.method.losses import LOSSES
        from barapi.method.mapping import MAPPINGS
        from barapi.method.estimators import ESTIMATORS
        from barapi.method.optim import OPTIMIZERS
        from barapi.method.portfolio import CANDIDATES

        for field, registry in (("estimator", ESTIMATORS), ("optimizer", OPTIMIZERS), ("loss", LOSSES), ("mapping", MAPPINGS),
                                ("candidate_family", CANDIDATES)):
            registered(field, getattr(self, field), registry)
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

    dataset: str = "digits"
    train_per_class: int = Field(50, ge=1)
    test_size: int = Field(200, ge=1)
    split_seed: int | None = Field(None, description="seed of the train/test split; None: the run's seed (benchmarks share one split across seeds)")


class ProviderConfig(BaseModel):
    """Which API and how to reach it; secrets stay in the environment."""

    name: str
    options: dict[str, str | int | float | bool | None] = {}


class PredictionCap(BaseModel):
    """--max-usd-per-1k-predictions: each predicted image costs V queries at the run's price."""

    model_config = ConfigDict(extra="forbid")

    usd_per_1k: float = Field(ge=0)
    views_asked: bool = False  # --views given: refused above the cap rather than lowered to fit


class ShapeByApi(BaseModel):
    """A run that left its shape (one program or a portfolio, how many views and candidates) to the
    kind of API it reprograms: fitted to the API's label count before the first paid query
    (barapi.run.planning.shaped)."""

    model_config = ConfigDict(extra="forbid")

    labels: int | None = None  # the label count it was fitted to; None until known


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    seed: int = 0
    provider: ProviderConfig
    data: DataConfig = DataConfig()
    method: MethodConfig = MethodConfig()
    budget_usd: float | None = Field(None, ge=0)
    pool: str | None = Field(None, description="a named budget pool the run also draws on (shared by every run on the store)")
    max_queries: int | None = Field(None, ge=0)
    price_per_1k: float = Field(0.0, ge=0)
    pricing: Pricing | None = Field(None, description="billed by the hour or the request: how price_per_1k was reached")
    prediction_cap: PredictionCap | None = None
    shape_by_api: ShapeByApi | None = None
    candidates_from: list[str] = Field([], description="earlier runs on the store whose programs are a portfolio's first candidates "
                                       "after its start (copied into the run when it starts)")

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
