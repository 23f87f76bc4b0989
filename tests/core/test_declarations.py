"""Map stages declare exactly what they do: run on crafted documents, each stage adds or rewrites exactly the
columns ``columns()`` names, and sets only drop reasons that ``reasons()`` (``drop_reasons``) declares.

Every crafted document is built to trigger one drop reason (or none) and must get exactly that reason.
Together the cases of a stage trigger every reason it declares, except the few listed in ``UNREACHED``.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pytest

from curator import registry
from curator.schema import DROP_REASON, core_table
from curator.stages.fasttext_model import save_model, train_supervised

GOOD = ("The river runs through the old town and past the mill.\n"
        "Children play on the bank while their parents talk about the weather.\n"
        "In the evening the lights of the houses shine on the water.\n"
        "Fishermen come back with their boats and sell the catch at the market.\n"
        "The baker opens his shop early so that the workers have fresh bread.\n"
        "Visitors often stay for a week to walk in the hills and to see the castle.")
LINES = GOOD.split("\n")
GERMAN = ("Der Fluss fließt durch die alte Stadt und an der Mühle vorbei. Die Kinder spielen am Ufer, während "
          "ihre Eltern über das Wetter sprechen. Am Abend leuchten die Lichter der Häuser auf dem Wasser. Die "
          "Fischer kommen mit ihren Booten zurück und verkaufen den Fang auf dem Markt.")
QUESTION = "Which planet of the solar system has the largest number of known moons orbiting around it today"


def words(n: int, length: int, start: int = 0) -> list[str]:
    """``n`` distinct made-up words of ``length`` letters."""
    out = []
    for i in range(start, start + n):
        word, k = "", i
        for _ in range(length):
            word += string.ascii_lowercase[k % 26]
            k = k // 26 + 7
        out.append(word)
    return out


def repeated_ngrams(n: int, length: int) -> str:
    """GOOD with two phrases of exactly ``n`` words of ``length`` letters, each appearing twice."""
    phrases = [" ".join(words(n, length, 1000 + 50 * j)) for j in range(2)]
    parts = []
    for i, line in enumerate(LINES):
        parts += [line, phrases[i // 2]] if i < 4 else [line]
    return " ".join(parts)


def page(body: str, title: str = "River town", lang: str = "en") -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n"))
    return (f'<html lang="{lang}"><head><title>{title}</title></head><body><nav><a href="/">Home</a></nav>'
            f"<article><h1>{title}</h1>{paragraphs}</article></body></html>")


@dataclass
class Doc:
    text: str | None
    reason: str | None
    url: str | None = None


@dataclass
class Case:
    stage: str
    docs: list[Doc]
    params: dict[str, Any] = field(default_factory=dict)
    id: str = ""


# A stage's reasons that no crafted document triggers, and why.
UNREACHED = {"html_to_text": {"extraction_error"}}  # needs the extractor itself to raise
# Columns a stage rewrites without declaring them (a declaration gap to close in the stage).
UNDECLARED_REWRITES: dict[str, set[str]] = {}


CASES = [
    Case("c4_quality", [
        Doc(GOOD, None),
        Doc(GOOD + "\nRead more", None),  # the line without terminal punctuation is removed: text rewritten
        Doc(GOOD + "\nLorem ipsum dolor sit amet, consectetur adipiscing.", "c4_lorem_ipsum"),
        Doc(GOOD + "\nThe function body goes inside { and } here.", "c4_curly_bracket"),
        Doc("Only one sentence here is kept.", "c4_too_few_sentences"),
    ]),
    Case("fineweb_quality", [
        Doc(GOOD, None),
        Doc("   \n  \n", "fineweb_empty"),
        Doc(GOOD.replace(".", ""), "fineweb_line_punct_ratio"),
        Doc("Yes.\nNo.\nMaybe.\nSure.\nFine.", "fineweb_short_line_ratio"),
        Doc(GOOD + "\n" + LINES[0], "fineweb_char_dup_ratio"),
        Doc("\n".join(" ".join(words(2, 18, 40 * i)) + "." for i in range(20)), "fineweb_list_ratio"),
    ]),
    Case("gopher_quality", [
        Doc(GOOD, None),
        Doc("Too short a text.", "gopher_short_doc"),
        Doc(GOOD + "\n" + GOOD, "gopher_long_doc"),
        Doc(" ".join(["it is an ox and we go to the sea"] * 7), "gopher_short_words"),
        Doc(" ".join(["extraordinarily internationalization communication responsibilities"] * 15) + " the and",
            "gopher_long_words"),
        Doc(GOOD + " #" * 12, "gopher_too_many_hashes"),
        Doc(GOOD.replace(" the ", " the... ", 12), "gopher_too_many_ellipsis"),
        Doc("\n".join("- " + line for line in LINES), "gopher_too_many_bullets"),
        Doc("\n".join(line + "\u2026" for line in LINES), "gopher_too_many_end_ellipsis"),
        Doc(GOOD + " " + " ".join(str(i) for i in range(40)), "gopher_few_alpha_words"),
        Doc(" ".join(["Bright yellow flowers grow near quiet mountain lakes every spring"] * 6),
            "gopher_few_stop_words"),
    ], {"max_doc_words": 120}),
    Case("gopher_repetition", [
        Doc(GOOD, None),
        Doc("", "gopher_empty"),
        Doc("\n\n".join(["A short paragraph of text."] * 3 + [LINES[0]]), "gopher_dup_para"),
        Doc("\n\n".join([" ".join(words(40, 6, 100)) + "."] * 2 + LINES), "gopher_dup_para_chars"),
        Doc("\n".join([LINES[0]] * 5 + LINES[1:]), "gopher_dup_line"),
        Doc("\n".join(LINES + [" ".join(words(40, 6, 100)) + "."] * 2), "gopher_dup_line_chars"),
        Doc(GOOD + " " + " ".join(["hello world"] * 10), "gopher_top_2gram"),
        Doc(GOOD + " " + " ".join(["aaaa bbbb cccc"] * 8), "gopher_top_3gram"),
        Doc(GOOD + " " + " ".join(["aaaa bbbb cccc dddd"] * 5), "gopher_top_4gram"),
        *(Doc(repeated_ngrams(n, length), f"gopher_dup_{n}gram")
          for n, length in ((5, 13), (6, 9), (7, 7), (8, 5), (9, 4), (10, 3))),
    ]),
    Case("gopher_repetition", [
        Doc(GOOD + " " + " ".join(["hello world"] * 10), "gopher_top_2gram"),
        Doc(repeated_ngrams(5, 13), None),  # its n is off: the column is still written, no reason
    ], {"max_top_ngram_char_frac": {2: 0.2}, "max_dup_ngram_char_frac": {5: None}}, id="ngrams-from-config"),
    Case("langid", [Doc(GOOD, None), Doc("", "lang_low_score")]),
    Case("langid", [Doc(GOOD, None), Doc(GERMAN, "lang_not_allowed")], {"languages": ["en"]}, id="languages"),
    Case("min_length", [Doc(GOOD, None), Doc("Too short.", "too_short"), Doc(None, "too_short")]),
    Case("min_length", [
        Doc(GOOD, None),
        Doc("\n".join(LINES[:5]), "too_short"),  # enough characters, too few words
        Doc(GOOD + "\n" + GOOD, "too_long"),
    ], {"min_chars": 100, "min_words": 70, "max_chars": 500}, id="words"),
    Case("normalize", [Doc("  Smart \u201cquotes\u201d and \u2013 dashes\u2026  ", None), Doc(None, None)]),
    Case("quality_classifier", [Doc("calm calm calm", None), Doc("zonk zonk zonk", "quality_classifier_low")],
         {"model_path": "{model}", "positive_label": "clean"}),
    Case("quality_classifier", [Doc("calm", None), Doc("zonk", "quality_classifier_low")],
         {"model_path": "{model}", "positive_label": "clean", "score_column": "quality_calm"}, id="score-column"),
    Case("toxicity", [Doc(GOOD, None), Doc("fuck this shit", "toxic_words")]),
    Case("toxicity", [Doc("calm calm", None), Doc("zonk zonk", "toxic_classifier")],
         {"default_lists": False, "model_path": "{model}"}, id="classifier"),
    Case("decontaminate", [Doc(GOOD, None), Doc(GOOD + " " + QUESTION + "?", "contaminated")],
         {"benchmarks": ["{benchmark}"]}),
    Case("decontaminate", [Doc(GOOD, None), Doc(GOOD + " " + QUESTION + "?", None)],
         {"benchmarks": ["{benchmark}"], "mode": "flag"}, id="flag"),
    Case("html_to_text", [
        Doc(page(GOOD), None),
        Doc("", "empty_extraction"),
        Doc("<html><body></body></html>", "empty_extraction"),
        Doc("\x00\x01\x02\x03 binary" * 50, "not_html"),
    ]),
    Case("html_to_text", [
        Doc(page(GOOD), None),
        Doc(page("Hello there, friend."), "cascade_short"),
        Doc(page(GERMAN, "Die Stadt", "de"), "cascade_lang"),
    ], {"cascade": True}, id="cascade"),
    Case("html_to_text", [Doc(page(GOOD), None)], {"keep_head_meta": False}, id="no-meta"),
    Case("pii", [Doc("Mail me at ann@example.com today.", None), Doc("Mail ann@example.com " * 20, "pii_too_long")],
         {"max_chars": 100}),
    Case("url_filter", [
        Doc(GOOD, None, "https://good.example/page"),
        Doc(GOOD, "url_blocked", "https://www.blocked.example/page"),
        Doc(GOOD, None),
    ], {"entries": ["blocked.example"]}),
    Case("url_filter", [
        Doc(GOOD, None, "https://good.example/page"),
        Doc(GOOD, "url_not_allowed", "https://other.example/"),
        Doc(GOOD, "url_missing"),
    ], {"entries": ["good.example"], "mode": "allow", "drop_missing_url": True}, id="allow"),
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("declarations")
    model = train_supervised(["zonk"] * 20 + ["calm"] * 20, ["toxic"] * 20 + ["clean"] * 20, dim=4, bucket=100,
                             epoch=20, seed=0)
    bench = root / "bench.jsonl"
    bench.write_text(json.dumps({"question": QUESTION, "answer": "Saturn"}) + "\n", encoding="utf-8")
    return {"model": str(save_model(model, root / "model.bin")), "benchmark": str(bench)}


def _params(params: Any, assets: dict[str, str]) -> Any:
    if isinstance(params, dict):
        return {k: _params(v, assets) for k, v in params.items()}
    if isinstance(params, list):
        return [_params(v, assets) for v in params]
    if isinstance(params, str) and params.startswith("{") and params.endswith("}"):
        return assets[params[1:-1]]
    return params


def _table(docs: list[Doc]) -> pa.Table:
    n = len(docs)
    return core_table({"id": [f"d{i}" for i in range(n)], "text": [d.text for d in docs], "source": ["s"] * n,
                       "url": [d.url for d in docs], "meta": [json.dumps({"k": i}) for i in range(n)]})


def _map_stages() -> list[str]:
    return sorted(n for n, target in registry.available().items()
                  if target.startswith("curator.") and not registry.get(n).is_global)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.stage}-{c.id}" if c.id else c.stage for c in CASES])
def test_a_map_stage_writes_exactly_its_declared_columns_and_reasons(case, assets):
    stage = registry.get(case.stage)(**_params(case.params, assets))
    table = _table(case.docs)
    out = stage(table)
    declared = [c.name for c in stage.columns()]
    assert len(declared) == len(set(declared))
    added = set(out.column_names) - set(table.column_names) - {DROP_REASON}
    rewritten = {c for c in table.column_names if not out.column(c).equals(table.column(c))}
    assert added | rewritten == set(declared) | UNDECLARED_REWRITES.get(case.stage, set())
    assert all(c.description for c in stage.columns())
    reasons = out.column(DROP_REASON).to_pylist() if DROP_REASON in out.column_names else [None] * out.num_rows
    assert {r for r in reasons if r is not None} <= set(stage.reasons())
    assert reasons == [d.reason for d in case.docs]


def test_every_map_stage_has_cases_that_reach_each_declared_reason(assets):
    by_stage: dict[str, list[Case]] = {}
    for case in CASES:
        by_stage.setdefault(case.stage, []).append(case)
    assert sorted(by_stage) == _map_stages()
    for name, cases in by_stage.items():
        declared: set[str] = set()
        for case in cases:
            cls = registry.get(name)
            cfg = cls.Config(**_params(case.params, assets))
            shell = cls.__new__(cls)  # reasons() reads only the config: no model loads
            shell.config = cfg
            declared |= set(shell.reasons())
        reached = {d.reason for case in cases for d in case.docs} - {None}
        assert declared - reached == UNREACHED.get(name, set()), name
        assert all(registry.get(name).drop_reasons.values()), name


def test_class_declarations_name_config_dependent_columns_and_reasons_with_a_placeholder():
    cls = registry.get("gopher_repetition")
    assert "quality_gopher_top_{n}gram_frac" in [c.name for c in cls.writes]
    assert "gopher_dup_{n}gram" in cls.drop_reasons
    stage = cls(max_top_ngram_char_frac={3: 0.2}, max_dup_ngram_char_frac={})
    assert [(c.name, c.thresholds) for c in stage.columns() if "gram" in c.name] == [
        ("quality_gopher_top_3gram_frac", ("max_top_ngram_char_frac.3",))]
    assert [r for r in stage.reasons() if "gram" in r] == ["gopher_top_3gram"]
