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


def test_compose_file_runs_a_shared_store_on_loopback_without_a_password_in_the_repository() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    postgres = compose["services"]["postgres"]
    assert postgres["image"].split(":") == ["postgres", "15"]  # the version the store's tests run against
    assert postgres["ports"] == ["127.0.0.1:5432:5432"]
    assert postgres["volumes"][0].split(":") == ["barapi-store", "/var/lib/postgresql/data"] and "barapi-store" in compose["volumes"]
    environment = postgres["environment"]
    assert environment["POSTGRES_USER"] == environment["POSTGRES_DB"] == "barapi"
    assert environment["POSTGRES_PASSWORD"].startswith("${BARAPI_PG_PASSWORD:?")  # required from the environment, never written here
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    header = (ROOT / "docker-compose.yml").read_text().split("services:")[0]
    assert "BARAPI_STORE=postgresql://barapi:$BARAPI_PG_PASSWORD@127.0.0.1:5432/barapi" in header
