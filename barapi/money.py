"""Prices, estimates and budgets. Dollars = paid queries × price; a cache hit costs $0."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

from barapi.declare import setting
from pydantic import BaseModel, Field

from barapi.errors import BudgetExceeded, PriceError

PRICE_FILE_NAME = "prices.json"


def price_per_1k(provider: str, model: str, *, listed: float | None = None, override: float | None = None, price_file: Path | None = None) -> float:
    """The user's override, else their price file ({"provider": p} or {"provider/model": p}),
    else the provider's list price (``listed``, declared by its adapter). Never a silent $0
    for a provider without one."""
    if override is not None:
        if not math.isfinite(override) or override < 0:
            raise PriceError(f"--price-per-1k must be a non-negative number, got {override}")
        return float(override)
    table: dict[str, float] = {}
    if price_file is not None and price_file.is_file():
        try:
            table = {str(k): float(v) for k, v in json.loads(price_file.read_text()).items()}
        except (ValueError, TypeError, AttributeError) as error:
            raise PriceError(f"price file {price_file} is not a JSON object of dollars per 1,000 images: {error}") from error
    for key in (f"{provider}/{model}", provider):
        if key in table:
            return table[key]
    if listed is not None:
        return listed
    raise PriceError(
        f"no known price for {provider}/{model}: pass --price-per-1k (per image) or --price-per-hour (an endpoint billed by "
        f'the hour), or add "{provider}/{model}": <dollars per 1,000 images> to {price_file or PRICE_FILE_NAME}'
    )


def cost_usd(queries: int, per_1k: float) -> float:
    return queries * per_1k / 1000.0


class Pricing(BaseModel):
    """A provider billed by the endpoint-hour (Hugging Face Inference Endpoints, a self-hosted
    KServe or Triton on rented hardware) and/or per request, turned into the price per image
    that budgets, estimates and the ledger use: an hour buys ``3,600 × throughput`` images.
    A request is charged per image sent (an upper bound where one request carries several)."""

    per_hour: float | None = setting(None, "Dollars per endpoint-hour (an endpoint billed by the hour), priced per image by the "
                                     "throughput.",
                                     group="Budget", flag="price_per_hour", ge=0)
    per_request: float = setting(0.0, "Dollars per request, where a host charges one (booked per image sent).", group="Budget",
                                 flag="price_per_request", ge=0)
    per_1k_images: float = Field(0.0, ge=0)
    throughput: float | None = setting(None, "Images/s the endpoint answers, for --price-per-hour (default: measured on a first "
                                       "batch of 16).", group="Budget", gt=0)
    throughput_measured: bool = False  # False: given by the user (--throughput)

    @property
    def complete(self) -> bool:
        """Whether the price per image is known: an hourly price needs the endpoint's throughput."""
        return not self.per_hour or self.throughput is not None

    @property
    def per_1k(self) -> float:
        hourly = 0.0
        if self.per_hour:
            if self.throughput is None:
                raise PriceError("an hourly price needs the endpoint's throughput: pass --throughput IMAGES_PER_S, or let train/estimate measure it")
            hourly = self.per_hour / (3.6 * self.throughput)
        return self.per_1k_images + 1000 * self.per_request + hourly

    def measured(self, throughput: float) -> Pricing:
        return self.model_copy(update={"throughput": throughput, "throughput_measured": True})

    def describe(self) -> str:
        parts = [f"${self.per_hour:g}/endpoint-hour at {self.throughput:,.1f} images/s ("
                 + ("measured on the first batch" if self.throughput_measured else "--throughput") + ")"] if self.per_hour else []
        parts += [f"${self.per_request:g}/request"] if self.per_request else []
        parts += [f"${self.per_1k_images:g}/1k images"] if self.per_1k_images else []
        return " + ".join(parts) + f" = ${self.per_1k:.4f}/1k images"

    def as_json(self) -> dict:
        return self.model_dump() | {"per_1k": round(self.per_1k, 6), "throughput_source": ("measured" if self.throughput_measured else "given") if self.throughput else None}


class Estimate(BaseModel):
    label_mapping: int
    training: int
    candidates: int = 0  # a portfolio: the training set answered by every candidate but the start
    readout: int = 0  # linear readout: the training set answered at the final W (and per interim evaluation), or at each refined view's
    evaluation: int
    cached: int
    price_per_1k: float
    vocabulary: int | None = None  # labels the provider publishes; None: learnt from its first answer
    notice: str | None = None  # e.g. the m-to-1 mapping shrank to fit the vocabulary
    views: int = 1  # programs each predicted image is sent through
    candidate_programs: int = 1  # a portfolio's candidates, the views chosen among them
    pricing: Pricing | None = None  # billed by the hour or the request: how price_per_1k was reached
    fitted_to_labels: int | None = None  # a run shaped by the API's label count (barapi.run.planning.shaped)
    free_baseline: dict | None = None  # what the training images alone reach, cross-validated, no query (barapi.method.free)

    @property
    def usd_per_1k_predictions(self) -> float:
        return cost_usd(1000 * self.views, self.price_per_1k)

    @property
    def total(self) -> int:
        return self.label_mapping + self.training + self.candidates + self.readout + self.evaluation

    @property
    def cost_usd(self) -> float:
        return cost_usd(max(self.total - self.cached, 0), self.price_per_1k)

    def as_json(self) -> dict:
        return {
            "queries": {
                "label_mapping": self.label_mapping,
                "training": self.training,
                "candidates": self.candidates,
                "readout": self.readout,
                "evaluation": self.evaluation,
                "cached": self.cached,
                "total": self.total,
            },
            "cost_usd": round(self.cost_usd, 6),
            "price_per_1k": self.price_per_1k,
            "pricing": self.pricing.as_json() if self.pricing else None,
            "queries_per_prediction": self.views,
            "usd_per_1k_predictions": round(self.usd_per_1k_predictions, 6),
            "vocabulary": self.vocabulary,
            "notice": self.notice,
            "fitted_to_labels": self.fitted_to_labels,
            "free_baseline": self.free_baseline,
        }


class Budget:
    """What a run may still spend, in dollars and in paid queries. Thread-safe: adapters reserve
    from several threads at once. ``spent`` includes reservations not yet settled."""

    def __init__(self, *, max_usd: float | None, max_queries: int | None, per_1k: float, spent_usd: float = 0.0, spent_queries: int = 0) -> None:
        self.max_usd, self.max_queries, self.per_1k = max_usd, max_queries, per_1k
        self.spent_usd, self.spent_queries = spent_usd, spent_queries
        self._lock = threading.Lock()

    def fits(self, n: int) -> bool:
        with self._lock:
            return self._fits(n)

    def _fits(self, n: int) -> bool:
        if self.max_queries is not None and self.spent_queries + n > self.max_queries:
            return False
        # A micro-dollar of slack absorbs float rounding in the running sum, never a whole query.
        return self.max_usd is None or self.spent_usd + cost_usd(n, self.per_1k) <= self.max_usd + 1e-9

    def reserve(self, n: int) -> float:
        with self._lock:
            if not self._fits(n):
                raise BudgetExceeded(
                    f"sending {n} more image(s) would pass the budget ({self.describe()}): "
                    "raise it with --budget / --max-queries and resume"
                )
            cost = cost_usd(n, self.per_1k)
            self.spent_usd += cost
            self.spent_queries += n
            return cost

    def release(self, n: int) -> None:
        with self._lock:
            self.spent_usd -= cost_usd(n, self.per_1k)
            self.spent_queries -= n

    def describe(self) -> str:
        parts = [f"spent ${self.spent_usd:.4f}"]
        if self.max_usd is not None:
            parts.append(f"of ${self.max_usd:.2f}")
        parts.append(f"{self.spent_queries} queries")
        if self.max_queries is not None:
            parts.append(f"of {self.max_queries}")
        return " ".join(parts)
