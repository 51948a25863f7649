"""Keys: only from the environment or a file the user names (mode 600), never written anywhere.
A full train → resume → eval → export → predict with a recognisable fake key, then every byte
under BARAPI_HOME, every exported file, stdout and stderr are searched for it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from barapi.adapters import build_classifier, client_for
from barapi.config import ProviderConfig
from barapi.errors import AuthenticationError, ConfigError
from harness.servers import start_server

pytestmark = pytest.mark.slow

FAKE_KEY = "barapi-FAKE-KEY-7f3a9c1e5d2b4a68"
SMALL = ["--dataset", "digits", "--train-per-class", "3", "--test-size", "10", "--batch-size", "4", "--q", "1",
         "--estimator", "one-sided", "--rate-limit", "0", "--yes"]


def search(haystacks: dict[str, bytes]) -> list[str]:
    return [where for where, data in haystacks.items() if FAKE_KEY.encode() in data]


@pytest.mark.parametrize("source", ["environment", "key file"])
def test_no_command_writes_the_key_anywhere(model_home: Path, imagenet_model, tmp_path: Path, source: str) -> None:
    server, url = start_server(model_home, "--api-key", FAKE_KEY)
    home, export = tmp_path / "home", tmp_path / "export"
    env = {k: v for k, v in os.environ.items() if k != "CLARIFAI_PAT"} | {"BARAPI_HOME": str(home)}
    key_flags: list[str] = []
    if source == "environment":
        env["CLARIFAI_PAT"] = FAKE_KEY
    else:
        key_file = tmp_path / "clarifai.key"
        key_file.write_text(FAKE_KEY + "\n")
        key_file.chmod(0o600)
        key_flags = ["--key-file", str(key_file)]
    image = tmp_path / "seven.png"
    Image.new("L", (8, 8), 200).save(image)
    provider = ["--provider", "clarifai", "--base-url", url, *key_flags]
    commands = [
        ["train", *provider, *SMALL, "--iterations", "2", "--name", "s"],
        ["resume", "s", "--iterations", "3"],
        ["eval", "s", "--json"],
        ["export", "s", "--out", str(export)],
        ["predict", "s", *key_flags, str(image)],
        ["runs", "show", "s", "--json"],
    ]
    outputs: dict[str, bytes] = {}
    try:
        for command in commands:
            result = subprocess.run([sys.executable, "-m", "barapi.cli", *command], env=env, capture_output=True, timeout=300)
            assert result.returncode == 0, result.stderr.decode()
            outputs[f"{command[0]} stdout"], outputs[f"{command[0]} stderr"] = result.stdout, result.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)
    files = {str(p): p.read_bytes() for root in (home, export) for p in root.rglob("*") if p.is_file()}
    assert any(name.endswith("barapi.sqlite") for name in files) and len([n for n in files if n.startswith(str(export))]) >= 5
    assert search(outputs | files) == []


def test_a_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(FAKE_KEY)
    key_file.chmod(0o644)
    config = ProviderConfig(name="clarifai", options={"key_file": str(key_file)})
    with pytest.raises(ConfigError, match="chmod 600") as error:
        build_classifier(config, client_for(config))
    assert FAKE_KEY not in str(error.value)
    key_file.chmod(0o600)
    key_file.write_text("\n")
    with pytest.raises(AuthenticationError, match="empty"):
        build_classifier(config, client_for(config))
    with pytest.raises(ConfigError, match="cannot read key file"):
        missing = ProviderConfig(name="azure", options={"key_file": str(tmp_path / "nope")})
        build_classifier(missing, client_for(missing))


def test_keys_are_refused_over_plain_http_to_other_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARIFAI_PAT", FAKE_KEY)
    config = ProviderConfig(name="clarifai", options={"base_url": "http://api.example.com"})
    with pytest.raises(ConfigError, match="https://") as error:
        build_classifier(config, client_for(config)).predict([b"x"])
    assert FAKE_KEY not in str(error.value)
