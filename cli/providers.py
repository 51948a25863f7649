"""--provider and its flags, generated from the provider registry (each provider's typed options)."""

import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from barapi.adapters.provider import ProviderOptions
from barapi.api import DEFAULT_PROVIDER

# Provider flags shown in every command's help besides those all providers take.
COMMON = ("base_url", "model")


def _provider_flags() -> list[inspect.Parameter]:
    """--provider, then one flag per option any provider declares (the registry's typed
    options), each saying which providers take it."""
    from barapi.adapters import providers

    fields: dict[str, tuple[Any, list[str]]] = {}
    for chosen in providers().values():
        for name, field in chosen.options.model_fields.items():
            fields.setdefault(name, (field, []))[1].append(chosen.name)
    names = ", ".join(p.name for p in providers().values())
    names += " (its own flags: `barapi providers`)"
    flags = [
        inspect.Parameter(
            "provider",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Optional[str],
                typer.Option(help=f"{names}. (default: {DEFAULT_PROVIDER})", rich_help_panel="Provider"),
            ],
        )
    ]
    for name, (field, owners) in fields.items():
        kind = next(t for t in typing.get_args(field.annotation) or (field.annotation,) if t is not type(None))
        kind = Path if name == "key_file" else str if typing.get_origin(field.annotation) is typing.Literal else kind
        # A provider's own flags are listed by `barapi providers NAME`, not in every command's help.
        shared = len(owners) == len(providers())
        option = typer.Option(help=field.description or "", rich_help_panel="Provider", hidden=not shared and name not in COMMON)
        default = False if kind is bool else None
        flags.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[kind if kind is bool else Optional[kind], option],
            )
        )
    return flags


def provider_options(**flags: Any) -> dict[str, Any]:
    """--provider and the provider flags as typed: keyword arguments of barapi.api."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in flags.items()}


provider_options.__signature__ = inspect.Signature(_provider_flags())  # type: ignore[attr-defined]


def _registry_command() -> None:
    from barapi.cli.app import app, friendly

    @app.command("providers")
    @friendly
    def list_providers(name: Annotated[Optional[str], typer.Argument(help="One provider: its flags in full.")] = None) -> None:
        """The providers barapi reaches, their price and key, and each one's own flags."""
        from barapi.adapters import provider, providers

        for chosen in [provider(name)] if name else providers().values():
            price = f"${chosen.price_per_1k:g}/1k images" if chosen.price_per_1k is not None else "no list price: --price-per-1k or --price-per-hour"
            key = f"key from {chosen.key_variable} or --key-file" if chosen.key_variable else "no key"
            typer.echo(f"{chosen.name}: {chosen.summary} ({price}; {key})")
            for option, field in chosen.options.model_fields.items():
                if name or option not in ProviderOptions.model_fields:
                    typer.echo(f"  --{option.replace('_', '-'):<22} {field.description or ''}")


_registry_command()
