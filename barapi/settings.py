"""The settings a user gives, flat (``train_per_class=50``, ``--train-per-class 50``, a TOML key),
generated from the config models' fields (barapi.declare.setting), and how a flat set of them
becomes the nested RunConfig. The Python API, the CLI's flags and ``--config`` files all read
this one list, so a setting is declared once: on its field."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from barapi.config import PRESETS, RunConfig
from barapi.declare import setting
from barapi.errors import ConfigError


class Choices(BaseModel):
    """What a user chooses that is not kept in the run's config itself."""

    preset: str = setting("default", f"Method settings to start from: {', '.join(PRESETS)} (default: what bench/ found best; "
                          "paper: Algorithm 1); the settings given override it.", group="Run")


@dataclass(frozen=True)
class Setting:
    name: str  # the keyword, the TOML key, and the flag with '-' for '_'
    path: tuple[str, ...]  # where it lands in RunConfig (a Choices setting: its own name)
    field: FieldInfo

    def _extra(self, key: str) -> Any:
        return (self.field.json_schema_extra or {}).get(key)  # type: ignore[union-attr]

    @property
    def group(self) -> str:
        return self._extra("group")

    @property
    def help(self) -> str:
        return self.field.description or ""

    @property
    def shapes_run(self) -> bool:
        return bool(self._extra("shapes_run"))

    @property
    def zero_is_none(self) -> bool:
        return bool(self._extra("zero_is_none"))

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def kind(self) -> Any:
        """The value's type without None: int, float, str, bool or list[str]."""
        args = [a for a in typing.get_args(self.field.annotation) if a is not type(None)]
        if isinstance(self.field.annotation, types.UnionType) or typing.get_origin(self.field.annotation) is typing.Union:
            return args[0]
        return self.field.annotation

    def default_for(self, preset: str = "default") -> Any:
        """What the run gets when the setting is not given (a method setting: its preset's value)."""
        if self.path[0] == "method":
            value: Any = PRESETS[preset]
            for part in self.path[1:]:
                value = getattr(value, part)
            return value
        return None if self.field.is_required() else self.field.get_default(call_default_factory=True)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _walk(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[Setting]:
    found = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and "group" in extra:
            found.append(Setting(str(extra.get("flag") or name), (*path, name), field))
        elif (inner := _model_in(field.annotation)) is not None:
            found += _walk(inner, (*path, name))
    return found


SETTINGS: dict[str, Setting] = {s.name: s for s in _walk(Choices) + _walk(RunConfig)}


def nested(given: dict[str, Any]) -> dict[str, Any]:
    """Flat settings → RunConfig's nested fields (the Choices, which the config does not keep, are
    left out); unknown names are refused."""
    tree: dict[str, Any] = {}
    for name, value in given.items():
        if name not in SETTINGS:
            raise ConfigError(f"unknown setting {name!r}: see `barapi train --help` for the settings a run takes")
        chosen = SETTINGS[name]
        if name in Choices.model_fields:
            continue
        node = tree
        for part in chosen.path[:-1]:
            node = node.setdefault(part, {})
        node[chosen.path[-1]] = None if chosen.zero_is_none and value == 0 else value
    return tree


def flag_at(location: tuple) -> str | None:
    """The flag of the setting pydantic's error location names (``('data', 'test_size')`` → --test-size)."""
    location = tuple(str(part) for part in location)
    return next((s.flag for s in SETTINGS.values() if location and s.path[-len(location):] == location), None)
