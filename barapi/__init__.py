"""barapi: reprogram a black-box image classifier behind a prediction API (BAR, ICML 2020).

The public API lives in ``barapi.api`` (the verbs) and ``barapi.estimator`` (the scikit-learn
classifier); both are re-exported here, loaded on first use so that ``barapi --version`` stays quick.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "BarapiError", "BudgetExceeded", "ConfigError", "Estimate", "ExportedProgram", "Predictions", "ProbeResult", "Progress", "ProviderError",
    "Reprogrammer", "Run", "RunConfig", "RunResult", "configure", "estimate", "load", "probe", "resume", "runs", "train",
]

_HOMES = {"Reprogrammer": "barapi.estimator", "RunConfig": "barapi.config"} | dict.fromkeys(
    ("BarapiError", "BudgetExceeded", "ConfigError", "ProviderError"), "barapi.errors"
)


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'barapi' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_HOMES.get(name, "barapi.api")), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
