"""`pip install barapi` without extras is enough to reprogram a remote API: no torch, no
onnxruntime, no local server in the environment (the local provider is registered by an entry
point and never imported to list the others)."""

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ("pyproject.toml", "README.md", "barapi", "adapters", "cli", "mock")


@pytest.mark.slow
def test_pip_install_without_extras_trains_through_a_remote_protocol(server_url: str, tmp_path: Path) -> None:
    source = tmp_path / "source"
    for part in PACKAGE:
        origin = ROOT / part
        if origin.is_dir():
            shutil.copytree(origin, source / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(origin, source / part)
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", str(source)], check=True, capture_output=True, timeout=900)
    extras = subprocess.run([python, "-c", "import importlib.util as u; print([m for m in ('torch', 'onnxruntime') if u.find_spec(m)])"],
                            capture_output=True, text=True, check=True)
    assert extras.stdout.strip() == "[]"
    env = os.environ | {"BARAPI_HOME": str(tmp_path / "home")}
    listed = subprocess.run([tmp_path / "venv" / "bin" / "barapi", "providers"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "clarifai:" in listed.stdout and "local:" in listed.stdout, listed.stderr
    result = subprocess.run(
        [tmp_path / "venv" / "bin" / "barapi", "train", "--provider", "torchserve", "--base-url", server_url, "--dataset", "digits:3,8",
         "--train-per-class", "4", "--test-size", "10", "--iterations", "1", "--batch-size", "4", "--q", "1", "--json", "--yes"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["test_accuracy"] is not None and summary["queries_paid"] > 0
    assert not (tmp_path / "venv" / "lib").joinpath(f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages", "torch").exists()
