"""Token auth: entries from settings and a tokens file, kept only as SHA-256 digests; `python -m api.auth`."""

from __future__ import annotations

import hashlib

import pytest

from api.auth import Principal, TokenAuth, TokenEntry, TokenError, hash_token, main
from api.settings import Settings


def test_tokens_file_and_settings_are_read_and_only_hashes_are_kept(tmp_path, capsys):
    assert main(["ci-bot"]) == 0
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    token, line = printed["token"], printed["store"]
    assert line == f"ci-bot:sha256:{hashlib.sha256(token.encode()).hexdigest()}" and token not in line
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text(f"# service tokens\n\n{line}\n  # carol left\nalice:plain-secret-1\n")
    auth = TokenAuth.from_settings(Settings(tokens=["bob:bob-secret"], tokens_file=tokens_file))
    assert auth.tokens == [
        TokenEntry("bob", hash_token("bob-secret")),
        TokenEntry("ci-bot", hash_token(token)),
        TokenEntry("alice", hash_token("plain-secret-1")),
    ]
    assert "secret" not in repr(vars(auth))  # nothing in the clear, even for NAME:TOKEN entries
    assert auth.check(token) == Principal("ci-bot") and auth.check("plain-secret-1") == Principal("alice")
    assert auth.check("bob-secret") == Principal("bob")
    for wrong in ("", token[:-1], token + "x", line, hash_token(token).hex(), "bob-secret "):
        assert auth.check(wrong) is None, wrong


@pytest.mark.parametrize("entry", ["a-bare-secret-token", ":secret", "na me:secret", "alice:"])
def test_malformed_entries_are_refused_without_echoing_the_secret(entry):
    with pytest.raises(TokenError) as info:
        TokenAuth([entry])
    assert "secret" not in str(info.value)
    assert str(info.value).endswith("got 'alice' with no token" if entry == "alice:" else "valid NAME: prefix")


def test_admin_role_in_plain_and_hashed_entries(capsys):
    assert main(["root", "--admin"]) == 0
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert printed["store"] == f"root+admin:sha256:{hash_token(printed['token']).hex()}"
    auth = TokenAuth([printed["store"], "alice:alice-secret", "ops+admin:ops-secret"])
    root, alice, ops = auth.check(printed["token"]), auth.check("alice-secret"), auth.check("ops-secret")
    assert (root, alice, ops) == (Principal("root", True), Principal("alice", False), Principal("ops", True))
    assert root.may_access("alice") and alice.may_access("alice") and not alice.may_access("bob")
    assert TokenAuth([], disabled=True).authenticate(None) == Principal("anonymous", True)


@pytest.mark.parametrize("entry", ["alice+root:secret", "alice+:secret", "alice+admin+x:secret"])
def test_unknown_roles_are_refused_without_echoing_the_secret(entry):
    with pytest.raises(TokenError, match="unknown role") as info:
        TokenAuth([entry])
    assert "secret" not in str(info.value)


def test_cli_usage():
    assert main([]) == 2 and main(["bad name"]) == 2 and main(["a", "b", "--admin"]) == 2
