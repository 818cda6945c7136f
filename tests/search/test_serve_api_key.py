"""The service's API key is an exact-match secret: only ``Authorization: Bearer KEY`` with the very same bytes passes.

These tests call the request guard directly with an ASGI scope (the headers as the HTTP server hands them on, after
it has dropped the optional spaces and tabs around a header value), so every variant is checked without a server.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from isbert.search.serve import RequestGuard, Security

VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)  # what a key and a stray suffix are made of
KEYS = st.text(VISIBLE, min_size=8, max_size=40)
EXTRA = st.text(VISIBLE, min_size=1, max_size=8)


def _app(scope, receive, send) -> None:  # never reached: only the guard's verdict is tested
    raise AssertionError("the guard's problem() is tested, not the app")


def refused(key: str | None, authorization: str | None, path: str = "/v1/embeddings") -> bool:
    """Whether the guard answers 401 invalid_api_key to a GET with this Authorization header."""
    headers = [(b"host", b"localhost")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode("latin-1")))
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    problem = RequestGuard(_app, Security(api_key=key)).problem(scope)
    assert problem is None or problem.code == "invalid_api_key", problem
    return problem is not None


@given(key=KEYS)
def test_the_exact_key_passes_and_the_scheme_is_case_insensitive(key: str) -> None:
    assert not refused(key, f"Bearer {key}")
    assert not refused(key, f"bearer {key}")  # RFC 7235: the scheme name is case-insensitive, the token is not


@given(key=KEYS, extra=EXTRA)
@example(key="s3cret-key", extra="x")
def test_a_key_with_a_suffix_or_a_prefix_is_refused(key: str, extra: str) -> None:
    assert refused(key, f"Bearer {key}{extra}")
    assert refused(key, f"Bearer {extra}{key}")
    assert refused(key, f"Bearer {key[:-1]}")  # a prefix of the key
    assert refused(key, f"Bearer {key[1:]}")  # a suffix of the key


@given(key=KEYS)
@example(key="s3cret-key")
def test_a_key_in_another_case_is_refused(key: str) -> None:
    for variant in {key.upper(), key.lower(), key.swapcase()} - {key}:
        assert refused(key, f"Bearer {variant}")


@given(key=KEYS)
def test_a_missing_key_another_scheme_or_an_empty_token_is_refused(key: str) -> None:
    assert refused(key, None)
    assert refused(key, "")
    assert refused(key, "Bearer")
    assert refused(key, "Bearer ")
    assert refused(key, f"Basic {key}")
    assert refused(key, key)  # the key without a scheme
    assert refused(key, f"Bearer{key}")
    assert refused(key, f"Bearer {key} {key}")
    assert not refused(key, None, path="/health")  # the one open path


@pytest.mark.parametrize("space", ["\xa0", "\x85"])
def test_a_key_wrapped_in_non_http_whitespace_is_refused(space: str) -> None:
    key = "s3cret-key"
    assert refused(key, f"Bearer {key}{space}")
    assert refused(key, f"Bearer {space}{key}")


def test_an_empty_configured_key_does_not_open_the_service() -> None:
    assert refused("", None)


@given(key=KEYS, spaces=st.sampled_from([" ", "  ", " \t"]))
@example(key="s3cret-key", spaces="  ")
def test_the_key_is_everything_after_the_first_space_less_http_whitespace(key: str, spaces: str) -> None:
    """The scheme ends at the first space (RFC 7235: only SP follows it): ``Bearer  KEY`` (two spaces) passes, and
    so does a key with a space in it."""
    assert not refused(key, f"Bearer{spaces}{key}")
    assert not refused(f"{key} {key}", f"Bearer {key} {key}")
    assert refused(f"{key} {key}", f"Bearer {key}")
    assert refused(f"{key} {key}", f"Bearer{spaces}{key}")


@pytest.mark.parametrize("key", ["XXXX", "xxxx", "s3cret key"])
@pytest.mark.parametrize("authorization", [None, "", "Basic XXXX", "Token s3cret key", "XXXX", "Digest xxxx"])
def test_no_header_and_no_other_scheme_admits_whatever_the_key(key: str, authorization: str | None) -> None:
    assert refused(key, authorization)
    assert not refused(key, f"Bearer {key}")
