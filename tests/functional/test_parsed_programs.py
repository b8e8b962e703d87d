"""The parsed-program cache of the local engine (moto_patches.ParsedPrograms): a definition is parsed
once, each execution gets its own program, and the disk copy is trusted only in a private folder."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("moto")

from boternity.local.moto_patches import ParsedPrograms  # noqa: E402

DEFINITION = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


@pytest.fixture
def parses(monkeypatch):
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    calls: list[str] = []
    original = AmazonStateLanguageParser.parse

    def counting(text: str):
        calls.append(text)
        return original(text)

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting))
    return calls


def test_each_call_returns_a_program_of_its_own_from_one_parse(parses):
    programs = ParsedPrograms()
    first, second, third = (programs.parse(DEFINITION) for _ in range(3))
    assert len(parses) == 1
    assert len({id(first), id(second), id(third)}) == 3
    assert type(first) is type(second)


def test_a_new_process_reads_the_parse_from_a_private_folder(tmp_path, parses):
    folder = tmp_path / "asl"
    ParsedPrograms(directory=str(folder)).parse(DEFINITION)
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert [p.suffix for p in folder.iterdir()] == [".pickle"]
    ParsedPrograms(directory=str(folder)).parse(DEFINITION)   # as the next `boternity run` would
    assert len(parses) == 1


def test_a_folder_others_can_write_to_is_not_trusted(tmp_path, parses):
    folder = tmp_path / "asl"
    ParsedPrograms(directory=str(folder)).parse(DEFINITION)
    os.chmod(folder, 0o777)
    ParsedPrograms(directory=str(folder)).parse(DEFINITION)
    assert len(parses) == 2, "a pickle others could have replaced is never loaded"


def test_a_damaged_pickle_is_parsed_again_and_replaced(tmp_path, parses):
    folder = tmp_path / "asl"
    ParsedPrograms(directory=str(folder)).parse(DEFINITION)
    (pickle_file,) = folder.iterdir()
    pickle_file.write_bytes(b"not a pickle")
    program = ParsedPrograms(directory=str(folder)).parse(DEFINITION)
    assert program is not None and len(parses) == 2


def test_the_process_cache_keeps_at_most_its_budget(parses):
    programs = ParsedPrograms(max_bytes=1)   # no pickle fits: every definition is parsed each time
    programs.parse(DEFINITION)
    programs.parse(DEFINITION)
    assert len(parses) == 2
    roomy = ParsedPrograms()
    for n in range(3):
        roomy.parse(json.dumps({"StartAt": f"P{n}", "States": {f"P{n}": {"Type": "Pass", "End": True}}}))
    assert len(roomy._pickles) == 3 and roomy._size == sum(len(b) for b in roomy._pickles.values())


def test_the_disk_cache_drops_the_least_recently_used_past_its_budget(tmp_path, parses):
    """One file per distinct definition (every edit of a workflow adds one): the folder stays under
    its budget, and a program read recently is kept over one that was not."""
    folder = tmp_path / "asl"
    d0, d1, d2 = (json.dumps({"StartAt": f"P{n}", "States": {f"P{n}": {"Type": "Pass", "End": True}}})
                  for n in range(3))

    def cache() -> ParsedPrograms:   # a new process each time, as each `boternity run` is
        size = max((p.stat().st_size for p in folder.iterdir()), default=0) if folder.exists() else 0
        return ParsedPrograms(directory=str(folder), disk_max_bytes=int(2.5 * size) if size else 1 << 30)

    def path(definition: str):
        return folder / (ParsedPrograms.key(definition) + ".pickle")

    cache().parse(d0)
    cache().parse(d1)
    os.utime(path(d0), (1, 1))
    os.utime(path(d1), (2, 2))
    cache().parse(d0)            # read from disk: d0 is now the most recently used
    assert len(parses) == 2
    cache().parse(d2)            # a third program does not fit: the least recently used goes
    assert sorted(p.name for p in folder.iterdir()) == sorted(path(d).name for d in (d0, d2))
