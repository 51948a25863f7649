"""Whatever a provider answers, an adapter either returns label scores or raises the project's
own error — never a KeyError, TypeError or the like (hypothesis-generated bodies)."""

import json

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from barapi.errors import BarapiError
from test_adapter_contract import SPECS, make

JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(
        ["status", "code", "outputs", "data", "concepts", "name", "value", "predictions", "probability", "tagName", "cat", "description"]
    ) | st.text(max_size=6), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(body=JSON, status=st.sampled_from([200, 200, 200, 400, 401, 404, 429, 500]), spec_index=st.integers(0, len(SPECS) - 1))
def test_any_body_gives_scores_or_a_barapi_error(body, status, spec_index) -> None:
    spec = SPECS[spec_index]
    content = json.dumps(body, allow_nan=True).encode()
    classifier = make(spec, lambda r: httpx.Response(status, content=content, headers={"Retry-After": "0"}))
    try:
        results = classifier.predict([b"a"])
    except BarapiError:
        return
    assert len(results) == 1
    assert all(isinstance(k, str) and 0.0 <= v <= 1.0 for k, v in results[0].items())


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=200), spec_index=st.integers(0, len(SPECS) - 1))
def test_any_bytes_give_scores_or_a_barapi_error(raw: bytes, spec_index: int) -> None:
    try:
        make(SPECS[spec_index], lambda r: httpx.Response(200, content=raw)).predict([b"a"])
    except BarapiError:
        pass
