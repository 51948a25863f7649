"""The CLI's contract and its error paths: one clear line, exit code 1, never a traceback."""

import json
from pathlib import Path

import numpy as np
import pytest
from barapi.cli.app import app
from barapi.api import classifier_for as REAL_CLASSIFIER
from PIL import Image
from typer.testing import CliRunner

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
    assert figures["queries"] == {"label_mapping": 500, "training": 10 * 20 * 5, "candidates": 0, "readout": 500, "evaluation": 200, "cached": 0, "total": 2200}
    assert figures["cost_usd"] == pytest.approx(2200 * 1.2 / 1000)
    assert figures["price_per_1k"] == 1.2
    two_sided = json.loads(invoke("estimate", "--iterations", "10", "--q", "4", "--estimator", "two-sided", "--json").output.strip().splitlines()[-1])
    assert two_sided["queries"]["training"] == 10 * 20 * 9  # 2q + 1 per sample
    cma = json.loads(invoke("estimate", "--iterations", "10", "--q", "4", "--optimizer", "cma-es", "--program-basis", "cosine",
                            "--program-resolution", "8", "--visible-size", "196", "--json").output.strip().splitlines()[-1])
    assert cma["queries"]["training"] == 10 * 20 * 9  # W and a population of 2q


def test_hourly_and_unpriced_providers_say_which_price_flag_they_need(home: Path) -> None:
    assert_one_line_error(invoke("estimate", "--throughput", "5"), "--price-per-hour")
    assert_one_line_error(invoke("estimate", "--provider", "huggingface", "--model", "org/m"), "--price-per-1k", "--price-per-hour")


def test_paper_preset_is_algorithm_1_and_flags_override_it(home: Path) -> None:
    figures = json.loads(invoke("estimate", "--preset", "paper", "--iterations", "3", "--json").output.strip().splitlines()[-1])
    assert figures["queries"]["training"] == 3 * 20 * 26  # q = 25, one-sided, minibatch 20


def test_unknown_run(home: Path) -> None:
    assert_one_line_error(invoke("resume", "ghost"), "no run named 'ghost'", "barapi runs list")
    assert_one_line_error(invoke("runs", "show", "ghost"), "ghost")
    assert_one_line_error(invoke("eval", "ghost"), "ghost")
    assert_one_line_error(invoke("export", "ghost", "--out", str(home / "out")), "ghost")


def test_missing_key_names_the_variable_and_the_key_file_option(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_CV_PREDICTION_KEY", raising=False)
    result = invoke("estimate", "--provider", "azure", "--endpoint", "https://x.cognitiveservices.azure.com", "--project-id", "p", "--iteration", "i")
    assert_one_line_error(result, "AZURE_CV_PREDICTION_KEY", "--key-file")


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
    assert_one_line_error(invoke("estimate", "--visible-size", "100"), "embed size 112", "visible")
    assert_one_line_error(invoke("estimate", "--program-basis", "wavelet"), "basis")
    assert_one_line_error(invoke("estimate", "--optimizer", "newton"), "cma-es")
    assert_one_line_error(invoke("estimate", "--mapping", "psychic"), "mapping")


def test_unreachable_server_says_how_to_start_one(home: Path) -> None:
    result = invoke("train", "--base-url", "http://127.0.0.1:9", "--dataset", "digits", "--train-per-class", "2", "--test-size", "4", "--batch-size", "2")
    assert_one_line_error(result, "barapi mock serve")


def test_runs_list_empty_and_json(home: Path) -> None:
    assert "no runs yet" in invoke("runs", "list").output
    assert json.loads(invoke("runs", "list", "--json").output) == []


# -- a trained run through the CLI, on a cheap stand-in provider -----------------------------------
TINY = ("--dataset", "digits", "--train-per-class", "3", "--test-size", "10", "--iterations", "2", "--batch-size", "3",
        "--q", "1", "--labels-per-class", "2", "--price-per-1k", "1.5")


@pytest.fixture
def trained(home: Path, fake_provider: None) -> str:
    result = invoke("train", *TINY, "--name", "tiny", "--json")
    assert result.exit_code == 0, result.output
    return "tiny"


def digit_files(folder: Path, count: int = 3) -> list[Path]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"digit{i}-{digits.target[i]}.png"
        Image.fromarray((digits.images[i] / 16 * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def test_export_writes_a_portable_artifact_and_predict_uses_it_without_the_database(trained: str, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = invoke("export", trained, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"program.npz", "mapping.json", "config.json", "program.png", "program-stretched.png", *(f"example-{i}.png" for i in range(1, 5))}
    mapping = json.loads((out / "mapping.json").read_text())
    assert mapping["classes"] == [str(d) for d in range(10)]
    assert all(len(labels) == 2 for labels in mapping["labels_per_class"].values())
    summary = json.loads(invoke("runs", "show", trained, "--json").output)
    assert mapping["program_sha256"] == summary["program_sha256"]
    with np.load(out / "program.npz") as program:
        assert program["w"].shape == (16, 16, 3) and program["mask"].shape == (224, 224)
        assert int(program["embed_size"]) == 112 and program["mask"][112, 112] == 0 and program["mask"][0, 0] == 1
    example = np.asarray(Image.open(out / "example-1.png"), dtype=float)
    assert example.shape == (224, 224, 3)
    stretched = np.asarray(Image.open(out / "program-stretched.png"), dtype=float)
    assert stretched.min() <= 1 or stretched.max() >= 254  # the largest |P| reaches black or white; grey stays 0
    raw = np.asarray(Image.open(out / "program.png"), dtype=float)
    assert np.array_equal(raw[:112 // 2], example[:112 // 2])  # the frame above the image is the program, as sent

    images = digit_files(tmp_path / "new")
    by_run = [json.loads(line) for line in invoke("predict", trained, *map(str, images), "--json").output.strip().splitlines()]
    # The export works after the database that trained it is gone.
    for leftover in home.iterdir():
        if leftover.name.startswith("barapi.sqlite"):
            leftover.unlink()
    assert not (home / "barapi.sqlite").exists()
    by_export = [json.loads(line) for line in invoke("predict", "--program", str(out), *map(str, images), "--json").output.strip().splitlines()]
    assert [p["class"] for p in by_export] == [p["class"] for p in by_run]
    for prediction in by_export:
        assert prediction["class"] in mapping["classes"]
        assert sum(prediction["scores"].values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction["score"] == max(prediction["scores"].values())


def test_predict_error_paths(trained: str, tmp_path: Path) -> None:
    image = digit_files(tmp_path)[0]
    assert_one_line_error(invoke("predict", trained), "no image to classify")
    assert_one_line_error(invoke("predict", "ghost", str(image)), "ghost")
    assert_one_line_error(invoke("predict", "--program", str(tmp_path), str(image)), "not a barapi export")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    assert_one_line_error(invoke("predict", trained, str(broken)), "broken.jpg")
    assert_one_line_error(invoke("predict", trained, str(tmp_path / "missing.png")), "missing.png")
    assert_one_line_error(invoke("predict", trained, "--budget", "0", str(image)), "budget")


def test_predict_with_a_provider_whose_key_is_missing(trained: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("barapi.api.classifier_for", REAL_CLASSIFIER)  # the real adapters, not the stand-in
    monkeypatch.delenv("CLARIFAI_PAT", raising=False)
    image = digit_files(tmp_path)[0]
    assert_one_line_error(invoke("predict", trained, "--provider", "clarifai", str(image)), "CLARIFAI_PAT")


def test_runs_show_and_compare_plot_loss_and_accuracy(trained: str, tmp_path: Path) -> None:
    assert invoke("train", *TINY, "--name", "other", "--lr", "0.5", "--json").exit_code == 0
    single, overlay = tmp_path / "one.png", tmp_path / "plots" / "two.png"
    assert invoke("runs", "show", trained, "--plot", str(single)).exit_code == 0
    result = invoke("runs", "compare", trained, "other", "--plot", str(overlay))
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output and "other" in result.output
    for path in (single, overlay):
        with Image.open(path) as picture:
            assert picture.format == "PNG" and picture.size[0] > 800
    rows = json.loads(invoke("runs", "compare", trained, "other", "--json").output)
    assert [r["name"] for r in rows] == ["tiny", "other"] and all(r["test_accuracy"] is not None for r in rows)
    assert_one_line_error(invoke("runs", "show", trained, "--plot", str(tmp_path / "plot.txt")), ".png")
    assert_one_line_error(invoke("runs", "compare", trained, "ghost"), "ghost")


def test_a_run_reports_how_far_its_steps_rose_above_their_noise(trained: str) -> None:
    summary = json.loads(invoke("runs", "show", trained, "--json").output)
    # 2 steps of one direction each in a 16×16×3 W: the null band and the exact-derivative figure.
    d = 16 * 16 * 3
    assert summary["step_signal_null_sd"] == pytest.approx((2 * 2 / (1 * d)) ** 0.5, abs=1e-6)
    assert summary["step_signal_expected"] == pytest.approx(2 * 1 / d, abs=1e-6)
    human = invoke("train", *TINY, "--name", "tiny-again")
    assert human.exit_code == 0, human.output
    assert f"the program's steps: signal-to-noise {summary['step_signal']:.2f}" in human.output


def test_a_run_says_which_program_its_closing_pass_kept(trained: str) -> None:
    assert json.loads(invoke("runs", "show", trained, "--json").output)["selection"] is None  # off by default
    assert "the closing pass kept" not in invoke("train", *TINY, "--name", "tiny-plain").output
    guarded = invoke("train", *TINY, "--name", "tiny-guarded", "--keep-better-start")
    assert guarded.exit_code == 0, guarded.output
    selection = json.loads(invoke("runs", "show", "tiny-guarded", "--json").output)["selection"]
    assert selection["kept"] in ("start", "trained")
    assert f"the training answers cross-validate at {selection['start_heldout_accuracy']:.1%} at the start" in guarded.output


def test_the_final_test_accuracy_is_a_point_on_the_curve(trained: str, home: Path) -> None:
    from barapi.store import Store

    metrics = Store().metrics(trained)
    final = json.loads(invoke("runs", "show", trained, "--json").output)["test_accuracy"]
    assert metrics[-1].test_accuracy == final and metrics[-1].iteration == 2


def test_train_options_from_a_toml_file_with_command_line_flags_winning(home: Path, tmp_path: Path) -> None:
    settings = tmp_path / "run.toml"
    settings.write_text('[data]\ntrain-per-class = 7\ntest_size = 30\n\n[method]\nq = 3\nestimator = "one-sided"\niterations = 4\n\n[budget]\nprice-per-1k = 2.0\n')
    figures = json.loads(invoke("estimate", "--config", str(settings), "--iterations", "5", "--json").output.strip().splitlines()[-1])
    assert figures["queries"] == {"label_mapping": 70, "training": 5 * 20 * 4, "candidates": 0, "readout": 70, "evaluation": 30, "cached": 0, "total": 70 + 400 + 70 + 30}
    assert figures["price_per_1k"] == 2.0
    settings.write_text("colour = 'blue'\n")
    result = invoke("estimate", "--config", str(settings))
    assert result.exit_code != 0 and "unknown setting 'colour'" in result.output and "Traceback" not in result.output
    settings.write_text("q = [unclosed\n")
    assert "cannot read" in invoke("estimate", "--config", str(settings)).output


def test_train_help_shows_every_setting_common_groups_first_in_150_lines() -> None:
    from barapi.settings import SETTINGS

    text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "300"}).output
    panels = ("Provider", "Data", "Budget", "Portfolio", "Run", "Program", "Zeroth-order steps", "Label mapping", "Method switches")
    positions = [text.index(f"─ {panel} ") for panel in panels]
    assert positions == sorted(positions)
    assert all(setting.flag in text for setting in SETTINGS.values())
    assert "Images per step. (default: 20)" in text and "Training images per class. (default: 50)" in text
    assert len(runner.invoke(app, ["train", "--help"], env={"COLUMNS": "80"}).output.splitlines()) <= 150


def test_a_reader_that_goes_away_is_not_an_error(home: Path) -> None:
    import os
    import subprocess
    import sys

    # `barapi runs list | head -0`: stdout closes before barapi writes.
    process = subprocess.Popen([sys.executable, "-m", "barapi.cli", "runs", "list"], env=os.environ | {"BARAPI_HOME": str(home)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    assert process.wait(timeout=60) == 0 and process.stderr.read() == b""


def test_eval_shows_progress_to_a_human_and_only_json_to_a_script(trained: str, home: Path) -> None:
    # The whole digits set: mostly images never scored, so the provider is really asked.
    human = invoke("eval", trained, "--dataset", "digits")
    assert human.exit_code == 0, human.output
    assert "evaluating on the test set" in human.output and "accuracy" in human.output
    script = invoke("eval", trained, "--json")
    figures = json.loads(script.output)  # the whole output is one JSON object: no progress mixed in
    assert {"accuracy", "per_class", "confusion", "queries_paid", "cost_usd"} <= set(figures)
