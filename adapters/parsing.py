"""Reading provider bodies defensively: anything malformed becomes ProviderResponseError."""

from __future__ import annotations

import json
import math

import httpx

from barapi.classifier import Scores
from barapi.errors import ProviderResponseError


def parse_json(response: httpx.Response) -> object:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as error:
        raise ProviderResponseError(f"response is not JSON: {response.content[:200]!r}", status=response.status_code) from error


def label_scores(payload: object) -> Scores:
    """A JSON object label → probability, checked: finite numbers in [0, 1]."""
    if not isinstance(payload, dict) or not payload:
        raise ProviderResponseError(f"expected a non-empty JSON object of label → probability, got {str(payload)[:200]}")
    scores: Scores = {}
    for label, value in payload.items():
        scores[str(label)] = probability(value, label)
    return scores


def probability(value: object, label: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProviderResponseError(f"score for {label!r} is not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < -1e-6 or number > 1 + 1e-6:
        raise ProviderResponseError(f"score for {label!r} is {number}, not a probability")
    return min(max(number, 0.0), 1.0)


def error_message(response: httpx.Response) -> str:
    try:
        payload = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return response.text[:200] or response.reason_phrase
    if isinstance(payload, dict):
        status = payload.get("status")
        if isinstance(status, dict) and "description" in status:
            return f"{status.get('description')} ({status.get('code')}) {status.get('details', '')}".strip()
        for key in ("message", "error", "description"):
            if key in payload:
                return str(payload[key])
    return str(payload)[:200]
