"""The job store against SQLite and the real PostgreSQL: migrations, idempotency, paging, counts, output
claims."""

from __future__ import annotations

import threading
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from service_harness import PG_URL, drop_pg_schema, require_pg
from sqlalchemy import inspect, text

from api.store import Base, IdempotencyConflict, Store, path_key


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'jobs.db'}")
        s.migrate()
        yield s
        s.dispose()
        return
    require_pg()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    s = Store(PG_URL, schema=schema)
    s.migrate()
    yield s
    s.dispose()
    drop_pg_schema(schema)


def add(store: Store, owner: str = "alice", **kw):
    fields = {
        "kind": "curation",
        "name": "n",
        "owner": owner,
        "spec": {"a": [1, 2]},
        "out_dir": f"/d/{uuid.uuid4()}",
    }
    fields.update(kw)
    return store.create(**fields)


def test_migrations_match_the_models_and_rerun(store):
    store.migrate()  # a second upgrade is a no-op
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert conn.execute(text("select version_num from alembic_version")).scalar() == "0002"
    assert {"jobs", "outputs"} <= set(inspect(store.engine).get_table_names())


def test_sqlite_runs_in_wal_mode(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'x' / 'jobs.db'}")
    s.migrate()
    with s.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    s.dispose()


def test_postgres_schema_isolates_tables():
    require_pg()
    a, b = (f"t_{uuid.uuid4().hex[:12]}" for _ in range(2))
    sa, sb = Store(PG_URL, schema=a), Store(PG_URL, schema=b)
    try:
        sa.migrate()
        sb.migrate()
        add(sa)
        assert len(sa.list()[0]) == 1 and sb.list()[0] == []
    finally:
        sa.dispose()
        sb.dispose()
        drop_pg_schema(a)
        drop_pg_schema(b)


def test_create_get_update_round_trip(store):
    job = add(store, spec={"inputs": [{"path": "/x"}], "nested": {"k": None}})
    assert job.status == "pending" and job.submission_id == f"curator-{job.id}"
    got = store.get(job.id)
    assert got.spec == {"inputs": [{"path": "/x"}], "nested": {"k": None}} and got.submitted_at is None
    store.update(job.id, status="running", started_at=123.5, final_stats={"stages": []})
    got = store.get(job.id)
    assert (got.status, got.started_at, got.final_stats) == ("running", 123.5, {"stages": []})
    assert got.updated_at >= got.created_at
    assert store.update("jnope", status="failed") is None and store.get("jnope") is None


def test_idempotency_key_is_per_owner(store):
    first = add(store, idempotency_key="k1", body_sha256="aa")
    with pytest.raises(IdempotencyConflict) as info:
        add(store, idempotency_key="k1", body_sha256="bb")
    assert info.value.job.id == first.id
    other = add(store, owner="bob", idempotency_key="k1")
    assert other.id != first.id
    assert store.by_idempotency_key("alice", "k1").id == first.id
    # jobs without a key never conflict
    assert add(store).id != add(store).id


def test_concurrent_retries_create_one_job(store):
    results, errors = [], []

    def submit():
        try:
            results.append(add(store, idempotency_key="race", body_sha256="s").id)
        except IdempotencyConflict as exc:
            results.append(exc.job.id)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 6 and len(set(results)) == 1


@settings(max_examples=15, deadline=None)
@given(
    statuses=st.lists(st.sampled_from(["pending", "running", "succeeded", "failed"]), min_size=0, max_size=12),
    limit=st.integers(1, 5),
)
def test_paging_visits_every_job_once_newest_first(tmp_path_factory, statuses, limit):
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('page') / 'jobs.db'}")
    s.migrate()
    ids = []
    for status in statuses:
        job = add(s)
        s.update(job.id, status=status)
        ids.append((job.id, status))
    for wanted in (None, "running"):
        expect = [i for i, st_ in reversed(ids) if wanted in (None, st_)]
        seen, cursor = [], None
        while True:
            page, cursor = s.list(status=wanted, limit=limit, before=cursor)
            assert len(page) <= limit
            seen += [j.id for j in page]
            if cursor is None:
                break
        assert seen == expect
    s.dispose()


def test_active_counts_and_output_clash(store):
    a = add(store, out_dir="/d/a")
    b = add(store, out_dir="/d/b")
    add(store, owner="bob", out_dir="/d/c")
    store.update(b.id, status="succeeded")
    assert store.count_active("alice") == 1 and store.count_active("bob") == 1
    assert [j.id for j in store.active()][0] == a.id and len(store.active()) == 2
    assert store.active_with_output("/d/a").id == a.id
    assert store.active_with_output("/d/b") is None  # finished jobs do not block their folder
    assert store.counts_by_status() == {("curation", "pending"): 2, ("curation", "succeeded"): 1}
    store.ping()


def test_output_claims_are_per_owner_and_cover_nested_folders(store):
    assert store.claim("/d/out", "alice", "j1") == (None, True)
    assert store.claim("/d/out", "alice", "j2") == (None, False)  # already hers
    assert store.claim("/d/out/mine", "alice", "j3") == (None, True)  # her own folders may nest
    for path in ("/d/out", "/d/out/x/y", "/d", "/"):  # the folder, inside it, above it
        clash, created = store.claim(path, "bob", "j9")
        assert clash is not None and clash.path == "/d/out" and clash.owner == "alice" and not created, path
    assert store.foreign_claim("/d/out", "alice") is None
    # a sibling whose name merely starts the same is not inside: /d/outer, /d/out_2
    assert store.claim("/d/outer", "bob", "j4") == (None, True)
    assert store.claim("/d/out_2", "bob", "j5") == (None, True)
    assert store.foreign_claim("/d/outer/x", "alice").path == "/d/outer"
    store.release("/d/outer", "j-other")  # only the job that made a claim drops it
    assert store.foreign_claim("/d/outer", "alice") is not None
    store.release("/d/outer", "j4")
    assert store.foreign_claim("/d/outer", "alice") is None
    long = "/d/" + "x" * 3000  # longer than a btree key may be: the key is its hash
    assert store.claim(long, "bob", "j6") == (None, True)
    assert store.foreign_claim(long + "/y", "alice").path == long


def test_upgrade_from_0001_claims_the_outputs_of_submitted_jobs(tmp_path):
    from alembic import command
    from alembic.config import Config

    from api import store as store_module

    s = Store(f"sqlite:///{tmp_path / 'old.db'}")
    here = store_module.Path(store_module.__file__).resolve().parent
    cfg = Config(str(here / "alembic.ini"))
    cfg.set_main_option("script_location", str(here / "migrations"))
    with s.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        row = "insert into jobs (id, kind, name, status, owner, submission_id, spec, out_dir, cancel_requested, " \
              "created_at, updated_at, submitted_at) values (:id, 'curation', 'n', 'succeeded', :owner, :id, '{}', " \
              ":out, 0, :t, :t, :sub)"
        for job_id, owner, out, sub in (("ja", "alice", "/d/a", 1.0), ("jb", "bob", "/d/a", 2.0),
                                        ("jc", "bob", "/d/c", None), ("jd", "bob", "/d/d", 3.0)):
            conn.execute(text(row), {"id": job_id, "owner": owner, "out": out, "t": 1.0, "sub": sub})
    s.migrate()
    with s.engine.connect() as conn:
        claims = sorted(conn.execute(text("select path, owner, job_id, key from outputs")).all())
    # the first submitted job into a folder claims it; a job Ray never got claims nothing
    assert claims == [("/d/a", "alice", "ja", path_key("/d/a")), ("/d/d", "bob", "jd", path_key("/d/d"))]
    assert s.get("ja").retry_of is None
    s.dispose()
