"""curator.pii.evaluate: the labelled set is deterministic and correct; both engines scored on it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import zstandard

from curator.pii import ALL_ENTITIES, Detection, Options, get_engine
from curator.pii.evaluate import GENERATORS, Label, plant, score
from curator.pii.validate import email_ok, iban_mod97, is_card, phone_spans

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "sample.jsonl.zst"
KEEP = ("example.com", "example.org", "example.net")


@pytest.fixture(scope="module")
def base() -> list[str]:
    with open(SAMPLE, "rb") as fh:
        reader = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh), encoding="utf-8")
        return [json.loads(line)["text"] for line in reader if line.strip()]


@pytest.fixture(scope="module")
def evalset(base):
    return plant(base, seed=7, example_domains=True)


def test_plant_is_deterministic_and_keeps_the_documents(base, evalset):
    again = plant(base, seed=7, example_domains=True)
    assert again.docs == evalset.docs and again.labels == evalset.labels
    assert plant(base[:20], seed=8).docs != plant(base[:20], seed=7).docs
    for d, text in enumerate(evalset.docs):  # removing the insertions gives the original back
        cuts = [(s, e) for doc, s, e in evalset.inserted if doc == d]
        labels = [lb for lb in evalset.labels if lb.doc == d]
        assert len(cuts) == len(labels) >= 2
        assert all(any(s <= lb.start and lb.end <= e for s, e in cuts) for lb in labels)
        kept, pos = [], 0
        for s, e in sorted(cuts):
            kept.append(text[pos:s])
            pos = e
        assert "".join(kept) + text[pos:] == base[d]


def test_labels_hold_valid_values(evalset):
    seen = {lb.entity for lb in evalset.labels}
    assert seen == set(GENERATORS) | {None}  # every type planted, and decoys
    regions = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")
    for lb in evalset.labels:
        value = evalset.docs[lb.doc][lb.start:lb.end]
        assert value and value == value.strip()
        if lb.entity == "CREDIT_CARD":
            assert is_card(value)
        elif lb.entity == "IBAN_CODE":
            assert iban_mod97(value.replace(" ", ""))
        elif lb.entity == "PHONE_NUMBER":
            assert phone_spans(value, 0, len(value), regions) == [(0, len(value))], value
        elif lb.entity == "EMAIL_ADDRESS":
            assert email_ok(value)
        elif lb.kind == "luhn_invalid_card":
            assert not is_card(value)
        elif lb.kind == "bad_iban":
            assert not iban_mod97(value.replace(" ", ""))


def test_score_counts_by_hand():
    docs = ["a 4111111111111111 b 1.2.3 c ann@debian.org"]
    labels = [Label(0, 2, 18, "CREDIT_CARD", "visa"), Label(0, 21, 26, None, "version"),
              Label(0, 29, 43, "EMAIL_ADDRESS", "email")]
    from curator.pii.evaluate import EvalSet

    es = EvalSet(docs, labels)
    dets = [[Detection(2, 18, "CREDIT_CARD"), Detection(21, 26, "PHONE_NUMBER"), Detection(29, 35, "EMAIL_ADDRESS")]]
    scores, touched = score(es, dets, ["CREDIT_CARD", "EMAIL_ADDRESS", "PHONE_NUMBER"])
    assert (scores["CREDIT_CARD"].found, scores["CREDIT_CARD"].exact, scores["CREDIT_CARD"].precision) == (1, 1, 1.0)
    assert (scores["EMAIL_ADDRESS"].found, scores["EMAIL_ADDRESS"].redacted) == (0, 0)  # covers only a part
    assert scores["EMAIL_ADDRESS"].precision == 0.0 and scores["EMAIL_ADDRESS"].missed == ["email: 'ann@debian.org'"]
    assert (scores["PHONE_NUMBER"].on_decoys, scores["PHONE_NUMBER"].precision) == (1, 0.0)
    assert touched == {"version": 1}


def test_fast_engine_on_the_evaluation_set(evalset):
    engine = get_engine(ALL_ENTITIES, Options(keep_domains=KEEP))
    scores, touched = score(evalset, [engine.detect(d) for d in evalset.docs], ALL_ENTITIES)
    for entity, sc in scores.items():
        assert sc.planted >= 20, entity
        assert sc.recall == 1.0, (entity, sc.missed[:5])
        assert sc.exact == sc.planted, entity
        assert sc.precision >= 0.98, entity
    assert touched == {}  # no decoy touched, example.com addresses included


def test_engines_on_the_types_both_support(base):
    """presidio (slow: a small sample) against the fast engine: recall at least presidio's on every type."""
    from curator.stages.pii import DEFAULT_ENTITIES, PiiRedact

    shared = list(DEFAULT_ENTITIES) + ["URL"]
    es = plant([t[:2000] for t in base[:24]], seed=3, entities=shared)
    presidio = PiiRedact(engine="presidio", entities=shared).engine
    fast = get_engine(tuple(shared))
    p_scores, p_touched = score(es, [presidio.redact(d)[1] for d in es.docs], shared)
    f_scores, f_touched = score(es, [fast.detect(d) for d in es.docs], shared)
    for entity in shared:
        assert f_scores[entity].planted == p_scores[entity].planted > 0
        assert f_scores[entity].found >= p_scores[entity].found, entity
        assert (f_scores[entity].precision or 0) >= (p_scores[entity].precision or 0), entity
    assert sum(f_touched.values()) <= sum(p_touched.values())
