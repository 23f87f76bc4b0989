"""pii: presidio with a blank spaCy pipeline; recall on planted spans, Luhn, the pre-check, bad input."""

from __future__ import annotations

import pyarrow as pa
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curator.stages.pii import PiiRedact, blank_pipeline_path

EMAILS = ["john.doe@example.com", "a_b-c+tag@sub.example.co.uk", "X9@mail.example.org"]
PHONES = ["+1 (415) 555-0132", "212-555-0199", "+44 20 7946 0958"]
CARDS = ["4111 1111 1111 1111", "5500000000000004", "3782 822463 10005", "6011-1111-1111-1117"]
IPS = ["192.168.1.20", "8.8.8.8", "2001:db8::1", "fe80::1ff:fe23:4567:890a"]
IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "NL91ABNA0417164300"]
SSNS = ["536-22-1234"]
PLANTED = ([("EMAIL_ADDRESS", v) for v in EMAILS] + [("PHONE_NUMBER", v) for v in PHONES]
           + [("CREDIT_CARD", v) for v in CARDS] + [("IP_ADDRESS", v) for v in IPS]
           + [("IBAN_CODE", v) for v in IBANS] + [("US_SSN", v) for v in SSNS])
BAD_CARD = "4111 1111 1111 1112"  # fails the Luhn checksum


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def stage(cache):
    return PiiRedact(cache_dir=cache)


@pytest.fixture(scope="module")
def full(cache):
    return PiiRedact(cache_dir=cache, precheck=False)


def crafted() -> tuple[str, list[tuple[str, int, int]]]:
    parts, spans, pos = [], [], 0
    filler = ["Please write to", "or reach the office at", "The payment used", "Our server is",
              "Wire the money to", "Her number is"]
    for i, (entity, value) in enumerate(PLANTED):
        lead = filler[i % len(filler)] + " "
        parts.append(lead)
        pos += len(lead)
        spans.append((entity, pos, pos + len(value)))
        parts.append(value)
        pos += len(value)
        tail = ". Thanks for reading this long sentence about nothing in particular.\n"
        parts.append(tail)
        pos += len(tail)
    tail = f"A mistyped card {BAD_CARD} is not a card."
    return "".join(parts) + tail, spans


def test_blank_pipeline_is_saved_once(cache):
    path = blank_pipeline_path("en", cache)
    assert (path / "config.cfg").is_file()
    assert blank_pipeline_path("en", cache) == path
    assert spacy.load(path).pipe_names == []  # no component: nothing was downloaded


def test_tldextract_uses_its_bundled_snapshot_only(stage):
    import tldextract.tldextract as tlde

    extractor = tlde.TLD_EXTRACTOR
    assert extractor.suffix_list_urls == () and not extractor._cache.enabled  # no HTTP, no cache files
    assert tlde.extract("mail.example.co.uk").suffix == "co.uk"  # the snapshot knows multi-part suffixes


def test_every_planted_entity_is_found_exactly(stage):
    text, spans = crafted()
    found = {(r.entity_type, r.start, r.end) for r in stage.analyze(text)}
    missing = [(e, text[s:t]) for e, s, t in spans if (e, s, t) not in found]
    assert missing == []
    assert BAD_CARD not in {text[s:t] for _, s, t in found}


def test_redaction_tokens_and_count(stage):
    text, spans = crafted()
    out = stage(pa.table({"text": [text]}))
    redacted = out.column("text")[0].as_py()
    for _, value in PLANTED:
        assert value not in redacted
    assert BAD_CARD in redacted
    for entity in ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "US_SSN"):
        assert f"<{entity}>" in redacted
    assert out.column("pii_count").to_pylist() == [len(spans)]
    assert out.column("drop_reason").to_pylist() == [None]


def test_exact_output_on_a_small_text(stage):
    text = "Mail me at ann@example.com or call 212-555-0199; card 4111111111111111, ip 10.1.2.3."
    out = stage(pa.table({"text": [text, "No personal data here.", ""]}))
    assert out.column("text").to_pylist() == [
        "Mail me at <EMAIL_ADDRESS> or call <PHONE_NUMBER>; card <CREDIT_CARD>, ip <IP_ADDRESS>.",
        "No personal data here.", ""]
    assert out.column("pii_count").to_pylist() == [4, 0, 0]


def test_adjacent_phone_numbers_need_a_second_pass(stage, cache):
    text = "+1 (415) 555-0132 212-555-0199"
    assert stage.redact(text) == ("<PHONE_NUMBER> <PHONE_NUMBER>", 2)
    one_pass = PiiRedact(cache_dir=cache, passes=1)
    assert one_pass.redact(text) == ("+1 (415) 555-0132 <PHONE_NUMBER>", 1)  # presidio alone misses one


def test_precheck_skips_texts_without_candidates(stage):
    assert stage.spans("Only words, no digits and no at sign.") == []
    text = "x " * 500 + "mail bob@example.com now" + " y" * 500
    [(start, end)] = stage.spans(text)
    assert start <= text.index("bob") and end >= text.index("now")
    assert end - start < 300 and text[start - 1] == " " and text[end] == " "


def test_precheck_finds_what_the_full_analysis_finds(stage, full):
    text, _ = crafted()
    long_text = ("lorem ipsum dolor sit amet " * 4000 + text) * 3  # several chunks without the pre-check
    key = lambda rs: sorted((r.entity_type, r.start, r.end) for r in rs)  # noqa: E731
    assert key(stage.analyze(long_text)) == key(full.analyze(long_text))
    assert len(full.spans(long_text)) > 1


def test_entities_and_threshold_are_configurable(cache):
    text = "ann@example.com 212-555-0199 https://example.org/page"
    only_mail = PiiRedact(cache_dir=cache, entities=["EMAIL_ADDRESS"])
    assert only_mail.redact(text) == ("<EMAIL_ADDRESS> 212-555-0199 https://example.org/page", 1)
    with_url = PiiRedact(cache_dir=cache, entities=["EMAIL_ADDRESS", "URL"])
    assert with_url.redact(text) == ("<EMAIL_ADDRESS> 212-555-0199 <URL>", 2)
    strict = PiiRedact(cache_dir=cache, score_threshold=0.9)  # phone scores 0.4
    assert strict.redact(text)[0] == "<EMAIL_ADDRESS> 212-555-0199 https://example.org/page"


def test_ner_model_adds_person_and_location(cache, tmp_path):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": [{"LOWER": "alice"}, {"LOWER": "smith"}]},
                        {"label": "GPE", "pattern": "Paris"}])
    nlp.to_disk(tmp_path / "ner")
    stage = PiiRedact(cache_dir=cache, spacy_model=str(tmp_path / "ner"))
    assert "PERSON" in stage.entities and "LOCATION" in stage.entities
    text, n = stage.redact("Alice Smith moved to Paris; mail alice@example.com.")
    assert text == "<PERSON> moved to <LOCATION>; mail <EMAIL_ADDRESS>."
    assert n == 3


def test_too_long_text_is_dropped_with_reason(cache):
    stage = PiiRedact(cache_dir=cache, max_chars=1000)
    out = stage(pa.table({"text": ["a@b.example.com " * 100, "short a@b.example.com"]}))
    assert out.column("drop_reason").to_pylist() == ["pii_too_long", None]
    assert out.column("pii_count").to_pylist() == [None, 1]


def test_bad_input_no_crash(stage):
    garbage = bytes(range(1, 256)).decode("latin-1") * 20
    rtl = "\u202eاتصل بي على ann@example.com أو 212-555-0199 שלום"
    mixed = "日本語 ann@example.com русский 4111111111111111 ελληνικά"
    fifty_mb = "word " * (10 * 1024 * 1024) + "ann@example.com"
    texts = ["", None, garbage, rtl, mixed, "\x00" * 50, "1" * 200_000, fifty_mb]
    out = stage(pa.table({"text": pa.array(texts, pa.string())}))
    result = out.column("text").to_pylist()
    assert result[:2] == ["", None]
    assert "ann@example.com" not in result[3] and "<EMAIL_ADDRESS>" in result[3]
    assert result[4] == "日本語 <EMAIL_ADDRESS> русский <CREDIT_CARD> ελληνικά"
    assert out.column("drop_reason").to_pylist()[-1] == "pii_too_long"  # over the 1,000,000 cap
    assert out.num_rows == len(texts)


WORDS = st.sampled_from(["the", "office", "call", "at", "or", "card", "id", "2024", "7", "12", "ok.", "(",
                         "room", "on", "floor", "3", "-", "x", "server", "mail"])
PII_VALUES = st.sampled_from([v for _, v in PLANTED] + [BAD_CARD])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(WORDS, PII_VALUES), min_size=1, max_size=30),
       st.sampled_from([" ", "\n", ", ", " and "]))
def test_property_redaction_leaves_no_detected_entity(stage, full, pieces, sep):
    text = sep.join(pieces)
    redacted, _ = stage.redact(text)
    assert stage.analyze(redacted) == []
    for entity, value in PLANTED:
        if entity in ("EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE"):
            assert value not in redacted
    key = lambda rs: sorted((r.entity_type, r.start, r.end) for r in rs)  # noqa: E731
    assert key(stage.analyze(text)) == key(full.analyze(text))
