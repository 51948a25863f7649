"""How a setting a user gives is declared: once, on the config model's field. Flags, keyword
arguments and TOML keys are generated from these fields (barapi.settings)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

# The help panels of `barapi train --help`, common ones first; the method's expert settings last.
COMMON_GROUPS = ("Data", "Budget", "Portfolio", "Run")
EXPERT_GROUPS = ("Program", "Zeroth-order steps", "Label mapping")


def setting(default: Any, help: str, *, group: str, flag: str | None = None, shapes_run: bool = False, zero_is_none: bool = False,
            **constraints: Any) -> Any:
    """A field a user sets, declared once: its flag (``--flag``; the field's name unless given),
    keyword argument and TOML key are generated from it (barapi.settings). ``shapes_run``: giving it
    says what the run's shape is, so the run is not shaped by the API; ``zero_is_none``: 0 on the
    command line means None."""
    extra = {"group": group, "flag": flag, "shapes_run": shapes_run, "zero_is_none": zero_is_none}
    return Field(default, description=help, json_schema_extra=extra, **constraints)
