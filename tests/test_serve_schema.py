"""schemathesis against the web app's own OpenAPI schema: no input makes it answer 5xx."""

import tempfile

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from impasto.serve.app import create_app  # noqa: E402
from impasto.serve.jobs import Limits  # noqa: E402

# No workers: jobs only queue, so the fuzzing stays fast; a big queue, so 503 never comes.
APP = create_app(tempfile.mkdtemp(prefix="impasto-schema-"), workers=0, limits=Limits(queue=10**6))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gives_a_server_error(case):
    case.call_and_validate(checks=[not_a_server_error])
