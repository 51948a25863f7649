"""What a protocol's routes (``clarifai``, ``openinference``) use of the server and its request
handler: ``barapi.mock.server`` provides both, and imports the routes, never the other way round."""

from __future__ import annotations

from email.message import Message
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from barapi.mock.heads import ServedModel
    from barapi.mock.model import ImageNetModel


class Serving(Protocol):
    api_key: str
    loading_until: float  # Hugging Face's routes answer 503 "loading" until then
    model: ImageNetModel

    def probabilities_of(self, pixels: np.ndarray) -> np.ndarray: ...
    def served(self, name: str) -> ServedModel | None: ...
    def scores(self, data: bytes, model: ServedModel) -> np.ndarray: ...


class Handler(Protocol):
    server: Serving
    headers: Message

    def answered_fault(self, protocol: str) -> bool: ...
    def send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None: ...
    def send_body(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None: ...
