from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_runs_the_mock_server_on_loopback() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mock = compose["services"]["mock"]
    assert mock["build"] == "."
    assert "127.0.0.1:8080:8080" in mock["ports"]
    assert mock["volumes"][0].split(":")[0] in compose["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["barapi", "mock", "serve"' in dockerfile
    assert "torch==2.13.0" in dockerfile  # the CPU build, never a CUDA resolve
