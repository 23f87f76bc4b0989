"""Malformed and hostile bodies over real HTTP, on SQLite and PostgreSQL: every one gets a 4xx (never a
500) before anything reaches the database, and the service stays responsive."""

from __future__ import annotations

import json

import pytest
from service_harness import write_jsonl

# The 467-byte body: "lol" nine times, then eight levels of nine aliases each, which PyYAML's
# safe_load expands to 9^9 (387 million) strings
_LEVELS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)
ALIAS_BOMB = "# billion laughs: 467 bytes\n" + _LEVELS + "name: bomb1\ninputs: [{path: *i}]\n"


@pytest.fixture(scope="module")
def data(plain_server):
    write_jsonl(plain_server.data / "in.jsonl", ["a long enough document"])
    return plain_server.data


def spec(data, **over):
    return {"name": "b", "inputs": [{"path": str(data / "in.jsonl")}], "stages": [], "output": {"path": "out/b"},
            **over}


def test_the_alias_bomb_is_refused(plain_server):
    assert len(ALIAS_BOMB.encode()) == 467
    with plain_server.client() as c:
        r = c.post("/v1/jobs", content=ALIAS_BOMB, headers={"content-type": "application/yaml"})
        assert r.status_code == 400, r.text
        assert "YAML aliases (*a) are not accepted" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200


def test_one_anchor_is_fine_but_any_alias_is_refused(plain_server, data):
    body = f"name: y\ninputs:\n  - &first {{path: {data / 'in.jsonl'}}}\noutput: {{path: out/y}}\n"
    with plain_server.client() as c:
        r = c.post("/v1/jobs", content=body, headers={"content-type": "application/yaml"})
        assert r.status_code == 503, r.text  # valid and confined; only Ray is missing
        r = c.post("/v1/jobs", content=body + "stages: [*first]\n", headers={"content-type": "application/yaml"})
        assert r.status_code == 400 and "aliases (*first)" in r.json()["detail"]


@pytest.mark.parametrize("depth", [65, 20_000])
def test_deep_nesting_is_refused(plain_server, data, depth):
    with plain_server.client() as c:
        deep_json = json.dumps(spec(data))[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
        r = c.post("/v1/jobs", content=deep_json, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "deeper than 64 levels" in r.json()["detail"], r.text
        deep_yaml = "x: " + "[" * depth + "]" * depth + "\n"
        r = c.post("/v1/jobs", content=deep_yaml, headers={"content-type": "application/yaml"})
        assert r.status_code == 400 and "deeper than 64 levels" in r.json()["detail"], r.text
        r = c.post("/v1/trainings", content='{"job_id": ' + "[" * depth + "]" * depth + "}",
                   headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, r.text
        # 63 levels is within the limit: an ordinary validation answer
        ok = json.dumps(spec(data, stages=[{"stage": "min_length", "x": json.loads("[" * 60 + "]" * 60)}]))
        r = c.post("/v1/jobs", content=ok, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["errors"][0].startswith("stages[0].x:"), r.text


@pytest.mark.parametrize(
    ("body", "media", "status", "says"),
    [
        ('{"name": "a\\u0000b"}', "application/json", 422, "name: NUL characters are not accepted"),
        ('{"inputs": [{"path": "x\\u0000"}]}', "application/json", 422, "inputs[0].path: NUL"),
        ('{"a\\u0000": 1}', "application/json", 422, "a\x00: NUL"),
        ('{"name": "\\ud800"}', "application/json", 422, "name: not valid Unicode"),
        ('{"seed": NaN}', "application/json", 400, "NaN is not a JSON number"),
        ('{"seed": 1e400}', "application/json", 422, "seed: inf is not a finite number"),
        ('{"seed": 123456789012345678901234567890}', "application/json", 422, "seed: integer out of the 64-bit"),
        ('{"seed": ' + "9" * 5000 + "}", "application/json", 400, "not valid JSON"),
        ("seed: 2026-01-01\n", "application/yaml", 422, "seed: a YAML date value is not accepted"),
        ("seed: !!binary aGk=\n", "application/yaml", 422, "seed: a YAML bytes value"),
        ("? [a, b]\n: 1\n", "application/yaml", 400, "not valid YAML"),
        ("1: 2\n", "application/yaml", 422, "keys must be strings"),
        ("name: !!python/object:os.system x\n", "application/yaml", 400, "not valid YAML"),
        ("name: a\x00b\n", "application/yaml", 400, "not valid YAML"),
        (b"\xff\xfe", "application/json", 400, "not UTF-8"),
    ],
)
def test_malformed_values_get_a_4xx_naming_the_problem(plain_server, body, media, status, says):
    with plain_server.client() as c:
        r = c.post("/v1/jobs", content=body, headers={"content-type": media})
    assert r.status_code == status, r.text
    assert says in r.json()["detail"], r.json()


def test_nul_bytes_in_ids_and_queries_never_reach_the_database(plain_server):
    with plain_server.client() as c:
        for path in ("/v1/jobs/j%00", "/v1/jobs/j0123456789abcd%00", "/v1/jobs/%00/logs", "/v1/jobs/x%00/cancel"):
            method = "POST" if path.endswith("cancel") else "GET"
            r = c.request(method, path)
            assert r.status_code == 404, (path, r.status_code, r.text)
        assert c.post("/v1/jobs/%00/retry").status_code == 404
        assert c.get("/v1/jobs", params={"owner": "a\x00b"}).status_code == 422
        assert c.get("/v1/jobs", params={"cursor": "1\x00"}).status_code == 422
        r = c.post("/v1/trainings", json={"job_id": "j0123456789abcd\x00", "gpus": 0})
        assert r.status_code in (422, 501)
        r = c.post("/v1/jobs", content="{}", headers={"content-type": "application/json", "idempotency-key": "a b"})
        assert r.status_code == 422
        assert c.get("/healthz").status_code == 200


def test_model_and_file_parameters_must_exist_inside_the_roots(plain_server, data):
    """`pii.spacy_model: "tmp"` is no installed package and no folder in the roots: refused now, not
    looked for (or downloaded) at run time; so are a missing fastText model and benchmark file."""
    cases = [
        ({"stage": "pii", "engine": "presidio", "spacy_model": "tmp"},
         "stages[0].spacy_model: 'tmp' is neither an installed package nor a file or folder inside the data roots"),
        ({"stage": "langid", "model_path": "m/lid.bin"}, "stages[0].model_path: 'm/lid.bin' matches no file"),
        ({"stage": "quality_classifier", "model_path": "q.bin"}, "stages[0].model_path: 'q.bin' matches no file"),
        ({"stage": "decontaminate", "benchmarks": [{"path": "bench/*.jsonl"}]},
         "stages[0].benchmarks[0].path: 'bench/*.jsonl' matches no file"),
        ({"stage": "toxicity", "word_lists": {"en": "/etc/hostname"}},
         f"stages[0].word_lists.en: '/etc/hostname' is outside the data roots ({data.resolve()})"),
    ]
    with plain_server.client() as c:
        for stage, error in cases:
            r = c.post("/v1/jobs", json=spec(data, stages=[stage]))
            assert r.status_code == 422 and r.json()["errors"] == [error], (stage, r.text)
        (data / "spacy_dir").mkdir(exist_ok=True)
        ok = {"stage": "pii", "engine": "presidio", "spacy_model": "spacy_dir"}
        r = c.post("/v1/jobs", json=spec(data, stages=[ok], output={"path": "out/spacy"}))
        assert r.status_code == 503, r.text  # a folder inside the root is accepted; only Ray is missing
        job = c.get("/v1/jobs", params={"limit": 1}).json()["jobs"][0]
        stage = c.get(f"/v1/jobs/{job['id']}").json()["spec"]["stages"][0]
        assert stage["spacy_model"] == str((data / "spacy_dir").resolve())
