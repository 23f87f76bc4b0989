"""pii stage: the output contract of both engines (tokens, counts, per-type columns, spans, drops), config
errors, the engines agreeing on shared types; presidio with a blank spaCy pipeline (recall on planted spans,
Luhn, the pre-check, passes, NER, bad input)."""

from __future__ import annotations

import pyarrow as pa
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curator.stages.pii import PiiConfig, PiiRedact, blank_pipeline_path

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
    return PiiRedact(engine="presidio", cache_dir=cache)


@pytest.fixture(scope="module")
def full(cache):
    return PiiRedact(engine="presidio", cache_dir=cache, precheck=False)


@pytest.fixture(scope="module")
def fast():
    return PiiRedact()


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
    found = {(r.entity_type, r.start, r.end) for r in stage.engine.analyze(text)}
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
    one_pass = PiiRedact(engine="presidio", cache_dir=cache, passes=1)
    assert one_pass.redact(text) == ("+1 (415) 555-0132 <PHONE_NUMBER>", 1)  # presidio alone misses one


def test_precheck_skips_texts_without_candidates(stage):
    assert stage.engine.spans("Only words, no digits and no at sign.") == []
    text = "x " * 500 + "mail bob@example.com now" + " y" * 500
    [(start, end)] = stage.engine.spans(text)
    assert start <= text.index("bob") and end >= text.index("now")
    assert end - start < 300 and text[start - 1] == " " and text[end] == " "


def test_precheck_finds_what_the_full_analysis_finds(stage, full):
    text, _ = crafted()
    long_text = ("lorem ipsum dolor sit amet " * 4000 + text) * 3  # several chunks without the pre-check
    key = lambda rs: sorted((r.entity_type, r.start, r.end) for r in rs)  # noqa: E731
    assert key(stage.engine.analyze(long_text)) == key(full.engine.analyze(long_text))
    assert len(full.engine.spans(long_text)) > 1


def test_entities_and_threshold_are_configurable(cache):
    text = "ann@example.com 212-555-0199 https://example.org/page"
    only_mail = PiiRedact(engine="presidio", cache_dir=cache, entities=["EMAIL_ADDRESS"])
    assert only_mail.redact(text) == ("<EMAIL_ADDRESS> 212-555-0199 https://example.org/page", 1)
    with_url = PiiRedact(engine="presidio", cache_dir=cache, entities=["EMAIL_ADDRESS", "URL"])
    assert with_url.redact(text) == ("<EMAIL_ADDRESS> 212-555-0199 <URL>", 2)
    strict = PiiRedact(engine="presidio", cache_dir=cache, score_threshold=0.9)  # phone scores 0.4
    assert strict.redact(text)[0] == "<EMAIL_ADDRESS> 212-555-0199 https://example.org/page"


def test_ner_model_adds_person_and_location(cache, tmp_path):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": [{"LOWER": "alice"}, {"LOWER": "smith"}]},
                        {"label": "GPE", "pattern": "Paris"}])
    nlp.to_disk(tmp_path / "ner")
    stage = PiiRedact(engine="presidio", cache_dir=cache, spacy_model=str(tmp_path / "ner"))
    assert "PERSON" in stage.entities and "LOCATION" in stage.entities
    text, n = stage.redact("Alice Smith moved to Paris; mail alice@example.com.")
    assert text == "<PERSON> moved to <LOCATION>; mail <EMAIL_ADDRESS>."
    assert n == 3


def test_too_long_text_is_dropped_with_reason(cache):
    stage = PiiRedact(engine="presidio", cache_dir=cache, max_chars=1000)
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
    assert stage.engine.analyze(redacted) == []
    for entity, value in PLANTED:
        if entity in ("EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE"):
            assert value not in redacted
    key = lambda rs: sorted((r.entity_type, r.start, r.end) for r in rs)  # noqa: E731
    assert key(stage.engine.analyze(text)) == key(full.engine.analyze(text))


# ------------------------------------------------------------------------------------ fast engine (default)
def test_fast_is_the_default_and_writes_the_contract(fast):
    assert fast.config.engine == "fast" and fast.config.max_chars is None
    text = "Mail me at ann@example.com or call 212-555-0199; card 4111111111111111, ip 10.1.2.3."
    out = fast(pa.table({"text": [text, "No personal data here.", "", None]}))
    assert out.column("text").to_pylist() == [
        "Mail me at <EMAIL_ADDRESS> or call <PHONE_NUMBER>; card <CREDIT_CARD>, ip <IP_ADDRESS>.",
        "No personal data here.", "", None]
    assert out.column("pii_count").to_pylist() == [4, 0, 0, 0]
    assert out.column("pii_email_address").to_pylist() == [1, 0, 0, 0]
    assert out.column("pii_credit_card").to_pylist() == [1, 0, 0, 0]
    assert out.column("pii_jwt").to_pylist() == [0, 0, 0, 0]
    assert out.column("drop_reason").to_pylist() == [None] * 4
    assert "pii_spans" not in out.column_names
    assert {c.name for c in fast.columns()} == {"text", "pii_count"} | {f"pii_{e.lower()}" for e in fast.entities}


def test_fast_engine_finds_every_crafted_entity_with_redaction_tokens(fast):
    text, spans = crafted()
    out = fast(pa.table({"text": [text]}))
    redacted = out.column("text")[0].as_py()
    assert all(value not in redacted for _, value in PLANTED) and BAD_CARD in redacted
    assert out.column("pii_count").to_pylist() == [len(spans)]
    for entity in ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "US_SSN"):
        assert out.column(f"pii_{entity.lower()}").to_pylist() == [sum(e == entity for e, _, _ in spans)]


def test_spans_are_offsets_into_the_input():
    stage = PiiRedact(keep_spans=True, count_columns=False, entities=["EMAIL_ADDRESS", "PHONE_NUMBER"])
    texts = ["é ann@debian.org and 212-555-0199", "nothing"]
    out = stage(pa.table({"text": texts}))
    assert out.column("pii_spans").to_pylist() == [
        [{"entity": "EMAIL_ADDRESS", "start": 2, "end": 16}, {"entity": "PHONE_NUMBER", "start": 21, "end": 33}], []]
    assert [c for c in out.column_names if c.startswith("pii_")] == ["pii_count", "pii_spans"]


def test_presidio_spans_survive_the_repeat_pass(cache):
    stage = PiiRedact(engine="presidio", cache_dir=cache, keep_spans=True, entities=["PHONE_NUMBER"])
    text = "+1 (415) 555-0132 212-555-0199 ok"  # the second pass finds the first number (see above)
    out = stage(pa.table({"text": [text]}))
    spans = out.column("pii_spans")[0].as_py()
    assert [text[s["start"]:s["end"]] for s in spans] == ["+1 (415) 555-0132", "212-555-0199"]
    assert out.column("pii_phone_number").to_pylist() == [2]


def test_config_refuses_the_other_engines_options():
    with pytest.raises(ValueError, match="cache_dir"):
        PiiConfig(engine="fast", cache_dir="/tmp/x")  # a presidio option with the fast engine
    with pytest.raises(ValueError, match="matcher"):
        PiiConfig(engine="presidio", matcher="re2")
    with pytest.raises(ValueError, match="matcher"):
        PiiConfig(passes=2, matcher="re2")  # presidio by its option, then a fast option: a contradiction
    assert PiiConfig(passes=1).engine == "presidio"  # an old presidio spec keeps its meaning
    with pytest.raises(ValueError, match="PERSON"):
        PiiConfig(entities=["EMAIL_ADDRESS", "PERSON"])
    assert PiiConfig(engine="presidio").max_chars == 1_000_000 and PiiConfig().max_chars is None
    for cfg in (PiiConfig(), PiiConfig(engine="presidio", passes=2)):  # the executor rebuilds from a full dump
        assert PiiConfig(**cfg.model_dump()) == cfg
    assert PiiConfig(engine="presidio", max_chars=None).max_chars is None


def test_fast_options_through_the_stage():
    stage = PiiRedact(keep_domains=["example.com"], ip_ranges="public", entities=["EMAIL_ADDRESS", "IP_ADDRESS"])
    out = stage(pa.table({"text": ["ann@example.com bob@debian.org 192.168.1.2 8.8.8.8"]}))
    assert out.column("text").to_pylist() == ["ann@example.com <EMAIL_ADDRESS> 192.168.1.2 <IP_ADDRESS>"]


def test_fast_stage_bad_input(fast):
    garbage = bytes(range(1, 256)).decode("latin-1") * 20
    rtl = "\u202eاتصل بي على ann@example.com أو 212-555-0199 שלום"
    mixed = "日本語 ann@example.com русский 4111111111111111 ελληνικά"
    fifty_mb = "word " * (10 * 1024 * 1024) + "ann@example.com"
    texts = ["", None, garbage, rtl, mixed, "\x00" * 50, "1" * 200_000, fifty_mb]
    out = fast(pa.table({"text": pa.array(texts, pa.string())}))
    result = out.column("text").to_pylist()
    assert result[:3] == ["", None, garbage]
    assert result[3] == "\u202eاتصل بي على <EMAIL_ADDRESS> أو <PHONE_NUMBER> שלום"
    assert result[4] == "日本語 <EMAIL_ADDRESS> русский <CREDIT_CARD> ελληνικά"
    assert result[5:7] == texts[5:7]
    assert result[7].endswith("word <EMAIL_ADDRESS>") and len(result[7]) == len(fifty_mb)  # no cap (both 15 chars)
    assert out.column("pii_count").to_pylist() == [0, 0, 0, 2, 2, 0, 0, 1]
    capped = PiiRedact(max_chars=1000)(pa.table({"text": ["a@debian.org " * 100, "short a@debian.org"]}))
    assert capped.column("drop_reason").to_pylist() == ["pii_too_long", None]
    assert capped.column("pii_count").to_pylist() == [None, 1]
    assert capped.column("pii_email_address").to_pylist() == [None, 1]


def test_engines_agree_on_the_types_both_support(stage, fast):
    text, spans = crafted()
    presidio_found = {(d.entity, d.start, d.end) for d in stage.engine.detect(text)}
    fast_found = {(d.entity, d.start, d.end) for d in fast.engine.detect(text)}
    assert fast_found == set(spans)
    assert presidio_found == fast_found  # every planted value, the same spans, in both engines
    texts = [text, "Mail me at ann@example.com or call 212-555-0199; card 4111111111111111, ip 10.1.2.3."]
    assert stage(pa.table({"text": texts})).equals(fast(pa.table({"text": texts})).select(
        stage(pa.table({"text": texts})).column_names))
