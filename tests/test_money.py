from pathlib import Path

import pytest

from barapi.errors import BudgetExceeded, PriceError
from barapi.money import Budget, Estimate, price_per_1k


def test_list_prices_come_from_each_provider_and_match_the_design_table() -> None:
    from barapi.adapters import providers

    listed = {name: p.price_per_1k for name, p in providers().items()}
    # Hugging Face bills by the hour or compute time: no price per image to assume.
    assert listed == {"clarifai": 1.20, "azure": 2.00, "torchserve": 0.0, "huggingface": None, "oip": 0.0, "local": 0.0}
    assert price_per_1k("clarifai", "general-image-recognition", listed=listed["clarifai"]) == 1.20


def test_unknown_provider_is_an_error_that_says_how_to_set_a_price(tmp_path: Path) -> None:
    with pytest.raises(PriceError, match="--price-per-1k .*--price-per-hour"):
        price_per_1k("acme", "vision", price_file=tmp_path / "prices.json")
    with pytest.raises(PriceError, match="--price-per-hour"):
        price_per_1k("huggingface", "google/vit-base-patch16-224", listed=None, price_file=tmp_path / "prices.json")


def test_user_price_file_and_override_take_precedence(tmp_path: Path) -> None:
    file = tmp_path / "prices.json"
    file.write_text('{"acme/vision": 3.5, "clarifai": 1.0}')
    assert price_per_1k("acme", "vision", price_file=file) == 3.5
    assert price_per_1k("clarifai", "x", listed=1.20, price_file=file) == 1.0
    assert price_per_1k("clarifai", "x", listed=1.20, override=0.7, price_file=file) == 0.7


def test_budget_reserves_before_send_and_refuses_what_does_not_fit() -> None:
    budget = Budget(max_usd=0.01, max_queries=None, per_1k=1.0)
    budget.reserve(6)
    assert not budget.fits(5)
    with pytest.raises(BudgetExceeded, match="--budget"):
        budget.reserve(5)
    budget.reserve(4)
    assert budget.spent_usd == pytest.approx(0.01)
    budget.release(2)
    assert budget.spent_queries == 8


def test_query_cap_is_hard() -> None:
    budget = Budget(max_usd=None, max_queries=10, per_1k=0.0)
    budget.reserve(10)
    with pytest.raises(BudgetExceeded):
        budget.reserve(1)


def test_estimate_charges_only_what_is_not_cached() -> None:
    estimate = Estimate(label_mapping=500, training=10_400, evaluation=200, cached=100, price_per_1k=1.2)
    figures = estimate.as_json()
    assert figures["queries"]["total"] == 11_100
    assert figures["cost_usd"] == pytest.approx(11_000 * 1.2 / 1000)
