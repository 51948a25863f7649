"""--provider and its flags, generated from the provider registry (each provider's typed
options), and the price a run is charged at."""

import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from barapi.config import ProviderConfig
from barapi.money import price_per_1k as lookup_price
from barapi.store import Store

DEFAULT_PROVIDER = "torchserve"


@dataclass(frozen=True)
class ProviderChoice:
    """--provider and its options as typed; ``name`` is None when --provider was not given."""

    name: str | None
    options: dict[str, Any]

    def for_new_run(self) -> ProviderConfig:
        return ProviderConfig(name=self.name or DEFAULT_PROVIDER, options=self.options)

    def over(self, stored: ProviderConfig) -> ProviderConfig:
        """A stored run's provider with the flags given now on top (another provider: only them)."""
        if self.name and self.name != stored.name:
            return ProviderConfig(name=self.name, options=self.options)
        return ProviderConfig(name=stored.name, options=stored.options | self.options)


def _provider_flags() -> list[inspect.Parameter]:
    """--provider, then one flag per option any provider declares (the registry's typed
    options), each saying which providers take it."""
    from barapi.adapters import providers

    fields: dict[str, tuple[Any, list[str]]] = {}
    for chosen in providers().values():
        for name, field in chosen.options.model_fields.items():
            fields.setdefault(name, (field, []))[1].append(chosen.name)
    names = ", ".join(f"{p.name} ({p.summary})" for p in providers().values())
    flags = [
        inspect.Parameter(
            "provider",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Optional[str],
                typer.Option(
                    help=f"{names}. (default: {DEFAULT_PROVIDER}; predict: the run's own)", rich_help_panel="Provider"
                ),
            ],
        )
    ]
    for name, (field, owners) in fields.items():
        kind = next(t for t in typing.get_args(field.annotation) or (field.annotation,) if t is not type(None))
        kind = Path if name == "key_file" else str if typing.get_origin(field.annotation) is typing.Literal else kind
        only = "" if len(owners) == len(providers()) else f" [{', '.join(owners)}]"
        option = typer.Option(help=(field.description or "") + only, rich_help_panel="Provider")
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


def provider_options(provider: str | None = None, **flags: Any) -> ProviderChoice:
    """--provider and the flags given; each provider checks its own (typed) on use."""
    if flags.get("key_file"):
        flags["key_file"] = str(Path(flags["key_file"]).expanduser().resolve())
    return ProviderChoice(provider, {k: v for k, v in flags.items() if v is not None and v is not False})


provider_options.__signature__ = inspect.Signature(_provider_flags())  # type: ignore[attr-defined]


def price_of(provider: ProviderConfig, override: float | None = None) -> float:
    from barapi.adapters import model_id, providers

    listed = providers()[provider.name].price_per_1k if provider.name in providers() else None
    return lookup_price(
        provider.name, model_id(provider), listed=listed, override=override, price_file=Store.price_file()
    )
