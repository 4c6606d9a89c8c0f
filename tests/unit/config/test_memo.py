"""Profiles found valid once are not validated again (jsonschema stays unimported on later starts)."""

from __future__ import annotations

import os
import stat
import sys
import types
from pathlib import Path

import pytest

from mcp_sse_proxy.config import ConfigError, FlagValue, load_config
from mcp_sse_proxy.config.memo import FileValidationMemo
from mcp_sse_proxy.config.schema import instance_digest

URL = FlagValue("url", "http://127.0.0.1:9/mcp", "--sse-url")


class MemoryMemo:
    def __init__(self) -> None:
        self.salt = b"salt"
        self.digests: set[str] = set()

    def knows(self, digest: str) -> bool:
        return digest in self.digests

    def add(self, digest: str) -> None:
        self.digests.add(digest)


def no_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = types.ModuleType("jsonschema")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("jsonschema was used")

    broken.Draft202012Validator = refuse  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jsonschema", broken)


def test_a_profile_found_valid_is_not_validated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    memo = MemoryMemo()
    first = load_config([URL], {}, memo=memo)
    assert len(memo.digests) == 1
    no_jsonschema(monkeypatch)
    assert load_config([URL], {}, memo=memo) == first
    with pytest.raises(AssertionError, match="jsonschema was used"):  # other values: validated again
        load_config([URL, FlagValue("ping_interval", "5", "--ping-interval")], {}, memo=memo)


def test_an_invalid_profile_is_never_remembered() -> None:
    memo = MemoryMemo()
    bad = [URL, FlagValue("transport", "carrier-pigeon", "--transport")]
    for _ in range(2):
        with pytest.raises(ConfigError):
            load_config(bad, {}, memo=memo)
    assert memo.digests == set()


def test_digests_depend_on_the_salt_and_the_values() -> None:
    assert instance_digest({"url": "a"}, b"1") != instance_digest({"url": "a"}, b"2")
    assert instance_digest({"url": "a"}, b"1") != instance_digest({"url": "b"}, b"1")
    assert instance_digest({"url": "a", "x": 1}, b"1") == instance_digest({"x": 1, "url": "a"}, b"1")


def test_the_file_memo_persists_privately_and_survives_garbage(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "validated-profiles"
    memo = FileValidationMemo(path)
    memo.add("abc")
    again = FileValidationMemo(path)
    assert again.salt == memo.salt and again.knows("abc") and not again.knows("def")
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "abc" in path.read_text()
    path.write_text("not hex at all\n")
    assert not FileValidationMemo(path).knows("abc")  # a damaged file only costs a validation
