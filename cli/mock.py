"""barapi mock serve."""

from typing import Annotated, Optional

import typer
from barapi.cli.app import friendly, mock_app

from barapi.errors import ConfigError
from barapi.store import home_dir


@mock_app.command("serve")
@friendly
def mock_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    model: Annotated[str, typer.Option(help="efficientnet-lite0, -lite1 or -lite2.")] = "efficientnet-lite0",
    topk: Annotated[
        int, typer.Option(help="Labels per answer; 0 = all 1,000 (TorchServe's stock handler uses 5).")
    ] = 0,
    fail_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction of requests answered 500.")] = 0.0,
    throttle_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction answered 429 with Retry-After.")] = 0.0,
    latency_ms: Annotated[float, typer.Option(min=0, help="Added latency per request.")] = 0.0,
    timeout_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Fraction held for --hang-s, then dropped unanswered.")
    ] = 0.0,
    reset_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction whose connection is reset (RST).")] = 0.0,
    truncate_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Fraction answered with a body cut short of its Content-Length.")
    ] = 0.0,
    hang_s: Annotated[float, typer.Option(min=0, help="How long a 'timeout' fault holds the request.")] = 2.0,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the fault injection.")] = None,
    loading_s: Annotated[
        float, typer.Option(min=0, help="Hugging Face's routes answer 503 'model loading' (with estimated_time) for this long after start.")
    ] = 0.0,
    api_key: Annotated[
        str, typer.Option(envvar="BARAPI_MOCK_KEY", help="Key the Clarifai, Azure and Hugging Face routes accept.")
    ] = "mock-key",
    project: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Also serve a project trained on a dataset, as Custom Vision makes one: NAME=DATASET (any --dataset spec; fitted once, cached under BARAPI_HOME). Repeatable."
        ),
    ] = None,
) -> None:
    """Serve a real ImageNet model, and few-label models over it (coarse-2, coarse-5, coarse-10,
    trained projects), over the TorchServe, Clarifai, Azure Custom Vision, Hugging Face and Open Inference
    Protocol (KServe, Triton) APIs."""
    try:
        from barapi.mock.heads import parse_project, trained_project
        from barapi.mock.model import ImageNetModel
        from barapi.mock.server import Faults, MockServer
    except ImportError as error:
        raise ConfigError(f"the mock server needs its extra: pip install 'barapi[mock]' ({error})") from error
    typer.echo(f"loading {model} (exported to ONNX under BARAPI_HOME on first use)…", err=True)
    network = ImageNetModel(model)
    projects = tuple(
        trained_project(*parse_project(spec), network.classify, network.name, network.size, home_dir())
        for spec in project or []
    )
    try:
        server = MockServer(
            host,
            port,
            network,
            topk=topk or None,
            faults=Faults(fail_rate, throttle_rate, latency_ms, seed, timeout_rate, reset_rate, truncate_rate, hang_s),
            api_key=api_key,
            projects=projects,
            loading_s=loading_s,
        )
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}:{port}: {error}; pick another --port") from error
    typer.echo(
        f"serving {', '.join(server.models)} on http://{host}:{server.server_address[1]} (TorchServe, Clarifai v2, Azure Custom Vision, Hugging Face and Open Inference Protocol APIs; GET /models lists the routes; Ctrl-C stops)",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
