"""Many processes writing, reading, copying and deleting in the same deltaspaces at once.

Every race starts its operations at one instant (plus a random jitter of a few milliseconds) in
eight separate processes, each with its own engine. Races: a new deltaspace created by eight
writers, the last delta of a reference deleted while others upload, eight overwrites of one
key, copies (into a new deltaspace and into the same one) while their source is deleted, and a
mix of everything. Afterwards: every acknowledged write reads back byte-exactly, deleted objects
stay deleted, and no key is listed twice. On SeaweedFS the run is at least 1,000 concurrent
operations (issue 6's bar).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import race_worker
from data import get_bytes
from integration_conftest import make_config, s3_storage

from deltaglider.cache import MemoryCache
from deltaglider.engine import DeltaStore
from deltaglider.errors import ObjectNotFound
from deltaglider.storage.base import Storage
from deltaglider.storage.local import LocalStorage

# Slow (randomized races of 8 processes: a minute): CI runs it, -m "not slow" does not.
pytestmark = pytest.mark.slow

WORKERS = 8


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["seaweedfs", "local"])
def race_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Storage]]:
    if request.param == "local":
        root = tmp_path / "store"
        storage: Storage = LocalStorage(root)
        spec = {"kind": "local", "root": str(root)}
    else:
        server = request.getfixturevalue("seaweedfs")
        storage = s3_storage(server)
        spec = {
            "kind": "s3",
            "endpoint": server.endpoint_url,
            "key": server.access_key,
            "secret": server.secret_key,
        }
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(WORKERS, initializer=race_worker.init, initargs=(spec,))
    try:
        yield pool, storage
    finally:
        pool.terminate()
        pool.join()


def race(
    pool: Any, ops: list[tuple[str, str, str, int]], rng: random.Random
) -> list[tuple[str, Any]]:
    start = time.time() + 0.15
    timed = [(*op, start + rng.uniform(0, 0.03)) for op in ops]
    return pool.map(race_worker.run, timed, chunksize=1)


def test_randomized_races_lose_nothing(race_env: tuple[Any, Storage]) -> None:
    pool, storage = race_env
    bucket = f"races-{random.randrange(1 << 30)}"
    storage.create_bucket(bucket)
    checker = DeltaStore(storage, MemoryCache(256 << 20), make_config())
    rng = random.Random(2026)
    expected: dict[str, str | None] = {}  # key -> sha256 it must have, None: must not exist
    choices: dict[str, set[str]] = {}  # key -> acceptable sha256s (concurrent overwrites)
    races = operations = 0
    rounds = 30 if isinstance(storage, LocalStorage) else 128
    for r in range(rounds):
        scenario = rng.choice(["new-deltaspace", "delete-vs-upload", "overwrite", "copy", "mixed"])
        space = f"s{r}"
        if scenario == "new-deltaspace":
            seeds = [rng.randrange(10_000) for _ in range(WORKERS)]
            ops = [("put", bucket, f"{space}/app-{i}.zip", s) for i, s in enumerate(seeds)]
            for (_, _, key, s), (status, value) in zip(ops, race(pool, ops, rng), strict=True):
                assert status == "ok", value
                expected[key] = sha(race_worker.data_for(s))
                assert value == expected[key]
        elif scenario == "delete-vs-upload":
            checker.put(bucket, f"{space}/app-old.zip", race_worker.data_for(r))
            ops = [("delete", bucket, f"{space}/app-old.zip", 0)]
            ops += [
                ("put", bucket, f"{space}/app-new{i}.zip", rng.randrange(10_000))
                for i in range(WORKERS - 1)
            ]
            results = race(pool, ops, rng)
            assert results[0][0] == "ok", results[0]
            expected[f"{space}/app-old.zip"] = None
            for (_, _, key, s), (status, value) in zip(ops[1:], results[1:], strict=True):
                assert status == "ok", value
                expected[key] = sha(race_worker.data_for(s))
        elif scenario == "overwrite":
            key = f"{space}/app.zip"
            checker.put(bucket, f"{space}/base.zip", race_worker.data_for(r + 1))
            seeds = [rng.randrange(10_000) for _ in range(WORKERS)]
            ops = [("put", bucket, key, s) for s in seeds]
            for status, value in race(pool, ops, rng):
                assert status == "ok", value
            choices[key] = {sha(race_worker.data_for(s)) for s in seeds}
            expected[f"{space}/base.zip"] = sha(race_worker.data_for(r + 1))
        elif scenario == "copy":
            # The source is the only delta of its reference: deleting it removes the reference
            # unless a copy stored meanwhile needs it.
            source = f"{space}/src.zip"
            checker.put(bucket, source, race_worker.data_for(r + 6))
            want = sha(race_worker.data_for(r + 6))
            ops = [("delete", bucket, source, 0)]
            ops += [("copy", bucket, f"{source}>{space}/copy{i}.zip", 0) for i in range(3)]
            ops += [("copy", bucket, f"{source}>{space}-to/copy{i}.zip", 0) for i in range(3)]
            ops += [("put", bucket, f"{space}-to/other.zip", r + 7)]
            results = race(pool, ops, rng)
            assert results[0][0] == "ok", results[0]
            expected[source] = None
            for (kind, _, key, _), (status, value) in zip(ops[1:], results[1:], strict=True):
                if kind == "put":
                    assert status == "ok", value
                    expected[key] = sha(race_worker.data_for(r + 7))
                    continue
                destination = key.split(">")[1]
                assert status in ("ok", "missing"), (key, value)  # missing: the delete won
                expected[destination] = value if status == "ok" else None
                if status == "ok":
                    assert value == want, key
        else:
            checker.put(bucket, f"{space}/a.zip", race_worker.data_for(r + 2))
            checker.put(bucket, f"{space}/b.zip", race_worker.data_for(r + 3))
            ops = [
                ("delete", bucket, f"{space}/a.zip", 0),
                ("get", bucket, f"{space}/b.zip", 0),
                ("delete", bucket, f"{space}/b.zip", 0),
                ("put", bucket, f"{space}/c.zip", r + 4),
                ("get", bucket, f"{space}/a.zip", 0),
                ("put", bucket, f"{space}/d.zip", r + 5),
                ("copy", bucket, f"{space}/b.zip>{space}/e.zip", 0),
                ("copy", bucket, f"{space}/b.zip>{space}-x/e.zip", 0),
            ]
            results = race(pool, ops, rng)
            for op, (status, value) in zip(ops, results, strict=True):
                assert status in ("ok", "missing"), (op, value)
                if op[0] in ("get", "copy") and status == "ok":  # it read the truth
                    assert value == sha(
                        race_worker.data_for(r + 2 if op[2].endswith("a.zip") else r + 3)
                    )
            expected.update(
                {
                    f"{space}/a.zip": None,
                    f"{space}/b.zip": None,
                    f"{space}/c.zip": sha(race_worker.data_for(r + 4)),
                    f"{space}/d.zip": sha(race_worker.data_for(r + 5)),
                }
            )
            for (_, _, key, _), (status, value) in zip(ops[-2:], results[-2:], strict=True):
                expected[key.split(">")[1]] = value if status == "ok" else None
        races += 1
        operations += len(ops)
    assert races == rounds
    assert operations >= (200 if isinstance(storage, LocalStorage) else 1_000), operations

    # Verify everything with a fresh engine (nothing cached).
    fresh = DeltaStore(storage, MemoryCache(256 << 20), make_config())
    for key, want in expected.items():
        if want is None:
            with pytest.raises(ObjectNotFound):
                fresh.head(bucket, key)
                pytest.fail(f"{key} should not exist (seed 2026)")
        else:
            assert sha(get_bytes(fresh, bucket, key)) == want, key
    for key, acceptable in choices.items():
        assert sha(get_bytes(fresh, bucket, key)) in acceptable, key
    listed = [o.key for o in fresh.iter_objects(bucket)]
    assert len(listed) == len(set(listed))
    assert set(listed) == {k for k, v in expected.items() if v is not None} | set(choices)
    fresh.delete_prefix(bucket, "")
    storage.delete_bucket(bucket)
