"""Decontamination: a shared 13-gram is caught, a 12-gram is not; what matched is recorded exactly."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import ValidationError

from curator.stages.decontaminate import Decontaminate, NgramIndex, ngram_hashes

QUESTION = ("Which of the following statements best describes the main reason that the planets of our solar "
            "system move in nearly circular orbits around the sun")  # 25 words: 13 windows
WORDS = QUESTION.split()


def _jsonl(path: Path, records: list, raw_lines: list[str] = ()) -> Path:
    lines = list(raw_lines) + [json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def bench(tmp_path) -> Path:
    # line 0: blank, line 1: not JSON, line 2: too short, line 3: the question
    return _jsonl(tmp_path / "arc_easy.jsonl", [{"question": "too short to matter"}, {"question": QUESTION,
                  "choices": {"text": ["gravity", "magnetism"], "label": ["A", "B"]}, "answerKey": "A"}],
                  raw_lines=["", "{not json"])


def _docs(*texts: str) -> pa.Table:
    return pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": list(texts)})


def test_planted_13gram_is_caught_and_12gram_is_not(bench):
    stage = Decontaminate(benchmarks=[str(bench)])
    planted13 = " ".join(WORDS[5:18])
    planted12 = " ".join(WORDS[5:17])
    out = stage(_docs(
        f"Some web page. {planted13.upper()}!!! And more text after it.",   # case and punctuation differ
        f"Some web page. {planted12} and then different words follow here",
        None,
        "",
    ))
    rows = out.to_pylist()
    assert rows[0]["drop_reason"] == "contaminated"
    assert (rows[0]["contaminated_benchmark"], rows[0]["contaminated_item"], rows[0]["contaminated_ngrams"]) == \
        ("arc_easy", 3, 1)
    for r in rows[1:]:
        assert (r["drop_reason"], r["contaminated_benchmark"], r["contaminated_item"], r["contaminated_ngrams"]) == \
            (None, None, None, 0)
    assert stage.index.skipped == {"bad_json": 1, "shorter_than_ngram": 1}


def test_ngrams_never_span_two_documents(bench):
    stage = Decontaminate(benchmarks=[str(bench)])
    out = stage(_docs("intro " + " ".join(WORDS[:7]), " ".join(WORDS[7:14]) + " outro"))
    assert out.column("drop_reason").to_pylist() == [None, None]
    h, row = ngram_hashes(pa.array(["a b c", "d e f g", None, "h i j"]), 3)
    assert row.tolist() == [0, 1, 1, 3]


def test_flag_mode_keeps_and_counts_every_matching_position(bench):
    stage = Decontaminate(benchmarks=[str(bench)], mode="flag")
    whole = " ".join(WORDS)  # 13 windows; the choices add "gravity magnetism a b": 4 more
    out = stage(_docs(whole + " gravity magnetism a b", whole))
    assert "drop_reason" not in out.column_names
    assert out.column("contaminated_ngrams").to_pylist() == [17, 13]
    assert out.column("contaminated_item").to_pylist() == [3, 3]


def test_min_matches_and_custom_ngram_length(bench):
    stage = Decontaminate(benchmarks=[str(bench)], min_matches=3)
    out = stage(_docs(" ".join(WORDS[0:14]), " ".join(WORDS[0:15])))  # 2 and 3 matching 13-grams
    assert out.column("drop_reason").to_pylist() == [None, "contaminated"]
    assert out.column("contaminated_ngrams").to_pylist() == [2, 3]
    stage8 = Decontaminate(benchmarks=[str(bench)], ngram=8)
    assert stage8(_docs(" ".join(WORDS[3:11]))).column("drop_reason").to_pylist() == ["contaminated"]


def test_fields_names_and_compressed_files(tmp_path):
    gsm = tmp_path / "gsm8k.jsonl.gz"
    item = {"question": "Natalia sold clips to 48 of her friends in April and then she sold half as many",
            "answer": "clips in May so altogether she sold 72 clips in April and May"}
    with gzip.open(gsm, "wt") as f:
        f.write(json.dumps(item) + "\n")
    humaneval = _jsonl(tmp_path / "he.jsonl", [{"prompt": "def add(a, b): return the sum of the two numbers a "
                                                "and b as an integer value please", "test": "ignored"}])
    stage = Decontaminate(benchmarks=[str(gsm), {"path": str(humaneval), "name": "humaneval",
                                                 "fields": ["prompt"]}])
    across = "as many clips in may so altogether she sold 72 clips in april"  # question -> answer boundary
    code = "def add a b return the sum of the two numbers a and b"
    out = stage(_docs(across, code, "the sum of the two numbers"))
    assert out.column("contaminated_benchmark").to_pylist() == ["gsm8k", "humaneval", None]
    only_answer = Decontaminate(benchmarks=[{"path": str(gsm), "fields": ["answer"]}])
    assert only_answer(_docs(across)).column("drop_reason").to_pylist() == [None]


def test_first_item_of_a_shared_ngram_is_recorded(tmp_path):
    a = _jsonl(tmp_path / "a.jsonl", [{"question": QUESTION}])
    b = _jsonl(tmp_path / "b.jsonl", [{"question": "x"}, {"question": QUESTION}])
    index = NgramIndex([("a", str(a), ["question"]), ("b", str(b), ["question"])], 13)
    assert len(index) == 13
    stage = Decontaminate(benchmarks=[str(b), str(a)])
    assert stage(_docs(QUESTION)).column("contaminated_benchmark").to_pylist() == ["b"]


def test_missing_benchmark_file_is_a_config_error(tmp_path):
    with pytest.raises(ValidationError, match="file not found: .*nope.jsonl"):
        Decontaminate(benchmarks=[str(tmp_path / "nope.jsonl")])
    with pytest.raises(ValidationError):
        Decontaminate(benchmarks=[])


def test_is_registered_stateful_map_stage():
    from curator import registry

    cls = registry.get("decontaminate")
    assert cls is Decontaminate and cls.stateful and not cls.is_global


def test_a_benchmark_file_with_a_byte_order_mark_keeps_its_first_item(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"question": QUESTION}).encode() + b"\n")
    assert len(NgramIndex([("bom", str(path), ["question"])], 13)) == 13
    stage = Decontaminate(benchmarks=[str(path)])
    assert stage(_docs(QUESTION)).column("drop_reason").to_pylist() == ["contaminated"]
