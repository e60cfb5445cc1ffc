"""Fault injection at the command line: ``sync`` (up, down, ``--delete``) and ``migrate``.

The engine's operations meet every fault in ``test_faults.py``; here the commands that drive many
of them meet the same faults (the same ``FAULTS`` columns), through the same proxy, with the
CLI's own settings (``--cli-read-timeout``, ``DG_MAX_ATTEMPTS``). A cell passes when:

- the command exits 0 with everything done, or exits 1 with an ``upload failed: <file> to
  <s3 url> <cause>`` line (as ``aws s3`` words it) naming what failed (never a traceback,
  never an internal error); it never hangs;
- afterwards the bucket is as ``test_faults.World.check`` demands (every object reads back
  byte-exactly, a key the command wrote or removed is as before or as meant, exactly as meant
  after exit 0, nothing else listed, no multipart upload left open);
- a download left no file that is not byte-exact, and no temporary file; a re-run of the same
  command without faults exits 0 and completes the work.

Also here: a lost ``CreateMultipartUpload`` answer (the server opened an upload, the client never
heard of it and retried), which costs storage but never data.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from data import get_bytes, noise, release
from faultproxy import Fault, FaultProxy
from servers import REGION, Server
from test_faults import (
    FAULTS,
    FOREIGN,
    NOTES,
    README,
    TIMEOUT,
    V1,
    V2,
    V3,
    Cell,
    Injection,
    Op,
    World,
    _pattern,
    _sha,
    bounded,
    quick_throttle_recovery,  # noqa: F401  (a fixture: used by this module's cells too)
)

from deltaglider.cli import main

# Slow (the CLI under every fault: minutes): CI runs it, -m "not slow" does not.
pytestmark = pytest.mark.slow

MIG_A = noise(40_000, 21)
MIG_B = MIG_A[:20_000] + noise(300, 22) + MIG_A[20_300:]
MIG_TXT = noise(5_000, 23)


@dataclass(frozen=True)
class Command:
    """A command line (``{s3}`` is ``s3://<bucket>/<cell prefix>``, ``{dir}`` the local folder),
    the request that meets the fault, and what the command does to the bucket and the folder."""

    name: str
    args: tuple[str, ...]
    method: str
    path: str
    query: str | None = None
    nth: int = 1
    #: Logical keys it writes (bytes) or removes (None).
    changes: dict[str, bytes | None] = field(default_factory=dict)
    #: The local folder before the command (relative path -> bytes).
    local: dict[str, bytes] = field(default_factory=dict)
    #: What the local folder holds after a successful command.
    local_after: dict[str, bytes] | None = None


UP = {"v1.zip": V1, "v2.zip": V2, "v3.zip": V3, "readme.txt": README, "notes.txt": NOTES}
DOWN_BEFORE = {"v1.zip": V1}
DOWN_AFTER = {"v1.zip": V1, "v2.zip": V2, "notes.txt": NOTES, "foreign.bin": FOREIGN}

COMMANDS = [
    Command("sync-up-put-delta", ("sync", "{dir}", "{s3}rel/"), "PUT",
            r"{p}rel/v3\.zip\.delta$",
            changes={"rel/v3.zip": V3, "rel/readme.txt": README}, local=UP),
    Command("sync-up-listing", ("sync", "{dir}", "{s3}rel/"), "GET", r"^{b}$",
            query="list-type=2", changes={"rel/v3.zip": V3, "rel/readme.txt": README}, local=UP),
    Command("sync-down-get-delta", ("sync", "{s3}rel/", "{dir}"),
            "GET", r"{p}rel/v2\.zip\.delta$", local=DOWN_BEFORE, local_after=DOWN_AFTER),
    Command("sync-down-get-reference",
            ("sync", "{s3}rel/", "{dir}"),
            "GET", r"{p}rel/reference\.bin$", local=DOWN_BEFORE, local_after=DOWN_AFTER),
    Command("sync-delete", ("sync", "{dir}", "{s3}rel/", "--delete"), "DELETE",
            r"{p}rel/notes\.txt$", changes={"rel/notes.txt": None, "rel/foreign.bin": None},
            local={"v1.zip": V1, "v2.zip": V2}),
    Command("migrate-get-source", ("migrate", "{s3}src/", "{s3}mig/", "--yes"), "GET",
            r"{p}src/b\.zip$",
            changes={"mig/src/a.zip": MIG_A, "mig/src/b.zip": MIG_B, "mig/src/c.txt": MIG_TXT}),
    Command("migrate-put-delta", ("migrate", "{s3}src/", "{s3}mig/", "--yes"), "PUT",
            r"{p}mig/src/b\.zip\.delta$",
            changes={"mig/src/a.zip": MIG_A, "mig/src/b.zip": MIG_B, "mig/src/c.txt": MIG_TXT}),
]  # fmt: skip

#: migrate's source: plain objects another tool wrote (no dg-* metadata).
SOURCE = {"src/a.zip": MIG_A, "src/b.zip": MIG_B, "src/c.txt": MIG_TXT}


@pytest.fixture(scope="module")
def world(seaweedfs: Server, fault_proxy: FaultProxy) -> Iterator[World]:
    w = World(seaweedfs, fault_proxy)
    try:
        yield w
    finally:
        w.close()


def _cell(world: World) -> Cell:
    cell = world.cell(large=False)
    cell.store.close()  # the CLI brings its own
    for key, data in SOURCE.items():
        world.direct.client.put_object(Bucket=world.bucket, Key=cell.k(key), Body=data)
        cell.expected[key] = data
    return cell


def _run(
    args: list[str],
    proxy: FaultProxy,
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
    extra_env: dict[str, str] | None = None,
) -> int:
    env = {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "DG_CACHE_BACKEND": "memory",
        "DG_MAX_ATTEMPTS": "3",
        "DG_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    opts = ["--endpoint-url", proxy.endpoint_url, "--no-progress", "--max-workers", "2"]
    opts += ["--cli-read-timeout", str(TIMEOUT), "--cli-connect-timeout", str(TIMEOUT)]
    code: list[int] = []
    error = bounded(lambda: code.append(main([*args, *opts])))
    if error is not None:
        raise AssertionError(f"deltaglider {' '.join(args)} raised") from error
    return code[0]


def _local_state(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _check_local(command: Command, folder: Path, succeeded: bool) -> None:
    if command.local_after is None:
        assert _local_state(folder) == command.local, "an upload changed the local folder"
        return
    state = _local_state(folder)
    for name, data in state.items():  # a failed download leaves nothing, not even a temp file
        assert name in command.local_after, f"{name}: left behind"
        assert _sha(data) == _sha(command.local_after[name]), f"{name}: wrong bytes"
    if succeeded:
        assert state == command.local_after


@pytest.mark.parametrize("injection", FAULTS, ids=str)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_cli_fault_matrix(
    command: Command,
    injection: Injection,
    world: World,
    proxy: FaultProxy,
    seaweedfs: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cell = _cell(world)
    folder = tmp_path / "dir"
    folder.mkdir()
    for name, data in command.local.items():
        (folder / name).write_bytes(data)
    s3 = f"s3://{cell.bucket}/{cell.prefix}"
    args = [a.replace("{s3}", s3).replace("{dir}", str(folder)) for a in command.args]
    rule = proxy.add(
        injection.fault,
        method=command.method,
        path=_pattern(command.path, cell),
        query=command.query,
        nth=command.nth,
        times=injection.times,
    )
    code = _run(args, proxy, seaweedfs, monkeypatch)
    assert rule.fired, f"the fault never fired: {[(r.method, r.path) for r in proxy.records]}"
    err = capsys.readouterr().err
    assert code in (0, 1), err
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 1:  # as aws s3: "<upload|download|delete|migrate> failed: <object> ... <cause>"
        assert re.search(rf"^(\w+ failed|deltaglider: error): .*s3://{cell.bucket}/", err, re.M), (
            err
        )
    op = Op(command.name, command.method, command.path, lambda c: None, changes=command.changes)
    world.check(cell, op, succeeded=code == 0)
    _check_local(command, folder, succeeded=code == 0)

    # The same command again, without faults, completes the work.
    proxy.clear()
    assert _run(args, proxy, seaweedfs, monkeypatch) == 0, capsys.readouterr().err
    world.check(cell, op, succeeded=True)
    _check_local(command, folder, succeeded=True)


def test_lost_create_multipart_answer(
    world: World, proxy: FaultProxy, seaweedfs: Server, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The server opens a multipart upload, the connection drops before the client hears its
    id, the retry opens another. The upload succeeds and reads back; the first upload stays
    open (no client can know its id; it costs storage until the bucket's lifecycle rule for
    incomplete uploads removes it) and is never visible as an object."""
    cell = _cell(world)
    data = noise((5 << 20) + 123_456, 31)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    key = cell.k("big/blob.bin")
    rule = proxy.add(
        Fault.reset(after=True), method="POST", path=re.escape(f"/{cell.bucket}/{key}") + "$",
        query=r"uploads",
    )  # fmt: skip
    monkeypatch.setenv("DG_MULTIPART_THRESHOLD_MB", "5")
    monkeypatch.setenv("DG_MULTIPART_CHUNKSIZE_MB", "5")
    code = _run(["cp", str(path), f"s3://{cell.bucket}/{key}"], proxy, seaweedfs, monkeypatch)
    assert code == 0, capsys.readouterr().err
    assert rule.fired
    creates = [r for r in proxy.records if r.method == "POST" and "uploads" in r.query]
    assert len(creates) == 2, creates  # the lost one and the retry
    assert _sha(get_bytes(world.engine, world.bucket, key)) == _sha(data)
    listed = [o.key for o in world.engine.iter_objects(world.bucket, prefix=cell.k("big/"))]
    assert listed == [key]
    uploads = world.direct.client.list_multipart_uploads(Bucket=world.bucket, Prefix=key)
    stray = uploads.get("Uploads", [])
    assert len(stray) == 1 and stray[0]["Key"] == key, stray
    world.direct.client.abort_multipart_upload(
        Bucket=world.bucket, Key=key, UploadId=stray[0]["UploadId"]
    )


def test_cli_requests_with_a_warm_cache(
    world: World, proxy: FaultProxy, seaweedfs: Server, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes],
) -> None:  # fmt: skip
    """What ``deltaglider cp`` costs on the wire once the reference is in the (shared,
    encrypted) cache: an upload of a delta 2 requests, and a new process one HEAD more per
    deltaspace to learn its reference (README "Requests"): 3 for one file, 1 + 2 a file for a
    batch; a download 2 (the GET of the delta and the HEAD of the key's other stored form, sent
    at once; the GET's answer says what the object is), to a file and to stdout alike."""
    cell = _cell(world)
    cache = {
        "DG_CACHE_BACKEND": "filesystem",
        "DG_CACHE_DIR": str(tmp_path / "cache"),
        "DG_CACHE_ENCRYPTION_KEY": base64.b64encode(b"k" * 32).decode(),
    }
    s3 = f"s3://{cell.bucket}/{cell.prefix}w/"
    for name, data in (("v1.zip", V1), ("v2.zip", V2), ("v3.zip", V3)):
        (tmp_path / name).write_bytes(data)
    for name in ("v1.zip", "v2.zip"):
        assert _run(["cp", str(tmp_path / name), s3], proxy, seaweedfs, monkeypatch, cache) == 0

    def sent(args: list[str]) -> list[str]:
        proxy.clear()
        assert _run(args, proxy, seaweedfs, monkeypatch, cache) == 0
        return [f"{r.method} {r.path}" for r in proxy.records]

    requests = sent(["cp", str(tmp_path / "v3.zip"), s3])
    assert len(requests) <= 3, requests
    # A batch into that deltaspace: one HEAD of the reference for all, then 2 a file (PUT the
    # delta, HEAD the reference after it).
    batch = tmp_path / "batch"
    batch.mkdir()
    for v in (4, 5, 6):
        (batch / f"v{v}.zip").write_bytes(release(v))
    requests = sent(["cp", "-r", str(batch), s3])
    assert len(requests) <= 1 + 3 * 2, "\n".join(requests)
    out = tmp_path / "out"
    out.mkdir()
    for name, data in (("v2.zip", V2), ("v3.zip", V3)):
        requests = sent(["cp", s3 + name, str(out)])
        assert len(requests) <= 2, requests
        assert _sha((out / name).read_bytes()) == _sha(data)
    capsysbinary.readouterr()
    requests = sent(["cp", s3 + "v2.zip", "-"])
    assert len(requests) <= 2, requests
    assert _sha(capsysbinary.readouterr().out) == _sha(V2)
