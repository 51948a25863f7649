"""The CLI's contract and its error paths: one clear line, exit code 1, never a traceback."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from barapi.cli.app import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output  # one line, the last
    for fragment in fragments:
        assert fragment in errors[0]


def test_version(home: Path) -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("barapi ")


def test_estimate_json_counts_queries_and_dollars_before_spending(home: Path) -> None:
    result = invoke("estimate", "--dataset", "digits", "--iterations", "10", "--q", "4", "--batch-size", "20", "--estimator", "one-sided", "--json", "--price-per-1k", "1.2")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["queries"] == {"label_mapping": 500, "training": 10 * 20 * 5, "evaluation": 200, "cached": 0, "total": 1700}
    assert figures["cost_usd"] == pytest.approx(1700 * 1.2 / 1000)
    assert figures["price_per_1k"] == 1.2
    two_sided = json.loads(invoke("estimate", "--iterations", "10", "--q", "4", "--estimator", "two-sided", "--json").output.strip().splitlines()[-1])
    assert two_sided["queries"]["training"] == 10 * 20 * 9  # 2q + 1 per sample


def test_paper_preset_is_algorithm_1_and_flags_override_it(home: Path) -> None:
    figures = json.loads(invoke("estimate", "--preset", "paper", "--iterations", "3", "--json").output.strip().splitlines()[-1])
    assert figures["queries"]["training"] == 3 * 20 * 26  # q = 25, one-sided, minibatch 20


def test_unknown_run(home: Path) -> None:
    assert_one_line_error(invoke("resume", "ghost"), "no run named 'ghost'", "barapi runs list")
    assert_one_line_error(invoke("runs", "show", "ghost"), "ghost")
    assert_one_line_error(invoke("eval", "ghost"), "ghost")


def test_missing_dataset_folder(home: Path) -> None:
    assert_one_line_error(invoke("estimate", "--dataset", str(home / "nope")), "does not exist")


def test_dataset_with_one_class(home: Path, tmp_path: Path) -> None:
    (tmp_path / "data" / "only").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(tmp_path / "data" / "only" / f"{i}.png")
    assert_one_line_error(invoke("estimate", "--dataset", str(tmp_path / "data")), "at least 2")


def test_image_that_will_not_decode(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for name in ("a", "b"):
        (data / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(data / name / f"{i}.png")
    (data / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    # Every image is read (train and test), so the broken one is found whichever split it lands in.
    assert_one_line_error(invoke("estimate", "--dataset", str(data), "--train-per-class", "2", "--test-size", "10"), "broken.png")


def test_unknown_provider_and_invalid_values(home: Path) -> None:
    assert_one_line_error(invoke("estimate", "--provider", "acme"), "no known price", "--price-per-1k")
    assert_one_line_error(invoke("estimate", "--provider", "acme", "--price-per-1k", "1"), "unknown provider 'acme'")
    assert_one_line_error(invoke("estimate", "--embed-size", "300"), "embed size")
    assert_one_line_error(invoke("estimate", "--mapping", "psychic"), "mapping")


def test_unreachable_server_says_how_to_start_one(home: Path) -> None:
    result = invoke("train", "--base-url", "http://127.0.0.1:9", "--dataset", "digits", "--train-per-class", "2", "--test-size", "4", "--batch-size", "2")
    assert_one_line_error(result, "barapi mock serve")


def test_runs_list_empty_and_json(home: Path) -> None:
    assert "no runs yet" in invoke("runs", "list").output
    assert json.loads(invoke("runs", "list", "--json").output) == []
