"""Profiles found valid once are not validated again (jsonschema stays unimported on later starts)."""

from __future__ import annotations

import os
import stat
import sys
import types
from pathlib import Path

import pytest

from mcp_sse_proxy.config import ConfigError, Document, FlagValue, load_config
from mcp_sse_proxy.config.memo import FileValidationMemo
from mcp_sse_proxy.config.schema import memo_key

URL = FlagValue("url", "http://127.0.0.1:9/mcp", "--sse-url")


class MemoryMemo:
    def __init__(self) -> None:
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


def test_digests_depend_on_the_values_but_not_on_secrets() -> None:
    assert memo_key({"url": "http://a/"}) != memo_key({"url": "http://b/"})
    assert memo_key({"url": "http://a/", "x": 1}) == memo_key({"x": 1, "url": "http://a/"})
    assert memo_key({"url": "http://a/", "headers": {"K": "one-secret"}}) == memo_key(
        {"url": "http://a/", "headers": {"K": "another"}}
    )
    assert memo_key({"url": "http://u:pw-1@a/?t=tok-1"}) == memo_key({"url": "http://v:pw-2@a/?t=tok-2"})


def test_the_file_memo_persists_privately_and_survives_garbage(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "validated-profiles"
    memo = FileValidationMemo(path)
    digest = "a" * 64
    memo.add(digest)
    again = FileValidationMemo(path)
    assert again.knows(digest) and not again.knows("b" * 64)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert digest in path.read_text()
    path.write_text("not hex at all\n")
    assert not FileValidationMemo(path).knows(digest)  # a damaged file only costs a validation


# ---- issue 18: the memo is no oracle, no way around validation, and never mixes types ------------------------


class AlwaysKnows:
    """A memo that claims every digest: what a planted file would make of it."""

    def knows(self, digest: str) -> bool:
        return True

    def add(self, digest: str) -> None:
        raise AssertionError("nothing new should be remembered")


@pytest.mark.parametrize(
    "setting",
    [
        FlagValue("tls_verify", "false", "--tls-verify"),
        FlagValue("redirects", "same-site", "--redirects"),
        FlagValue("ca_file", "/tmp/ca.pem", "--ca-file"),
        FlagValue("use_env_proxy", "false", "--use-env-proxy"),
    ],
)
def test_security_settings_are_validated_every_time(
    setting: FlagValue, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_jsonschema(monkeypatch)
    with pytest.raises(AssertionError, match="jsonschema was used"):
        load_config([URL, setting], {}, memo=AlwaysKnows())


def test_a_planted_digest_cannot_make_tls_verify_an_integer() -> None:
    documents = [Document("p.yaml", "url: http://127.0.0.1:9/mcp\ntls_verify: 0\n")]
    with pytest.raises(ConfigError, match="tls_verify"):
        load_config([FlagValue("profile", "p", "--profile")], {}, documents, memo=AlwaysKnows())


def test_a_yaml_date_and_the_same_text_do_not_share_a_digest() -> None:
    memo = MemoryMemo()
    quoted = [Document("p.yaml", 'url: http://127.0.0.1:9/mcp\nprefix: "2024-01-01"\n')]
    selection = [FlagValue("profile", "p", "--profile")]
    assert load_config(selection, {}, quoted, memo=memo).profiles[0].prefix == "2024-01-01"
    dated = [Document("p.yaml", "url: http://127.0.0.1:9/mcp\nprefix: 2024-01-01\n")]
    with pytest.raises(ConfigError, match="prefix"):
        load_config(selection, {}, dated, memo=memo)


def test_the_memo_file_holds_no_secret_and_no_salt(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "validated-profiles"
    secret = "hdr-secret-5f0e"
    flags = [URL, FlagValue("headers", f"X-Key: {secret}", "--header")]
    load_config(flags, {}, memo=FileValidationMemo(path))
    text = path.read_text()
    assert secret not in text
    lines = text.split()
    assert len([line for line in lines if len(line) == 64]) == 1  # one digest, nothing else secret-derived
    # Any other value of the secret header is the same profile to the memo: the digest says nothing about it.
    other = [URL, FlagValue("headers", "X-Key: something-else", "--header")]
    asked: list[str] = []

    class Recording(FileValidationMemo):
        def knows(self, digest: str) -> bool:
            asked.append(digest)
            return super().knows(digest)

    load_config(other, {}, memo=Recording(path))
    assert asked and asked[0] in lines


@pytest.mark.skipif(os.name != "posix", reason="POSIX ownership and modes")
@pytest.mark.parametrize("tamper", ["shared-directory", "shared-file", "symlink"])
def test_a_memo_file_others_could_write_is_not_trusted(tmp_path: Path, tamper: str) -> None:
    directory = tmp_path / "cache"
    path = directory / "validated-profiles"
    FileValidationMemo(path).add("c" * 64)
    if tamper == "shared-directory":
        directory.chmod(0o777)
    elif tamper == "shared-file":
        path.chmod(0o666)
    else:
        real = tmp_path / "elsewhere"
        path.rename(real)
        path.symlink_to(real)
    assert not FileValidationMemo(path).knows("c" * 64)


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_writing_does_not_follow_a_planted_temporary_symlink(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    path = directory / "validated-profiles"
    memo = FileValidationMemo(path)
    memo.add("d" * 64)
    target = tmp_path / "victim"
    target.write_text("untouched\n")
    (directory / f".validated-profiles.{os.getpid()}.tmp").symlink_to(target)
    memo.add("e" * 64)
    assert target.read_text() == "untouched\n"
