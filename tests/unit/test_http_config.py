"""An http step's URL and headers are checked when the workflow is loaded, as far as they are
written out: what could never be sent is an error naming the field, not a failure mid-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from boternity.errors import ValidationFailed
from boternity.validate import load_workflow


def _load(tmp_path: Path, config: str) -> None:
    f = tmp_path / "h.yaml"
    f.write_text(f"name: h\nsteps:\n  - id: s\n    type: http\n    config: {config}\n")
    load_workflow(f)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/y", "gopher://127.0.0.1:70/", "example.com/x",
                                 "localhost:8080/x", "javascript:alert(1)", "file:{{ trigger.path }}"])
def test_a_url_that_can_never_be_requested_is_refused_at_load(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        _load(tmp_path, f'{{url: "{url}"}}')
    assert "field 'config.url': an http step requests http:// or https:// URLs only" in str(err.value)


@pytest.mark.parametrize("url", ["https://example.com/x", "HTTP://example.com", "{{ trigger.url }}",
                                 "https://{{ trigger.host }}/x", "{{ trigger.base }}/items"])
def test_urls_that_are_or_may_become_http_load(tmp_path: Path, url: str) -> None:
    _load(tmp_path, f'{{url: "{url}"}}')


@pytest.mark.parametrize(("headers", "message"), [
    ('{"X-A": "a\\r\\nEvil: 1"}', "header 'X-A': a value cannot hold line breaks or NUL"),
    ('{"X-A": "a\\nb"}', "header 'X-A': a value cannot hold line breaks or NUL"),
    ('{"Bad Name": "x"}', "header name 'Bad Name' is not a valid HTTP header name"),
    ('{"X-A:b": "x"}', "header name 'X-A:b' is not a valid HTTP header name"),
])
def test_header_lines_that_could_split_a_request_are_refused_at_load(tmp_path: Path, headers: str,
                                                                      message: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        _load(tmp_path, f'{{url: "https://example.com", headers: {headers}}}')
    assert f"field 'config.headers': {message}" in str(err.value)
