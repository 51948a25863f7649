from __future__ import annotations

import os
from pathlib import Path

import pytest

from barapi.store import Store

# The soak and race harnesses live with the benchmarks, which run them at full size: pytest puts
# bench/ on the path (pyproject's pythonpath), as it does scripts/ for the tables' check.
from harness.servers import start_server


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh BARAPI_HOME per test; the exported model is shared (see model_home)."""
    monkeypatch.setenv("BARAPI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's provider is the fast, deterministic stand-in model (tests/fakes.py)."""
    from fakes import ProjectionModel

    monkeypatch.setattr("barapi.api.classifier_for", lambda config: ProjectionModel())


@pytest.fixture
def store(home: Path) -> Store:
    return Store(home)


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the ONNX export lives for the whole test session (exported once, ~2 s)."""
    shared = os.environ.get("BARAPI_TEST_MODEL_HOME")
    return Path(shared) if shared else tmp_path_factory.mktemp("model-home")


@pytest.fixture(scope="session")
def imagenet_model(model_home: Path):
    pytest.importorskip("onnxruntime", reason="the mock extra is not installed: pip install -e '.[mock]'")
    from barapi.mock.model import ImageNetModel

    return ImageNetModel(home=model_home)


@pytest.fixture(scope="session")
def server_url(imagenet_model, model_home: Path):
    """The real mock server as a separate process on a free loopback port."""
    process, url = start_server(model_home)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL cluster on a loopback port, password-protected (so tests can check
    the password never leaks); skipped with one line where PostgreSQL is not installed."""
    from harness.pgcluster import PostgresMissing, throwaway_cluster

    try:
        with throwaway_cluster() as url:
            yield url
    except PostgresMissing as missing:
        pytest.skip(str(missing))


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> str:
    """A database of its own on the session's cluster."""
    from harness.pgcluster import fresh_database

    return fresh_database(postgres_url)
