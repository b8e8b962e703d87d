"""Trigger matching: which S3 keys a file watch takes, webhook path keys, event patterns."""

from __future__ import annotations

import pytest

from boternity.errors import WorkflowError
from boternity.triggers.matching import event_pattern, match_file, normalize_prefix, webhook_path_key

# --------------------------------------------------------------------------- prefixes


@pytest.mark.parametrize(
    ("prefix", "folder"),
    [
        ("inbox", "inbox/"),
        ("/inbox", "inbox/"),
        ("inbox/", "inbox/"),
        ("/inbox/", "inbox/"),
        ("inbox//reports", "inbox/reports/"),
        (" inbox/reports ", "inbox/reports/"),
        ("", ""),
        ("/", ""),
        ("//", ""),
    ],
)
def test_prefixes_are_folders(prefix, folder):
    assert normalize_prefix(prefix) == folder


# --------------------------------------------------------------------------- match_file


@pytest.mark.parametrize("prefix", ["inbox", "/inbox", "inbox/", "/inbox/"])
def test_every_spelling_of_a_folder_watches_the_same_keys(prefix):
    assert match_file("inbox/report.csv", [prefix], [])
    assert match_file("inbox/2026/01/report.csv", [prefix], [])
    assert not match_file("outbox/report.csv", [prefix], [])


def test_a_folder_is_not_a_string_prefix():
    assert not match_file("inbox2/report.csv", ["inbox"], [])
    assert not match_file("inbox.csv", ["inbox"], [])


@pytest.mark.parametrize("prefix", ["", "/"])
def test_empty_prefix_watches_the_whole_bucket(prefix):
    assert match_file("report.csv", [prefix], [])
    assert match_file("deep/down/report.csv", [prefix], [])


def test_any_of_several_prefixes():
    prefixes = ["inbox", "uploads/incoming"]
    assert match_file("uploads/incoming/a.txt", prefixes, [])
    assert match_file("inbox/a.txt", prefixes, [])
    assert not match_file("uploads/a.txt", prefixes, [])


def test_no_prefixes_watch_nothing():
    assert not match_file("inbox/report.csv", [], [])


def test_folder_placeholder_objects_are_not_files():
    # The S3 console's "Create folder" writes an empty object named "inbox/new/".
    assert not match_file("inbox/new/", ["inbox"], [])
    assert not match_file("inbox/", ["inbox"], [])
    assert not match_file("", [""], [])


@pytest.mark.parametrize(
    ("key", "patterns", "expected"),
    [
        ("inbox/report.csv", ["*.csv"], True),
        ("inbox/report.CSV", ["*.csv"], False),  # S3 keys are case-sensitive, so globs are too
        ("inbox/report.json", ["*.csv"], False),
        ("inbox/report.json", ["*.csv", "*.json"], True),
        ("inbox/a1.txt", ["a?.txt"], True),
        ("inbox/a12.txt", ["a?.txt"], False),
        ("inbox/b.txt", ["[a-c].txt"], True),
        ("inbox/d.txt", ["[a-c].txt"], False),
        ("inbox/x.txt", ["[!x].txt"], False),
        ("inbox/y.txt", ["[!x].txt"], True),
        # The pattern may describe the whole key instead of the file name.
        ("inbox/2026/report.csv", ["inbox/2026/*"], True),
        ("inbox/2025/report.csv", ["inbox/2026/*"], False),
        ("inbox/2026/report.csv", ["inbox/*/report.csv"], True),
        # A file-name pattern matches at any depth under the folder.
        ("inbox/2026/01/report.csv", ["report.csv"], True),
        ("inbox/2026/01/report.csv", ["*.csv"], True),
        # fnmatch's '*' crosses '/', so a pattern that is not the name may still match the key.
        ("inbox/a/b/c.csv", ["inbox/*.csv"], True),
    ],
)
def test_patterns_match_the_file_name_or_the_whole_key(key, patterns, expected):
    assert match_file(key, ["inbox"], patterns) is expected


def test_patterns_do_not_widen_the_folders():
    assert not match_file("outbox/report.csv", ["inbox"], ["*.csv", "outbox/*"])


# --------------------------------------------------------------------------- webhook paths


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/github/push", "/github/push"),
        ("github/push", "/github/push"),
        ("/github/push/", "/github/push"),
        ("//github//push//", "/github/push"),
        ("/github/./push", "/github/push"),
        (" /github/push ", "/github/push"),
        ("/GitHub/Push", "/GitHub/Push"),  # paths are case-sensitive
        ("/a.b/c~d_e-f", "/a.b/c~d_e-f"),
        ("/", "/"),
        ("", "/"),
    ],
)
def test_webhook_paths_normalise(path, key):
    assert webhook_path_key(path) == key


def test_normalising_is_idempotent():
    for path in ("github/push/", "//x//y", "/a/./b"):
        once = webhook_path_key(path)
        assert webhook_path_key(once) == once


@pytest.mark.parametrize("path", ["/github/../admin", "/..", "../x", "/a/b/..", "/a/%2e%2e/b", "/a/%2E%2E"])
def test_parent_segments_are_refused(path):
    with pytest.raises(WorkflowError) as info:
        webhook_path_key(path)
    assert info.value.code == "invalid_webhook_path"
    assert info.value.field == "path"


def test_dots_inside_a_segment_are_fine():
    assert webhook_path_key("/v1..2/hook") == "/v1..2/hook"
    assert webhook_path_key("/...") == "/..."


# --------------------------------------------------------------------------- event patterns


def test_event_pattern_matches_source_and_detail_type_exactly():
    assert event_pattern("myapp.orders", "OrderPlaced") == {
        "source": ["myapp.orders"],
        "detail-type": ["OrderPlaced"],
    }


@pytest.mark.parametrize(("source", "event_type"), [("", "OrderPlaced"), ("myapp", ""), ("  ", "x")])
def test_event_pattern_needs_both_parts(source, event_type):
    with pytest.raises(WorkflowError) as info:
        event_pattern(source, event_type)
    assert info.value.code == "invalid_event_trigger"
