"""`barapi train` / `resume` as real processes against the real model on a loopback server."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from barapi.store import Store
from harness.killsoak import kill_and_resume

pytestmark = pytest.mark.slow

# Small enough to finish in seconds: 30 training images, 12 queries per iteration.
SMALL = ["--dataset", "digits", "--train-per-class", "3", "--test-size", "10", "--iterations", "8",
         "--batch-size", "4", "--q", "2", "--estimator", "one-sided", "--concurrency", "4"]


def barapi(home: Path, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    env = os.environ | {"BARAPI_HOME": str(home)}
    result = subprocess.run([sys.executable, "-m", "barapi.cli", *args], env=env, capture_output=True, text=True, timeout=300, **kwargs)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_train_reprograms_the_real_model_and_reports_json(server_url: str, tmp_path: Path) -> None:
    result = barapi(tmp_path, "train", "--base-url", server_url, *SMALL, "--name", "e2e", "--price-per-1k", "1.2", "--json")
    summary = last_json(result.stdout)
    assert summary["run"] == "e2e" and summary["status"] == "completed" and summary["iterations"] == 8
    # label mapping (30) + 8 × 4 × (2 + 1) training + the readout's closing pass (30) + 10 test
    # images; identical images (digits has a few duplicates) are paid once, then come from the cache.
    assert summary["queries"] == summary["queries_paid"] + summary["queries_cached"] == 30 + 96 + 30 + 10
    assert summary["queries_cached"] < 10
    assert summary["cost_usd"] == pytest.approx(summary["queries_paid"] * 1.2 / 1000)
    # Ten digits, chance 10 %: the 1,000-label model's readout alone reads them far better (7 of 10 here).
    assert summary["test_accuracy"] >= 0.4 and len(summary["program_sha256"]) == 64
    shown = last_json(barapi(tmp_path, "runs", "show", "e2e", "--json").stdout)
    assert shown["program_sha256"] == summary["program_sha256"] and shown["status"] == "completed"
    # Evaluating the same program on the same test split is free: every answer is cached.
    report = last_json(barapi(tmp_path, "eval", "e2e", "--json").stdout)
    assert report["accuracy"] == summary["test_accuracy"] and report["queries_paid"] == 0
    assert sum(map(sum, report["confusion"])) == 10 and set(report["per_class"]) == {str(d) for d in range(10)}
    assert last_json(barapi(tmp_path, "runs", "show", "e2e", "--json").stdout)["status"] == "completed"  # eval left the run alone


def test_same_seed_same_program(server_url: str, tmp_path: Path) -> None:
    a = last_json(barapi(tmp_path / "a", "train", "--base-url", server_url, *SMALL, "--name", "a", "--json").stdout)
    b = last_json(barapi(tmp_path / "b", "train", "--base-url", server_url, *SMALL, "--name", "b", "--json").stdout)
    assert a["program_sha256"] == b["program_sha256"]


def test_human_output_has_progress_and_summary(server_url: str, tmp_path: Path) -> None:
    result = barapi(tmp_path, "train", "--base-url", server_url, *SMALL, "--name", "h")
    assert "iter 8/8" in result.stderr and "ETA" in result.stderr
    assert "run h: completed after 8 iterations" in result.stdout


def test_budget_stops_the_run_without_overspending(server_url: str, tmp_path: Path) -> None:
    # $0.10 at $1/1k buys 100 images: the mapping (≤ 30), as many 12-image iterations as fit,
    # the readout's closing pass (30) and the test set (10): a run stopped by its budget ends measured.
    result = barapi(tmp_path, "train", "--base-url", server_url, *SMALL, "--name", "b", "--price-per-1k", "1.0", "--budget", "0.10", "--yes", "--json")
    summary = last_json(result.stdout)
    assert summary["status"] == "budget_exhausted"
    assert summary["cost_usd"] <= 0.10 < summary["cost_usd"] + 12 * 0.001  # stopped at the first that did not fit
    assert summary["iterations"] < 8 and summary["test_accuracy"] is not None
    assert Store(tmp_path).spent("b") == (summary["queries_paid"], pytest.approx(summary["cost_usd"]))
    # More budget: resume finishes the run, paying only for what it had not bought yet.
    resumed = last_json(barapi(tmp_path, "resume", "b", "--budget", "1.0", "--json").stdout)
    assert resumed["status"] == "completed"
    # 30 + 96 + 30 + 10 as above, and a closing pass (30) and a test (10) at the iteration where
    # the budget stopped it besides the final ones: a run stopped early still ends measured.
    assert resumed["queries"] == 30 + 96 + 30 + 10 + 30 + 10 and resumed["iterations"] == 8


def test_over_budget_estimate_is_refused_without_a_terminal(server_url: str, tmp_path: Path) -> None:
    result = barapi(tmp_path, "train", "--base-url", server_url, *SMALL, "--price-per-1k", "1.0", "--budget", "0.01", check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert "--yes" in result.stderr and "Traceback" not in result.stderr


def test_killed_runs_resume_to_the_same_program_paying_only_for_requests_in_flight(server_url: str, tmp_path: Path) -> None:
    reference = last_json(barapi(tmp_path / "ref", "train", "--base-url", server_url, *SMALL, "--name", "k", "--json").stdout)
    soak = kill_and_resume(tmp_path / "killed", ["--base-url", server_url, *SMALL], "k", seed=1234, min_s=1.5, max_s=4.0)
    assert soak.kills >= 1, "the run finished before any kill: lengthen SMALL"
    assert soak.integrity_failures == 0
    assert soak.final["program_sha256"] == reference["program_sha256"]
    # Each kill loses at most the requests in flight (--concurrency 4, one image each).
    assert reference["queries_paid"] <= soak.final["queries_paid"] <= reference["queries_paid"] + 4 * soak.kills
    assert soak.final["test_accuracy"] == reference["test_accuracy"]


def test_ctrl_c_checkpoints_and_says_how_to_resume(server_url: str, tmp_path: Path) -> None:
    env = os.environ | {"BARAPI_HOME": str(tmp_path)}
    # As a terminal starts it: SIGINT at its default (an xdist worker, or a shell's background job, ignores it, and a child inherits that).
    process = subprocess.Popen([sys.executable, "-m", "barapi.cli", "train", "--base-url", server_url, *SMALL, "--iterations", "400", "--name", "c"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (Store(tmp_path).has_run("c") and Store(tmp_path).load_checkpoint("c")):
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "barapi resume c" in err and "Traceback" not in err
    assert Store(tmp_path).get_run("c").status == "interrupted"


@pytest.mark.parametrize("provider,flags,variable,price", [
    ("clarifai", ["--base-url"], "CLARIFAI_PAT", 1.20),
    ("azure", ["--project-id", "p1", "--iteration", "published", "--endpoint"], "AZURE_CV_PREDICTION_KEY", 2.00),
])
def test_train_through_each_paid_protocol_at_its_price(server_url: str, tmp_path: Path, provider: str, flags: list[str], variable: str, price: float) -> None:
    env = os.environ | {"BARAPI_HOME": str(tmp_path), variable: "mock-key"}
    command = [sys.executable, "-m", "barapi.cli", "train", "--provider", provider, *flags, server_url, *SMALL,
               "--rate-limit", "0", "--name", provider, "--json", "--yes"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["status"] == "completed"
    assert summary["cost_usd"] == pytest.approx(summary["queries_paid"] * price / 1000)
    assert "mock-key" not in result.stdout + result.stderr
    for file in tmp_path.rglob("*"):  # the database, its WAL, everything under BARAPI_HOME
        if file.is_file():
            assert b"mock-key" not in file.read_bytes(), file


def test_missing_key_names_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CLARIFAI_PAT"} | {"BARAPI_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "barapi.cli", "train", "--provider", "clarifai", *SMALL],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "CLARIFAI_PAT" in result.stderr and "Traceback" not in result.stderr


def test_two_runs_share_one_home_at_once(server_url: str, tmp_path: Path) -> None:
    env = os.environ | {"BARAPI_HOME": str(tmp_path)}
    processes = [
        subprocess.Popen([sys.executable, "-m", "barapi.cli", "train", "--base-url", server_url, *SMALL, "--name", name,
                          "--seed", str(seed), "--price-per-1k", "1", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed, name in enumerate(["left", "right"])
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert "locked" not in err
    store = Store(tmp_path)
    assert store.integrity_ok()
    for out in (o for o, _ in outputs):
        summary = last_json(out)
        paid, cost = store.spent(summary["run"])
        assert paid == summary["queries_paid"] and cost == pytest.approx(summary["cost_usd"])
        counts = store.ledger_counts(summary["run"])
        assert counts.get("paid", 0) + counts.get("hit", 0) == summary["queries"]  # no lost ledger row


PORTFOLIO = ["--dataset", "fashion-mnist:T-shirt/top,Shirt", "--train-per-class", "3", "--test-size", "6",
             "--views", "2", "--candidates", "3", "--price-per-1k", "1.2", "--json", "--yes"]


@pytest.mark.parametrize("provider,flags,variable", [
    ("torchserve", ["--model", "coarse-5", "--base-url"], None),
    ("clarifai", ["--model", "coarse-5", "--rate-limit", "0", "--base-url"], "CLARIFAI_PAT"),
    ("azure", ["--project-id", "coarse-5", "--iteration", "published", "--rate-limit", "0", "--endpoint"], "AZURE_CV_PREDICTION_KEY"),
])
def test_a_portfolio_trains_through_each_protocol_and_prices_every_prediction(
    server_url: str, tmp_path: Path, provider: str, flags: list[str], variable: str | None
) -> None:
    env = os.environ | {"BARAPI_HOME": str(tmp_path)} | ({variable: "mock-key"} if variable else {})

    def run(*args: str) -> dict:
        result = subprocess.run([sys.executable, "-m", "barapi.cli", *args], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return last_json(result.stdout)

    estimate = run("estimate", "--provider", provider, *flags, server_url, *PORTFOLIO[:-1])
    assert estimate["queries_per_prediction"] == 2 and estimate["usd_per_1k_predictions"] == pytest.approx(2.4)
    summary = run("train", "--provider", provider, *flags, server_url, *PORTFOLIO, "--name", "p")
    assert (summary["views"], summary["queries_per_prediction"], summary["candidates_paid"]) == (2, 2, 3)
    # The start's answers (the label mapping's), 2 more candidates, then the 6 test images through 2 views.
    # (Azure publishes no labels: its first answer, which tells them, is read again from the cache.)
    assert summary["queries_paid"] == estimate["queries"]["total"] == 6 + 2 * 6 + 2 * 6
    shown = run("runs", "show", "p", "--json")
    assert (shown["views"], shown["program_sha256"]) == (2, summary["program_sha256"])
    report = run("eval", "p", "--json")
    assert report["accuracy"] == summary["test_accuracy"] and report["queries_paid"] == 0  # every view's answer is cached
    # Nothing said of the shape: fitted to the model's 5 labels (Azure's read from a first batch).
    fitted = run("estimate", "--provider", provider, *flags, server_url, *PORTFOLIO[:4], "--price-per-1k", "1.2", "--json")
    assert (fitted["fitted_to_labels"], fitted["queries_per_prediction"], fitted["queries"]["candidates"]) == (5, 8, 47 * 6)
