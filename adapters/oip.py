"""The Open Inference Protocol v2 (KServe, NVIDIA Triton): ``POST /v2/models/{name}[/versions/{v}]/infer``.

The model's metadata (``GET /v2/models/{name}``) names its input (name, datatype, shape, hence
the layout and size) and output. Images go as tensors after the model's preprocessing, which
the server does not do and this adapter must: resize the shorter side to ``--resize-to``
(default size/0.875) with ``--interpolation``, centre crop, [0, 1], then (x − mean)/std for a
float input (a UINT8 input gets the cropped pixels as they are) — or, for a server that decodes
images itself (a Triton ensemble with a preprocessing step), as encoded ``BYTES``
(``--input-format bytes``). Tensors travel in Triton's binary extension unless
``--json-tensors``. The output is read as scores over the model's labels (``--softmax`` for a
model that answers logits); labels come from ``--labels-file``, else Triton's classification
extension (``--labels-from-server``: each answer as "score:index:label"), else the indices.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import httpx
import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from barapi.adapters.provider import Provider, ProviderOptions
from barapi.adapters.http import HttpClassifier, checked_url, retry_after_seconds
from barapi.adapters.parsing import error_message, parse_json
from barapi.classifier import Scores
from barapi.errors import BadInputError, ConfigError, ProviderError, ProviderResponseError, RateLimited
from barapi.method.program import float_canvas

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_MODEL = "efficientnet-lite0"
DEFAULT_CONCURRENCY = 4
DEFAULT_IMAGES_PER_REQUEST = 8
HEADER_LENGTH = "Inference-Header-Content-Length"
CROP_FRACTION = 0.875
NUMPY_TYPES = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "UINT8": np.uint8}
INTERPOLATION = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}


class Preprocessing(BaseModel):
    """What the model expects of an image tensor (the server does none of it)."""

    size: int | None = Field(None, ge=8)  # None: from the metadata's input shape
    resize_to: int | None = Field(None, ge=8)  # None: size / 0.875
    interpolation: Literal["bicubic", "bilinear", "nearest"] = "bicubic"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def tensor(self, image: bytes, size: int, datatype: str, channels_first: bool) -> np.ndarray:
        """Encoded image bytes (resized as 8-bit, as a server would), or a float canvas
        (``barapi.method.program.npy_bytes``: resized in float, nothing rounded) → the model's input."""
        resized = self.resize_to or int(round(size / CROP_FRACTION))
        try:
            canvas = float_canvas(image)
            if canvas is not None:
                pixels = resize_crop_float((canvas + 1) / 2, size, resized, self.interpolation)
            else:
                with Image.open(io.BytesIO(image)) as opened:
                    pixels = np.asarray(resize_crop(opened.convert("RGB"), size, resized, self.interpolation), dtype=np.float32) / 255.0
        except (OSError, ValueError) as error:
            raise BadInputError(f"cannot decode the image to send it as a tensor: {error}", maybe_billed=False) from error
        if datatype == "UINT8":
            pixels = np.rint(np.clip(pixels, 0, 1) * 255)
        else:
            pixels = (pixels - np.float32(self.mean)) / np.float32(self.std)
        return (pixels.transpose(2, 0, 1) if channels_first else pixels).astype(NUMPY_TYPES[datatype])


def resize_crop(image: Image.Image, size: int, resized: int, interpolation: str) -> Image.Image:
    """The shorter side to ``resized``, then the centre ``size`` × ``size``."""
    scale = resized / min(image.size)
    image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), INTERPOLATION[interpolation])
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


def resize_crop_float(pixels: np.ndarray, size: int, resized: int, interpolation: str) -> np.ndarray:
    """``resize_crop`` of a float (H, W, 3) image, channel by channel in PIL's 32-bit float mode:
    the same filter, nothing rounded."""
    channels = [np.asarray(resize_crop(Image.fromarray(pixels[:, :, c].astype(np.float32), mode="F"), size, resized, interpolation)) for c in range(3)]
    return np.stack(channels, axis=2).astype(np.float32)


class OipClassifier(HttpClassifier):
    name = "oip"

    def __init__(
        self,
        client: httpx.Client,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        version: str | None = None,
        preprocessing: Preprocessing | None = None,
        input_format: Literal["tensor", "bytes"] = "tensor",
        canvas: Literal["float", "8-bit"] = "float",
        binary: bool = True,
        softmax: bool = False,
        labels_file: Path | None = None,
        labels_from_server: bool = False,
        images_per_request: int = DEFAULT_IMAGES_PER_REQUEST,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_per_second: float | None = None,
    ) -> None:
        checked_url(base_url)
        super().__init__(client, concurrency=concurrency, rate_per_second=rate_per_second)
        self.model_url = f"{base_url.rstrip('/')}/v2/models/{model}" + (f"/versions/{version}" if version else "")
        self.model_id, self.version = model, version
        self.preprocessing = preprocessing or Preprocessing()
        if input_format == "bytes" and not binary:
            raise ConfigError("encoded images need Triton's binary extension: drop --json-tensors")
        self.input_format, self.binary, self.softmax = input_format, binary, softmax
        # A tensor carries the program unrounded unless told otherwise; encoded images are 8-bit.
        self.canvas_encoding = "float32" if input_format == "tensor" and canvas == "float" else "png8"
        self.labels_from_server = labels_from_server
        self.max_batch = images_per_request
        self._labels = read_labels(labels_file) if labels_file else None
        self._metadata: dict | None = None

    @property
    def cache_scope(self) -> str:
        # Everything that changes the tensor the model sees, or how its answer is read.
        return f"{self.model_url}|{self.input_format}|{self.preprocessing.model_dump_json()}|softmax={self.softmax}"

    @property
    def unreachable_hint(self) -> str:
        return f"Check --base-url (now {self.model_url}); `barapi mock serve` speaks the protocol."

    @property
    def metadata(self) -> dict:
        """The model's metadata (free): its input's name, datatype and shape, its output's name."""
        if self._metadata is None:
            described = self.sender.metadata(self.model_url)
            try:
                described["inputs"][0]["name"], described["outputs"][0]["name"]  # type: ignore[index]
            except (TypeError, KeyError, IndexError):
                raise ConfigError(f"no model metadata at GET {self.model_url}: check --base-url, --model and --model-version") from None
            self._metadata = described  # type: ignore[assignment]
        return self._metadata  # type: ignore[return-value]

    def labels(self) -> list[str] | None:
        """``--labels-file``; else learnt from the first answer (the server's labels, or indices)."""
        return self._labels

    def check(self, images: Sequence[bytes]) -> None:
        """Before anything is reserved or sent: the model's metadata, and an input a tensor can fill."""
        described = self.metadata["inputs"][0]
        if self.input_format == "tensor" and (described["datatype"] not in NUMPY_TYPES or len(described["shape"]) != 4):
            raise ConfigError(f"the model's input is {described['datatype']} {described['shape']}: send encoded images with --input-format bytes")

    def request(self, images: Sequence[bytes]) -> httpx.Request:
        described, output = self.metadata["inputs"][0], self.metadata["outputs"][0]
        data: object = None
        if self.input_format == "bytes":
            datatype, values = "BYTES", b"".join(struct.pack("<I", len(image)) + image for image in images)
            shape: list[int] = [len(images), 1] if len(described["shape"]) == 2 else [len(images)]
        else:
            datatype, shape = described["datatype"], [int(n) for n in described["shape"]]
            channels_first = shape[1] == 3
            size = self.preprocessing.size or (shape[2] if channels_first else shape[1])
            tensor = np.stack([self.preprocessing.tensor(image, size, datatype, channels_first) for image in images])
            shape, values, data = list(tensor.shape), tensor.tobytes(), tensor.ravel().tolist()
        requested = {"name": output["name"], "parameters": {"binary_data": self.binary}}
        if self.labels_from_server:
            requested["parameters"]["classification"] = int(output["shape"][-1])
        tensor_spec = {"name": described["name"], "shape": shape, "datatype": datatype}
        if not self.binary:
            header = json.dumps({"inputs": [tensor_spec | {"data": data}], "outputs": [requested]}).encode()
            return self.sender.client.build_request("POST", f"{self.model_url}/infer", content=header, headers={"Content-Type": "application/json"})
        header = json.dumps({"inputs": [tensor_spec | {"parameters": {"binary_data_size": len(values)}}], "outputs": [requested]}).encode()
        headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
        return self.sender.client.build_request("POST", f"{self.model_url}/infer", content=header + values, headers=headers)

    def read(self, response: httpx.Response) -> list[Scores]:
        length = response.headers.get(HEADER_LENGTH)
        body = response.content
        payload = parse_json(httpx.Response(200, content=body[: int(length)])) if length else parse_json(response)
        try:
            output = payload["outputs"][0]  # type: ignore[index]
            rows = int(output["shape"][0])
            size = (output.get("parameters") or {}).get("binary_data_size")
            raw = body[int(length) : int(length) + int(size)] if length and size is not None else None
        except (TypeError, KeyError, IndexError, ValueError) as error:
            raise ProviderResponseError(f"malformed inference answer: {str(payload)[:200]}") from error
        if output.get("datatype") == "BYTES":  # Triton's classification: "value:index:label" per label asked for
            answers = [dict(classified(s) for s in row) for row in np.array_split(np.asarray(byte_strings(raw, output.get("data")), dtype=object), rows)]
        elif output.get("datatype") in NUMPY_TYPES:
            values = np.frombuffer(raw, dtype=NUMPY_TYPES[output["datatype"]]) if raw is not None else np.asarray(output.get("data"), dtype=np.float64)
            scores = values.astype(np.float64).reshape(rows, -1)
            labels = self._labels or [str(i) for i in range(scores.shape[1])]
            if len(labels) != scores.shape[1]:
                raise ProviderResponseError(f"--labels-file names {len(labels)} labels; the model answers {scores.shape[1]} scores")
            answers = [dict(zip(labels, row.tolist())) for row in scores]
        else:
            raise ProviderResponseError(f"the output is {output.get('datatype')}, not scores")
        return [probabilities(answer, self.softmax) for answer in answers]

    def error(self, response: httpx.Response) -> ProviderError:
        message, status = error_message(response), response.status_code
        common = {"status": status, "body": response.text[:500]}
        if status == 404:
            return ProviderError(f"{message} — is --model {self.model_id!r} served at {self.model_url}?", maybe_billed=False, **common)
        if status == 429:
            return RateLimited(f"throttled: {message}", retry_after=retry_after_seconds(response), maybe_billed=False, **common)
        if status == 400:
            return BadInputError(f"the server refused the request: {message} (check the preprocessing flags against the model)", maybe_billed=False, **common)
        return ProviderError(f"server answered {status}: {message}", maybe_billed=status >= 500, **common)


def probabilities(answer: dict[str, float], softmax: bool) -> Scores:
    """The answer as probabilities: softmax over it for a model that answers logits (exact when
    the answer names every label, as it does unless --labels-from-server asks for fewer)."""
    if not answer:
        raise ProviderResponseError("the answer names no label")
    values = np.array(list(answer.values()), dtype=np.float64)
    if softmax:
        values = np.exp(values - values.max())
        values /= values.sum()
    if not np.all(np.isfinite(values)) or values.min() < -1e-6 or values.max() > 1 + 1e-6:
        raise ProviderResponseError("the output is not probabilities: pass --softmax for a model that answers logits")
    return dict(zip(answer, np.clip(values, 0.0, 1.0).tolist()))


def classified(entry: bytes | str) -> tuple[str, float]:
    """Triton's classification extension: "value:index[:label]" → (label, or the index; the
    output's value there: a probability, or a logit for a model that answers them)."""
    parts = (entry.decode() if isinstance(entry, bytes) else entry).split(":", 2)
    try:
        return parts[2] if len(parts) == 3 else parts[1], float(parts[0])
    except (IndexError, ValueError) as error:
        raise ProviderResponseError(f"unreadable classification {entry!r}") from error


def byte_strings(raw: bytes | None, data: list | None) -> list[bytes | str]:
    if raw is None:
        return list(np.ravel(data or []))
    strings, at = [], 0
    while at < len(raw):
        (length,) = struct.unpack_from("<I", raw, at)
        strings.append(raw[at + 4 : at + 4 + length])
        at += 4 + length
    return strings


def read_labels(path: Path) -> list[str]:
    try:
        labels = [line.strip() for line in path.expanduser().read_text("utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read --labels-file {path}: {error.__class__.__name__}") from None
    if not labels:
        raise ConfigError(f"--labels-file {path} names no labels (one per line)")
    return labels


def triple(text: str | None, default: tuple[float, float, float], flag: str) -> tuple[float, float, float]:
    if text is None:
        return default
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{flag} takes one number or three, comma-separated (e.g. 0.485,0.456,0.406)") from None
    if len(values) not in (1, 3):
        raise ConfigError(f"{flag} takes one number or three, comma-separated (e.g. 0.485,0.456,0.406)")
    return (values * 3)[:3] if len(values) == 1 else tuple(values)  # type: ignore[return-value]


class Options(ProviderOptions):
    base_url: str = Field(DEFAULT_BASE_URL, description="Provider endpoint.")
    model: str = Field(DEFAULT_MODEL, description="Model name at the provider.")
    model_version: str | None = Field(None, description="Model version, if the provider has versions.")
    input_format: Literal["tensor", "bytes"] = Field("tensor", description="tensor (preprocessed here) or bytes (encoded images, for a server that decodes them) (oip).")
    canvas: Literal["float", "8-bit"] = Field("float", description="float: the program reaches the model unrounded (tensors only); 8-bit: rounded, as every image API sees it (oip, local).")
    input_size: int | None = Field(None, ge=8, description="Side of the model's input (default: from its metadata) (oip).")
    resize_to: int | None = Field(None, ge=8, description="Resize the shorter side to this before the centre crop (default: input size / 0.875) (oip).")
    interpolation: Literal["bicubic", "bilinear", "nearest"] = Field("bicubic", description="Resize interpolation: bicubic, bilinear or nearest (oip).")
    mean: str | None = Field(None, description="Per-channel mean on [0, 1] pixels, 1 or 3 numbers (default 0.5; torchvision: 0.485,0.456,0.406) (oip).")
    std: str | None = Field(None, description="Per-channel std, 1 or 3 numbers (default 0.5; torchvision: 0.229,0.224,0.225) (oip).")
    softmax: bool | None = Field(None, description="The model answers logits: apply softmax (oip).")
    labels_file: str | None = Field(None, description="The model's labels, one per line, in output order (oip; default: the indices).")
    labels_from_server: bool | None = Field(None, description="Ask Triton's classification extension for labelled answers (oip).")
    json_tensors: bool | None = Field(None, description="Tensors as JSON, for a server without Triton's binary extension (oip).")
    images_per_request: int = Field(DEFAULT_IMAGES_PER_REQUEST, ge=1, le=256, description="Images per inference request (oip).")

    def model_id(self) -> str:
        return self.model


def build(options: Options, client: httpx.Client, key: str | None) -> OipClassifier:
    preprocessing = Preprocessing(
        size=options.input_size, resize_to=options.resize_to, interpolation=options.interpolation,
        mean=triple(options.mean, (0.5, 0.5, 0.5), "--mean"), std=triple(options.std, (0.5, 0.5, 0.5), "--std"),
    )
    return OipClassifier(
        client, base_url=options.base_url, model=options.model, version=options.model_version, preprocessing=preprocessing,
        input_format=options.input_format, canvas=options.canvas, binary=not options.json_tensors, softmax=bool(options.softmax),
        labels_file=Path(options.labels_file) if options.labels_file else None, labels_from_server=bool(options.labels_from_server),
        images_per_request=options.images_per_request, concurrency=options.concurrency or DEFAULT_CONCURRENCY, rate_per_second=options.rate(None),
    )


# Self-hosted (KServe, Triton): $0 per image unless --price-per-hour / --price-per-1k says what the
# hardware costs.
PROVIDER = Provider(
    "oip", "Open Inference Protocol v2: KServe, NVIDIA Triton", Options, 0.0, build,
    key_source="your own KServe or Triton server, or `barapi mock serve`",
    typical_flags="--base-url http://127.0.0.1:8000 --model NAME --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225",
)
