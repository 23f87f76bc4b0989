"""curator.pii.engine: exact spans per type, decoys untouched, the matchers agree, overlaps, offsets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.pii import ALL_ENTITIES, DEFAULT_ENTITIES, Detection, Engine, Options, get_engine

MATCHERS = ("hyperscan", "re2", "python")
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNTE2MjM5MDIyfQ"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
       "QyNTUxOQAAACDbp4W4XhQ9hZ7m2F8yJxXr3YVnqT2Lh0cC8aL3m7QzQAAAAJg5n2m1OZ9t\n-----END OPENSSH PRIVATE KEY-----")
# (entity, value as planted); each is written into a sentence and must come back with exactly its span
VALUES = [
    ("EMAIL_ADDRESS", "ann.lee+tag@mail.debian.org"), ("EMAIL_ADDRESS", "x9@uni-bonn.de"),
    ("PHONE_NUMBER", "(415) 555-0132"), ("PHONE_NUMBER", "+44 20 7946 0958"), ("PHONE_NUMBER", "030 901820"),
    ("PHONE_NUMBER", "+5511961237704"), ("PHONE_NUMBER", "212.555.0199"),
    ("CREDIT_CARD", "4111 1111 1111 1111"), ("CREDIT_CARD", "3782-822463-10005"), ("CREDIT_CARD", "2221000000000009"),
    ("CREDIT_CARD", "36227206271667"),
    ("IP_ADDRESS", "8.8.4.4"), ("IP_ADDRESS", "10.0.0.0/8"), ("IP_ADDRESS", "2001:db8::1"),
    ("IP_ADDRESS", "fe80::1ff:fe23:4567:890a"), ("IP_ADDRESS", "::ffff:192.0.2.128"),
    ("IBAN_CODE", "GB82 WEST 1234 5698 7654 32"), ("IBAN_CODE", "DE89370400440532013000"),
    ("US_SSN", "536-22-1234"),
    ("URL", "https://www.debian.org/doc/manuals/debian-reference/ch01.en.html"), ("URL", "www.kernel.org/pub"),
    ("AWS_ACCESS_KEY", "AKIA2OGYBAH6QWERTYUI"), ("GITHUB_TOKEN", "ghp_R2d2C3poLuke0Leia1Han2Solo3Chewie4YZ"),
    ("SLACK_TOKEN", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("JWT", JWT), ("PRIVATE_KEY", KEY),
]
DECOYS = ["1.2.3", "5.15.0-91-generic", "2024-03-15", "15.03.2024", "2024-03-15 12:30:45", "12:30:45",
          "da39a3ee5e6b4b0d3255bfef95601890afd80709", "123e4567-e89b-12d3-a456-426614174000", "02110-1301",
          "1999-2004", "4111 1111 1111 1112", "GB00 WEST 1234 5698 7654 32", "999.12.3.4", "1.2.3.4.5",
          "7.4.20941.832", "000-12-3456", "912-34-5678", "AKIAIOSFODNN7EXAMPLE", "ghp_" + "x" * 36,
          "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----", "setup.py", "README.md",
          "20240315", "std::vector", "a :: b", "root@localhost", "user@host.local", "pkg@1.2.3",
          "978-3-16-148410-0", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0"]


def sentence(pieces: list[str]) -> tuple[str, list[tuple[int, int]]]:
    out, spans, pos = [], [], 0
    for i, p in enumerate(pieces):
        lead = ["Write to ", "or call ", "the key is ", "see (", "ok, "][i % 5]
        tail = [". ", ", ", "\n", ") ", " and more.\n"][i % 5]
        out += [lead, p, tail]
        spans.append((pos + len(lead), pos + len(lead) + len(p)))
        pos += len(lead) + len(p) + len(tail)
    return "".join(out), spans


@pytest.fixture(scope="module", params=MATCHERS)
def engine(request):
    return Engine(ALL_ENTITIES, Options(), request.param)


def test_every_type_found_with_its_exact_span(engine):
    text, spans = sentence([v for _, v in VALUES])
    expected = sorted(Detection(s, e, ent) for (ent, _), (s, e) in zip(VALUES, spans, strict=True))
    assert engine.detect(text) == expected


def test_decoys_are_not_touched(engine):
    text, _ = sentence(DECOYS)
    assert [(d.entity, text[d.start:d.end]) for d in engine.detect(text)] == []


def test_aws_secret_key_span_is_the_value():
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzZ1a2B3c4D"
    for lead in ("aws_secret_access_key = ", "AWS_SECRET_ACCESS_KEY=", '"SecretAccessKey": "'):
        text = f"config: {lead}{secret}\n"
        start = text.index(secret)
        assert get_engine(DEFAULT_ENTITIES).detect(text) == [Detection(start, start + 40, "AWS_SECRET_KEY")]
    assert get_engine(DEFAULT_ENTITIES).detect(f"a random {secret} string") == []  # no key name: no finding


def test_matchers_equal_on_mixed_text():
    text, _ = sentence([v for _, v in VALUES] + DECOYS)
    text = ("é" * 3 + "日本 " + text) * 3  # multi-byte characters before and between: offsets are characters
    results = {m: Engine(ALL_ENTITIES, Options(), m).detect(text) for m in MATCHERS}
    assert results["hyperscan"] == results["re2"] == results["python"]
    assert len(results["python"]) == 3 * len(VALUES)
    for d in results["python"]:
        assert text[d.start:d.end] in {v for _, v in VALUES}


def test_redaction_tokens_and_idempotence():
    engine = get_engine(ALL_ENTITIES)
    text = "Mail ann@debian.org, call 212-555-0199; card 4111111111111111 at 10.1.2.3 é"
    out, found = engine.redact(text)
    assert out == "Mail <EMAIL_ADDRESS>, call <PHONE_NUMBER>; card <CREDIT_CARD> at <IP_ADDRESS> é"
    assert [text[d.start:d.end] for d in found] == ["ann@debian.org", "212-555-0199", "4111111111111111", "10.1.2.3"]
    assert engine.detect(out) == []


def test_overlaps_longest_wins_then_family_order():
    engine = get_engine(ALL_ENTITIES)
    text = "see http://lists.debian.org/msg?from=ann@debian.org&ip=8.8.8.8 now"
    assert [d.entity for d in engine.detect(text)] == ["URL"]
    only = get_engine(("EMAIL_ADDRESS", "IP_ADDRESS"))  # without URL the parts are found
    assert [d.entity for d in only.detect(text)] == ["EMAIL_ADDRESS", "IP_ADDRESS"]
    # a 9-digit SSN written with spaces is also phone-shaped: the family listed first (US_SSN) wins a tie
    assert [d.entity for d in engine.detect("id 536 22 1234 here")] == ["US_SSN"]


def test_options():
    text = "mail ann@example.com or bob@debian.org from 192.168.1.2 and 8.8.8.8"
    default = get_engine(ALL_ENTITIES).detect(text)
    assert [text[d.start:d.end] for d in default] == ["ann@example.com", "bob@debian.org", "192.168.1.2", "8.8.8.8"]
    tuned = get_engine(ALL_ENTITIES, Options(public_ip_only=True, keep_domains=("example.com",))).detect(text)
    assert [text[d.start:d.end] for d in tuned] == ["bob@debian.org", "8.8.8.8"]


def test_engine_pickles_by_rebuilding():
    import pickle

    for matcher in MATCHERS:
        engine = get_engine(DEFAULT_ENTITIES, Options(public_ip_only=True), matcher)
        copy = pickle.loads(pickle.dumps(engine))
        assert copy is engine  # same process: the cached engine
        assert copy.detect("mail ann@debian.org from 8.8.8.8 or 10.0.0.1") == engine.detect(
            "mail ann@debian.org from 8.8.8.8 or 10.0.0.1")


def test_engine_is_cached_and_entities_checked():
    assert get_engine(DEFAULT_ENTITIES) is get_engine(DEFAULT_ENTITIES)
    assert set(get_engine(DEFAULT_ENTITIES).entities) == set(DEFAULT_ENTITIES)  # in priority order
    with pytest.raises(ValueError, match="PERSON"):
        Engine(["EMAIL_ADDRESS", "PERSON"])


def test_bad_input():
    engine = get_engine(ALL_ENTITIES)
    garbage = bytes(range(1, 256)).decode("latin-1") * 20
    surrogate = "mail ann@debian.org \udc80 now"  # a lone surrogate (from a lossy decode)
    long_digits = "1" * 200_000 + " 212-555-0199"
    assert engine.detect("") == [] and engine.detect("\x00" * 50) == []
    assert engine.detect(garbage) == []
    assert [d.entity for d in engine.detect(surrogate)] == ["EMAIL_ADDRESS"]
    assert [(d.entity, d.start) for d in engine.detect(long_digits)] == [("PHONE_NUMBER", 200_001)]


WORDS = st.sampled_from(["the", "office", "call", "at", "or", "card", "2024", "7", "12", "ok.", "(", ")", "-", ":",
                         "server", "mail", "+", "1.2", "x@", "::", "v2", "é", "日本"])
PIECES = st.sampled_from([v for _, v in VALUES] + DECOYS)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(WORDS, PIECES), min_size=1, max_size=25), st.sampled_from([" ", "\n", ", ", "", "-"]))
def test_property_matchers_agree_and_redaction_is_complete(pieces, sep):
    text = sep.join(pieces)
    results = [get_engine(ALL_ENTITIES, Options(), m).detect(text) for m in MATCHERS]
    assert results[0] == results[1] == results[2]
    for a, b in zip(results[0], results[0][1:]):
        assert a.end <= b.start  # sorted, no overlap
    redacted, _ = get_engine(ALL_ENTITIES).redact(text)
    assert get_engine(ALL_ENTITIES).detect(redacted) == []
