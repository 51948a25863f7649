"""Bad input, as a table: each case ends in one clear error of the project's own type, and
nothing is lost — no traceback, no paid answer thrown away, nothing paid twice.
(Images in 16-bit, CMYK, palette, RGBA and grey simply work: tests/test_data.py.)"""

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from barapi.cli.app import app
from barapi.errors import ProviderResponseError
from test_adapter_contract import SPECS, Spec, make
from test_torchserve_adapter import RecordingMeter


def png(path: Path, value: int = 90) -> None:
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def two_classes(root: Path) -> Path:
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            png(root / name / f"{i}.png", 40 * i)
    return root


def missing(root: Path) -> Path:
    return root / "nowhere"


def empty(root: Path) -> Path:
    root.mkdir()
    return root


def one_class(root: Path) -> Path:
    (root / "only").mkdir(parents=True)
    for i in range(3):
        png(root / "only" / f"{i}.png")
    return root


def with_file(name: str, content: bytes):
    def build(root: Path) -> Path:
        two_classes(root)
        (root / "b" / name).write_bytes(content)
        return root
    return build


def huge_image(root: Path) -> Path:
    two_classes(root)
    Image.new("1", (12_000, 12_000)).save(root / "b" / "huge.png")  # 144 Mpx: a decompression bomb
    return root


DATASETS = {
    "folder missing": (missing, "does not exist"),
    "folder empty": (empty, "0 class(es)"),
    "one class only": (one_class, "at least 2"),
    "zero-byte image": (with_file("zero.png", b""), "zero.png"),
    "truncated image": (with_file("cut.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"), "cut.png"),
    "non-image file": (with_file("notes.jpg", b"shopping list: milk"), "notes.jpg"),
    "huge image": (huge_image, "huge.png"),
}


@pytest.mark.parametrize("case", sorted(DATASETS))
def test_bad_datasets_give_one_clear_line(case: str, home: Path, tmp_path: Path) -> None:
    build, fragment = DATASETS[case]
    result = CliRunner().invoke(app, ["estimate", "--dataset", str(build(tmp_path / "data")), "--train-per-class", "2", "--test-size", "10"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: ") and fragment in lines[-1], result.output


def body_with(spec: Spec, scores: dict, count: int = 1) -> bytes:
    """A protocol-shaped answer carrying these label scores (NaN written as JSON's NaN token)."""
    if spec.name == "torchserve":
        payload: object = scores
    elif spec.name == "clarifai":
        output = {"status": {"code": 10000}, "data": {"concepts": [{"id": k, "name": k, "value": v} for k, v in scores.items()]}}
        payload = {"status": {"code": 10000, "description": "Ok"}, "outputs": [output] * count}
    elif spec.name == "azure":
        payload = {"predictions": [{"probability": v, "tagId": k, "tagName": k} for k, v in scores.items()]}
    elif spec.name == "huggingface":
        payload = [{"label": k, "score": v} for k, v in scores.items()]
    else:  # oip: Triton's classification extension, "value:index:label"
        labelled = [f"{v}:{i}:{k}" for i, (k, v) in enumerate(scores.items())]
        payload = {"model_name": "m", "outputs": [{"name": "SCORES", "datatype": "BYTES", "shape": [count, len(scores)], "data": labelled * count}]}
    return json.dumps(payload).encode()


WRONG_SCHEMA = {"torchserve": b'{"predictions": [{"label": "alpha", "score": 0.5}]}', "clarifai": b'{"status": {"code": 10000}, "outputs": "none"}',
                "azure": b'{"predictions": {"alpha": 1}}', "huggingface": b'{"alpha": 0.5}', "oip": b'{"outputs": [{"name": "SCORES", "data": [0.5]}]}'}
RESPONSES = {
    "malformed JSON": lambda spec: b'{"alpha": 0.4, "be',
    "wrong schema": lambda spec: WRONG_SCHEMA[spec.name],
    "missing labels": lambda spec: body_with(spec, {}),
    "NaN score": lambda spec: body_with(spec, {"alpha": float("nan")}),
    "negative score": lambda spec: body_with(spec, {"alpha": -0.3}),
    "score above 1": lambda spec: body_with(spec, {"alpha": 1.7}),
    "string score": lambda spec: body_with(spec, {"alpha": "high"}),
    "enormous body": lambda spec: b'{"alpha": 0.5' + b" " * (33 * 1024 * 1024) + b"}",
}


@pytest.mark.parametrize("case", sorted(RESPONSES))
@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_bad_provider_answers_are_refused_counted_once_and_not_cached(spec: Spec, case: str) -> None:
    body = RESPONSES[case](spec)
    calls, meter = [], RecordingMeter()
    with pytest.raises(ProviderResponseError):
        make(spec, lambda request: calls.append(1) or httpx.Response(200, content=body)).predict([b"a"], meter=meter)
    # One attempt, counted as possibly billed, not retried (it would be paid again), no answer kept.
    assert len(calls) == 1 and meter.failed_billed == 1 and meter.paid == 0


def test_a_clarifai_answer_with_the_wrong_number_of_outputs_is_refused() -> None:
    spec = next(s for s in SPECS if s.name == "clarifai")
    meter = RecordingMeter()
    with pytest.raises(ProviderResponseError, match="answered 3"):
        make(spec, lambda request: httpx.Response(200, content=body_with(spec, {"alpha": 0.5}, count=3))).predict([b"a", b"b"], meter=meter)
    assert meter.failed_billed == 2 and meter.paid == 0
