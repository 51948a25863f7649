"""The `barapi` command. Errors are caught here, at the edge: one line on stderr, exit code 1.

The commands live by group in cli/train.py (estimate, train, resume), cli/results.py (eval,
predict, export), cli/runs.py, cli/pool.py, cli/store.py and cli/mock.py, thin over the core; cli/options.py holds the
options several commands share."""

import importlib
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError

from barapi import __version__
from barapi.errors import BarapiError
from barapi.store import STORE_ENV

app = typer.Typer(
    help="Reprogram a black-box image classifier behind a prediction API to solve a new task.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
runs_app = typer.Typer(help="Runs kept under BARAPI_HOME.", no_args_is_help=True)
mock_app = typer.Typer(
    help="A local server with a real ImageNet model and few-label models over it (needs the mock extra).",
    no_args_is_help=True,
)
pool_app = typer.Typer(help="Budget pools: one dollar limit shared by many runs, processes and machines.", no_args_is_help=True)
store_app = typer.Typer(help="What the store holds, and trimming cached answers you no longer need.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(pool_app, name="pool")
app.add_typer(store_app, name="store")
app.add_typer(mock_app, name="mock")

EXIT_INTERRUPTED = 130


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's errors into one clear line and exit code 1 — never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BarapiError as error:
            raise fail(str(error)) from None
        except ValidationError as error:
            from barapi.settings import flag_at

            first = error.errors()[0]
            where = flag_at(first["loc"]) or ".".join(str(p) for p in first["loc"])
            raise fail(f"invalid {where or 'option'}: {first['msg'].removeprefix('Value error, ')}") from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            # The reader went away (`barapi runs list | head`): nothing left to say, to anyone.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as error:  # noqa: BLE001 - the edge: a bug still gets one line, not locals
            if os.environ.get("BARAPI_DEBUG"):
                raise
            raise fail(
                f"unexpected {type(error).__name__}: {error} (set BARAPI_DEBUG=1 to see the traceback)"
            ) from None

    return wrapper


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"barapi {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version and exit."),
    ] = None,
    store: Annotated[
        Optional[str],
        typer.Option(
            "--store",
            envvar=STORE_ENV,
            show_envvar=False,
            help="Database URL of a shared store (postgresql://USER:PASSWORD@HOST:PORT/DB); default: the SQLite file under BARAPI_HOME. Also BARAPI_STORE.",
        ),
    ] = None,
) -> None:
    if store:
        os.environ[STORE_ENV] = store  # every command opens its Store from the environment


# The command groups register themselves on the apps above, in the order --help lists them.
for _group in ("train", "results", "runs", "pool", "store", "mock"):
    importlib.import_module(f"barapi.cli.{_group}")


def main() -> None:
    app()
