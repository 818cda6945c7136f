"""The service against its own OpenAPI schema with schemathesis (issue 29, class 8): for every operation, bodies
generated from the schema (positive) and against it (negative) are never answered 5xx, and every answer matches
the schema (status, content type, body); data that breaks the schema is refused with a 4xx (413 included, which
schemathesis' ``negative_data_rejection`` does not count, so the test checks that itself).

A bounded budget (``EXAMPLES`` per operation and mode) keeps it under a minute on two cores; the server is real
(uvicorn on 127.0.0.1, a tiny random-weight model).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import checks  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

from isbert.search.serve import Limits, create_app  # noqa: E402

pytestmark = pytest.mark.reliability

EXAMPLES = 50
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tiny_isbert_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service with an index, so that /search answers searches, not only 404."""
    from test_hostile_http import running

    import isbert
    from isbert.search.index import SearchIndex

    model = isbert.load(tiny_isbert_folder, device="cpu")
    root = tmp_path_factory.mktemp("schema")
    (root / "corpus.txt").write_text("".join(f"sentence number {i} about topic {i % 7}\n" for i in range(40)))
    SearchIndex.build(root / "idx", model, str(tiny_isbert_folder), root / "corpus.txt", show_progress=False)
    index = SearchIndex.open(root / "idx")
    app = create_app(model, "tiny", index=index, limits=Limits(max_texts=8, max_chars=200))
    with running(app) as (url, _):
        yield url


def test_the_schema_describes_every_body_and_answer(served: str) -> None:
    schema = schemathesis.openapi.from_url(served + "/openapi.json")
    posts = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in posts if op.method.upper() == "POST"} == {
        "/embed",
        "/similarity",
        "/search",
        "/v1/embeddings",
    }
    for operation in posts:
        if operation.method.upper() == "POST":
            assert operation.body, f"{operation.path}: no request body in the schema"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value)
def test_no_operation_answers_5xx_or_off_its_schema(served: str, mode: GenerationMode, reliability) -> None:
    schema = schemathesis.openapi.from_url(served + "/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not operation.body:
            continue  # GET /health takes nothing that could break a schema

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def answers_by_the_schema(case) -> None:
            reliability.fuzz_case()
            response = case.call_and_validate(base_url=served, checks=CHECKS)
            if mode is GenerationMode.NEGATIVE:  # any 4xx (schemathesis' own check does not count 413 as refusing)
                assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])

        answers_by_the_schema()
