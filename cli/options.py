"""Options several commands share: the provider flags (from the registry), the run's settings
(generated from the config fields: barapi.settings), --json."""

import inspect
import tomllib
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from barapi.cli.providers import provider_options

from barapi.declare import COMMON_GROUPS, EXPERT_GROUPS
from barapi.settings import SETTINGS, Setting


def read_config_file(ctx: typer.Context, value: Optional[Path]) -> Optional[Path]:
    """--config run.toml: its keys become the command's defaults (click's default_map), so a flag
    typed on the command line still wins. Keys are flag names (`train-per-class` or
    `train_per_class`), at the top level or in tables named after the help panels."""
    if value is None or ctx.resilient_parsing:
        return value
    try:
        document = tomllib.loads(value.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise typer.BadParameter(f"cannot read {value}: {error}") from None
    settings: dict[str, Any] = {}
    for key, item in document.items():
        settings |= item if isinstance(item, dict) else {key: item}
    known = {p.name: p for p in ctx.command.params}
    defaults = {}
    for key, item in settings.items():
        name = key.replace("-", "_")
        if name not in known or name == "config_file":
            raise typer.BadParameter(f"{value}: unknown setting {key!r} (see `barapi {ctx.info_name} --help`)")
        defaults[name] = item
    ctx.default_map = (ctx.default_map or {}) | defaults
    return value


METAVARS = {int: "INT", float: "FLOAT", str: "TEXT"}


def _described(setting: Setting) -> str:
    """The setting's help with the value it takes when not given."""
    default = setting.default_for()
    if "(default" in setting.help or default in (None, [], "") or (isinstance(default, float) and not default):
        return setting.help
    shown = ("on" if default else "off") if isinstance(default, bool) else f"{default:,}" if isinstance(default, int) else default
    return f"{setting.help} (default: {shown})"


def _flag(setting: Setting) -> inspect.Parameter:
    """A run setting as a Typer option; None means not given (the preset's value, or the default)."""
    if setting.name == "preset":
        return inspect.Parameter("preset", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Optional[str], typer.Option(help=_described(setting), rich_help_panel=setting.group)])
    kind = setting.kind
    metavar = "RUN" if setting.name == "candidates_from" else METAVARS.get(kind)
    # Bounds are the config's (pydantic says what is wrong, naming the flag), so the help keeps one
    # narrow column of flags; switches (--x/--no-x) get a panel of their own for the same reason.
    declared = [f"{setting.flag}/--no-{setting.flag[2:]}"] if kind is bool else []
    panel = "Method switches" if kind is bool else setting.group
    option = typer.Option(*declared, help=_described(setting), rich_help_panel=panel, metavar=metavar, show_default=False)
    return inspect.Parameter(setting.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[kind], option])


def _config_flag() -> inspect.Parameter:
    option = typer.Option("--config", help="TOML file of these settings (flags given on the command line win).", is_eager=True,
                          callback=read_config_file, rich_help_panel="Run")
    return inspect.Parameter("config_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[Path], option])


def run_options(**flags: Any) -> dict[str, Any]:
    """Every run setting as typed (generated from the config fields, barapi.settings), common
    groups first: keyword arguments of barapi.api.configure."""
    flags.pop("config_file", None)
    return flags


_ORDER = {group: i for i, group in enumerate((*COMMON_GROUPS, *EXPERT_GROUPS))}
run_options.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [_flag(s) for s in sorted(SETTINGS.values(), key=lambda s: (s.kind is bool, _ORDER[s.group]))] + [_config_flag()]
)


def keyword_only(parameters: Any) -> list[inspect.Parameter]:
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters]


def with_options(builder: Callable[..., Any], into: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command every option of ``builder`` besides its own, declared once (Typer reads
    the signature); the command receives what the builder made as ``into``."""
    shared = keyword_only(inspect.signature(builder).parameters.values())

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = keyword_only(p for p in inspect.signature(command).parameters.values() if p.name != into)

        @wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            built = builder(**{p.name: kwargs.pop(p.name) for p in shared})
            return command(**{into: built}, **kwargs)

        wrapper.__signature__ = inspect.Signature(shared + own)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def with_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """train and estimate: the provider and run flags, joined into one RunConfig as ``config``
    by the library (barapi.api.configure), as a Python caller's keywords are."""

    @wraps(command)
    def joined(provider: dict[str, Any], settings: dict[str, Any], **kwargs: Any) -> Any:
        from barapi.api import configure

        return command(config=configure(**provider, **settings), **kwargs)

    own = [p for p in inspect.signature(command).parameters.values() if p.name != "config"]
    joined.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        keyword_only(
            [
                inspect.Parameter("provider", inspect.Parameter.KEYWORD_ONLY),
                inspect.Parameter("settings", inspect.Parameter.KEYWORD_ONLY),
                *own,
            ]
        )
    )
    return with_options(provider_options, "provider")(with_options(run_options, "settings")(joined))


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")]


def percent(value: float | None, missing: str = "not evaluated (budget)") -> str:
    return missing if value is None else f"{value:.1%}"
