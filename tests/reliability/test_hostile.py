"""Hostile and broken data: what is stored, its metadata and the reference cache, tampered with
behind deltaglider's back; and malformed URLs, keys and options.

Objects are tampered with directly in a real SeaweedFS bucket (a plain boto3 client), cache
entries directly in the cache's folder. Then the object is read the three ways users read it:
the engine (``DeltaStore.get`` to a path, ``DeltaStore.open`` as a stream), the boto3-compatible
client (``get_object``, ``download_file``) and ``deltaglider cp`` (the CLI's entry point,
in-process; the installed executable where a limit on the process is needed). A case passes
when every surface either returns exactly the bytes that were stored or fails with the named
deltaglider error (the CLI: exit 1 and one line naming the problem); a failed download leaves
no file behind and a stream raises before it ends.

Sizes: a delta that decodes to more than its recorded ``dg-file-size`` is refused by that bound
before anything is allocated for it (a hand-made VCDIFF delta of 12 bytes per 64 MiB window,
declaring 4 GiB); one whose recorded size is as huge as what it decodes streams in bounded
memory and fails its sha256 at the end. Both run in processes whose address space is limited
(``RLIMIT_AS``, 1 GiB; codec threads pinned to 2) and whose peak RSS is checked, with a time
limit; reads made in the test process have a time limit too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import boto3
import botocore.exceptions
import pytest
from data import get_bytes, release
from reliability_conftest import s3_storage
from servers import REGION, Server

from deltaglider import create_client
from deltaglider.cache import FilesystemCache, MemoryCache, ReferenceCache
from deltaglider.cli import main as cli_main
from deltaglider.client import DeltaGliderClient
from deltaglider.codec import Decoder
from deltaglider.config import Config
from deltaglider.engine import DeltaStore
from deltaglider.errors import IntegrityError, ObjectNotFound, StorageError
from deltaglider.storage import _s3_session

V1, V2, V3 = release(1), release(2), release(3)
MiB = 1 << 20
#: The largest VCDIFF window xdelta3 decodes (XD3_HARDMAXWINSIZE).
WINDOW = 64 * MiB
#: Address space of the processes that read huge deltas: a fraction of what they declare.
AS_LIMIT = 1 << 30
#: No subprocess may take longer (a hang fails the test instead of the run).
TIMEOUT = 120
#: Nor may reads made in this process.
LIMIT = 60.0

T = TypeVar("T")
#: RLIMIT_AS and MALLOC_ARENA_MAX mean what these tests need on Linux (glibc) only.
LINUX = pytest.mark.skipif(sys.platform != "linux", reason="address-space limits as on Linux")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _config() -> Config:
    return Config.from_env(environ={}, cache_backend="memory")


def bounded(fn: Callable[[], T], limit: float = LIMIT) -> T:
    """``fn()`` in a thread of its own: its result, or its exception raised here. The test
    fails, instead of the run hanging, if it has not finished within ``limit`` seconds."""
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"did not finish within {limit} s")
    done, value = outcome[0]
    if not done:
        raise value
    result: T = value
    return result


# --- the store, and three ways to read it ----------------------------------------------------


@dataclass
class World:
    """A bucket on the session's SeaweedFS, a plain boto3 client to tamper with it, and an
    engine that writes the objects to tamper with."""

    server: Server
    raw: Any
    session: Any
    bucket: str
    other: str
    writer: DeltaStore

    def store(self, prefix: str) -> None:
        """``<prefix>/app-1.zip`` (the reference and its zero-diff delta) and
        ``<prefix>/app-2.zip`` (a delta against it), as deltaglider stores them."""
        self.writer.put(self.bucket, f"{prefix}/app-1.zip", V1)
        self.writer.put(self.bucket, f"{prefix}/app-2.zip", V2)

    def engine(self, cache: ReferenceCache | None = None) -> DeltaStore:
        """A fresh engine: nothing of an earlier read is remembered."""
        return DeltaStore(s3_storage(self.server), cache or MemoryCache(64 * MiB), _config())

    def client(self) -> DeltaGliderClient:
        """A fresh ``create_client()`` (a boto3 client of the shared session)."""
        boto = self.session.client("s3", endpoint_url=self.server.endpoint_url)
        return create_client(boto3_client=boto, deltaglider_config=_config())

    # Tampering, with a plain boto3 client.

    def body(self, key: str, change: Callable[[bytes], bytes]) -> None:
        got = self.raw.get_object(Bucket=self.bucket, Key=key)
        data = got["Body"].read()
        self.raw.put_object(
            Bucket=self.bucket, Key=key, Body=change(data), Metadata=got["Metadata"]
        )

    def meta(self, key: str, change: Callable[[dict[str, str]], None]) -> None:
        meta = dict(self.raw.head_object(Bucket=self.bucket, Key=key)["Metadata"])
        change(meta)
        self.raw.copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": key},
            Metadata=meta,
            MetadataDirective="REPLACE",
        )

    def keys(self, bucket: str | None = None) -> list[str]:
        pages = self.raw.get_paginator("list_objects_v2").paginate(Bucket=bucket or self.bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def world(seaweedfs: Server) -> Iterator[World]:
    session = boto3.Session(
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
        region_name=REGION,
    )
    raw = session.client("s3", endpoint_url=seaweedfs.endpoint_url)
    bucket = f"dg-hostile-{os.getpid()}"
    other = f"{bucket}-other"
    for name in (bucket, other):
        raw.create_bucket(Bucket=name)
    writer = DeltaStore(s3_storage(seaweedfs), MemoryCache(64 * MiB), _config())
    w = World(seaweedfs, raw, session, bucket, other, writer)
    # Another bucket holds the very same reference: a delta sent there must not find it.
    writer.put(other, "p/app-1.zip", V1)
    # Deltaspaces whose references a dg-ref-key may name: the same bytes, and others.
    writer.put(bucket, "v1/app-1.zip", V1)
    writer.put(bucket, "v3/app-3.zip", V3)
    try:
        yield w
    finally:
        writer.close()
        for name in (bucket, other):
            keys = w.keys(name)
            for i in range(0, len(keys), 1000):
                objects = [{"Key": k} for k in keys[i : i + 1000]]
                raw.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
            raw.delete_bucket(Bucket=name)


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Any]:
    """Runs ``deltaglider`` in-process through its entry point; returns (exit code, stderr).
    Its boto3 Session is the shared one (a new Session costs 0.15 s of loading)."""
    s = world.server
    for name, value in {
        "DG_ENDPOINT_URL": s.endpoint_url,
        "AWS_ACCESS_KEY_ID": s.access_key,
        "AWS_SECRET_ACCESS_KEY": s.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "DG_CACHE_BACKEND": "memory",
        "DG_LOG_LEVEL": "WARNING",
        "DG_MAX_ATTEMPTS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "DG_MAX_WORKERS", "DG_CACHE_DIR", "DG_CACHE_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
        capsys.readouterr()
        with mock.patch.object(_s3_session.boto3, "Session", return_value=world.session):
            code = bounded(lambda: cli_main(list(args)))
        err = capsys.readouterr().err
        assert "Traceback" not in err and "internal error" not in err, err
        return code, err

    return run


# --- what a read must do ---------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """How a read of a tampered object must fail: the engine's exception type, a pattern of
    its message (the client and the CLI show the same), and the client's ClientError codes
    when the failure is an S3 condition (get_object's code, then download_file's: boto3
    HEADs first)."""

    error: type[Exception]
    match: str
    s3_codes: tuple[str, str] | None = None


#: The bytes read back exactly, on every surface.
EXACT = None


def assert_outcome(
    world: World,
    key: str,
    expected: bytes,
    outcome: Refused | None,
    tmp_path: Path,
    cli: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Reads ``key`` through the engine, the client and the CLI; each gives exactly
    ``expected`` or fails as ``outcome`` says, leaving no file."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)

    def nothing_left() -> None:
        assert list(out.iterdir()) == [], "a failed download left a file"

    url = f"s3://{world.bucket}/{key}"
    with world.engine() as engine:
        if outcome is EXACT:
            engine.get(world.bucket, key, out / "engine.zip")
            assert (out / "engine.zip").read_bytes() == expected
            _, reader = engine.open(world.bucket, key)
            with reader:
                assert reader.read() == expected
        else:
            with pytest.raises(outcome.error, match=outcome.match):
                engine.get(world.bucket, key, out / "engine.zip")
            nothing_left()
            with pytest.raises(outcome.error, match=outcome.match):
                _, reader = engine.open(world.bucket, key)
                with reader:
                    reader.read()  # raises before it returns: nothing is handed over as good
    client = world.client()
    try:
        if outcome is EXACT:
            body = client.get_object(Bucket=world.bucket, Key=key)["Body"]
            assert body.read() == expected
            client.download_file(world.bucket, key, str(out / "client.zip"))
            assert (out / "client.zip").read_bytes() == expected
        else:
            error: Any = outcome.error
            if outcome.s3_codes is not None:
                error = botocore.exceptions.ClientError
            with pytest.raises(error) as got:
                body = client.get_object(Bucket=world.bucket, Key=key)["Body"]
                body.read()
            with pytest.raises(error) as got_file:
                client.download_file(world.bucket, key, str(out / "client.zip"))
            nothing_left()
            if outcome.s3_codes is not None:
                codes = tuple(e.value.response["Error"]["Code"] for e in (got, got_file))
                assert codes == outcome.s3_codes
            else:
                for e in (got, got_file):
                    assert e.match(outcome.match)
    finally:
        client.close()
    code, err = cli("cp", url, str(out / "cli.zip"), "--no-progress", capsys=capsys)
    if outcome is EXACT:
        assert code == 0, err
        assert (out / "cli.zip").read_bytes() == expected
    else:
        assert code == 1, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        # The CLI's line names the object once ("download failed: URL to FILE: cause"): the
        # cause follows without the key the library's message starts with.
        cli_match = outcome.match.removeprefix(r"app-2\.zip: ")
        assert lines[0].startswith(f"download failed: {url} to "), err
        assert re.search(cli_match, lines[0]), err
        nothing_left()


# --- tampered objects and metadata -----------------------------------------------------------

DELTA, REF = "app-2.zip.delta", "reference.bin"


def _flip(position: int, bit: int = 0) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        i = position % len(data)
        return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]

    return change


def _set(field: str, value: str) -> Callable[[dict[str, str]], None]:
    return lambda meta: meta.update({field: value})


def _drop(field: str) -> Callable[[dict[str, str]], None]:
    def change(meta: dict[str, str]) -> None:
        del meta[field]

    return change


NOT_DECODED = Refused(IntegrityError, r"app-2\.zip: the delta does not decode")
BAD_DELTA = Refused(IntegrityError, r"app-2\.zip: (the delta does not decode|sha256 mismatch)")
BAD_REF = Refused(IntegrityError, r"reference\.bin: the reference is not the one the delta was")
NO_REF = Refused(ObjectNotFound, r"reference\.bin does not exist", ("NoSuchKey", "404"))
WRONG_BYTES = Refused(IntegrityError, r"app-2\.zip: sha256 mismatch")


def damaged(*fields: str) -> Refused:
    return Refused(
        IntegrityError,
        rf"app-2\.zip\.delta: the delta's metadata is damaged \(missing or invalid: "
        rf"{', '.join(fields)}\)",
    )


@dataclass(frozen=True)
class Tamper:
    """What is done to ``<prefix>/<target>``: its bytes changed or replaced by another
    object's (``<prefix>/<bytes_of>``), its metadata changed (given the world and the prefix
    too, to name other objects), or it is removed."""

    target: str
    body: Callable[[bytes], bytes] | None = None
    bytes_of: str | None = None
    meta: Callable[[World, str, dict[str, str]], None] | None = None
    delete: bool = False

    def apply(self, world: World, prefix: str) -> None:
        key = f"{prefix}/{self.target}"
        if self.bytes_of is not None:
            src = world.raw.get_object(Bucket=world.bucket, Key=f"{prefix}/{self.bytes_of}")
            world.body(key, lambda _: bytes(src["Body"].read()))
        if self.body is not None:
            world.body(key, self.body)
        if self.meta is not None:
            change = self.meta
            world.meta(key, lambda m: change(world, prefix, m))
        if self.delete:
            world.raw.delete_object(Bucket=world.bucket, Key=key)


def body(target: str, change: Callable[[bytes], bytes]) -> Tamper:
    return Tamper(target, body=change)


def meta(change: Callable[[dict[str, str]], None], target: str = DELTA) -> Tamper:
    return Tamper(target, meta=lambda _w, _p, m: change(m))


def ref_key(value: Callable[[World, str], str]) -> Tamper:
    return Tamper(DELTA, meta=lambda w, p, m: m.update({"dg-ref-key": value(w, p)}))


CASES: dict[str, tuple[Tamper, Refused | None]] = {
    # The delta's bytes.
    "delta-bit-flip-magic": (body(DELTA, _flip(0)), NOT_DECODED),
    "delta-bit-flip-header": (body(DELTA, _flip(6, 3)), BAD_DELTA),
    "delta-bit-flip-middle": (body(DELTA, _flip(700, 7)), BAD_DELTA),
    "delta-bit-flip-last-byte": (body(DELTA, _flip(-1, 5)), BAD_DELTA),
    "delta-truncated-to-half": (body(DELTA, lambda d: d[: len(d) // 2]), NOT_DECODED),
    "delta-truncated-in-header": (body(DELTA, lambda d: d[:4]), NOT_DECODED),
    "delta-empty": (body(DELTA, lambda d: b""), NOT_DECODED),
    "delta-with-bytes-appended": (body(DELTA, lambda d: d + b"\x00\x01trailing"), NOT_DECODED),
    "delta-of-another-file": (  # a valid delta of the same reference: app-1's
        Tamper(DELTA, bytes_of="app-1.zip.delta"),
        Refused(IntegrityError, rf"app-2\.zip: got {len(V1)} bytes, expected {len(V2)}"),
    ),
    # The reference's bytes.
    "reference-bit-flip": (body(REF, _flip(len(V1) // 3, 2)), BAD_REF),
    "reference-truncated": (body(REF, lambda d: d[:-1]), BAD_REF),
    "reference-empty": (body(REF, lambda d: b""), BAD_REF),
    "reference-replaced-by-another-release": (body(REF, lambda d: V3), BAD_REF),
    "reference-deleted": (Tamper(REF, delete=True), NO_REF),
    # The reference's metadata is not what a read trusts: its bytes are checked.
    "reference-metadata-stripped": (Tamper(REF, meta=lambda w, p, m: m.clear()), EXACT),
    "reference-metadata-wrong-sha256": (meta(_set("dg-file-sha256", _sha(V3)), REF), EXACT),
    # The delta's metadata: wrong values.
    "wrong-dg-file-sha256": (meta(_set("dg-file-sha256", _sha(V3))), WRONG_BYTES),
    "wrong-dg-ref-sha256": (meta(_set("dg-ref-sha256", _sha(V3))), BAD_REF),
    "dg-file-size-too-small": (
        meta(_set("dg-file-size", "1000")),
        Refused(IntegrityError, r"does not decode: delta reconstructs more than max_output_size"),
    ),
    "dg-file-size-one-too-many": (
        meta(_set("dg-file-size", str(len(V2) + 1))),
        Refused(IntegrityError, rf"got {len(V2)} bytes, expected {len(V2) + 1}"),
    ),
    "dg-file-size-10e30": (
        meta(_set("dg-file-size", str(10**30))),
        Refused(IntegrityError, rf"got {len(V2)} bytes, expected {10**30}"),
    ),
    "dg-file-size-5000-digits": (meta(_set("dg-file-size", "9" * 5000)), damaged("dg-file-size")),
    "dg-file-size-negative": (meta(_set("dg-file-size", "-118595")), damaged("dg-file-size")),
    "dg-file-size-not-a-number": (meta(_set("dg-file-size", "12e4")), damaged("dg-file-size")),
    "dg-file-sha256-not-hex": (meta(_set("dg-file-sha256", "z" * 64)), damaged("dg-file-sha256")),
    "dg-ref-sha256-too-short": (
        meta(_set("dg-ref-sha256", _sha(V1)[:-1])),
        damaged("dg-ref-sha256"),
    ),
    "dg-file-sha256-upper-case": (meta(_set("dg-file-sha256", _sha(V2).upper())), EXACT),
    # An older spelling of a field does not override the current one.
    "legacy-spelling-beside-the-current-one": (meta(_set("dg_file_size", "1")), EXACT),
    # dg-ref-key pointing elsewhere.
    "dg-ref-key-to-another-bucket": (
        ref_key(lambda w, p: f"{w.other}/p/reference.bin"),
        Refused(ObjectNotFound, r"-other/p/reference\.bin does not exist", ("NoSuchKey", "404")),
    ),
    "dg-ref-key-as-an-s3-url": (
        ref_key(lambda w, p: f"s3://{w.other}/p/reference.bin"),
        Refused(
            ObjectNotFound, r"/s3://.*-other/p/reference\.bin does not exist", ("NoSuchKey", "404")
        ),
    ),
    # Another deltaspace's reference: followed (as the original does), and checked.
    "dg-ref-key-to-the-same-reference-elsewhere": (ref_key(lambda w, p: "v1/reference.bin"), EXACT),
    "dg-ref-key-to-another-reference": (ref_key(lambda w, p: "v3/reference.bin"), BAD_REF),
    "dg-ref-key-to-nothing": (
        ref_key(lambda w, p: "nowhere/reference.bin"),
        Refused(ObjectNotFound, r"nowhere/reference\.bin does not exist", ("NoSuchKey", "404")),
    ),
    "dg-ref-key-with-dot-dot": (
        # The other bucket holds the right reference: a store that resolved ``..`` would
        # serve it. SeaweedFS refuses the key; AWS S3 would look up a literal key.
        ref_key(lambda w, p: f"../{w.other}/p/reference.bin"),
        Refused(
            StorageError, r"\.\./.*reference\.bin failed: InvalidRequest", ("InvalidRequest", "400")
        ),
    ),
    "dg-ref-key-to-a-delta": (ref_key(lambda w, p: f"{p}/app-1.zip.delta"), damaged("dg-ref-key")),
    # Oversized metadata: a reference key as long as keys go, and a header block of several KB
    # (more than S3 allows; SeaweedFS stores it) of fields a read does not need.
    "dg-ref-key-1000-bytes": (
        ref_key(lambda w, p: "k" * 986 + "/reference.bin"),
        Refused(ObjectNotFound, r"k{986}/reference\.bin does not exist", ("NoSuchKey", "404")),
    ),
    "metadata-block-of-8-kb": (
        meta(lambda m: m.update({f"x-pad-{i}": "v" * 500 for i in range(16)})),
        EXACT,
    ),
    "dg-original-name-of-4-kb": (meta(_set("dg-original-name", "n" * 4096)), EXACT),
    "dg-ref-key-empty": (ref_key(lambda w, p: ""), damaged("dg-ref-key")),
    # Each field missing in turn: those a delta needs are named; the others are informational.
    **{
        f"missing-{field}": (
            meta(_drop(field)),
            damaged(field)
            if field in ("dg-file-sha256", "dg-file-size", "dg-ref-key", "dg-ref-sha256")
            else EXACT,
        )
        for field in (
            "dg-file-sha256",
            "dg-file-size",
            "dg-ref-key",
            "dg-ref-sha256",
            "dg-tool",
            "dg-original-name",
            "dg-created-at",
            "dg-delta-size",
            "dg-delta-cmd",
        )
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_object_never_reads_as_wrong_bytes(
    world: World,
    case: str,
    tmp_path: Path,
    cli: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each tampering of a stored delta, reference or their metadata: the engine, the client
    and the CLI all return the stored bytes exactly (when what was changed is not trusted) or
    all fail with the named error and leave no file."""
    tamper, outcome = CASES[case]
    prefix = f"t-{case}"
    world.store(prefix)
    tamper.apply(world, prefix)
    bounded(
        lambda: assert_outcome(world, f"{prefix}/app-2.zip", V2, outcome, tmp_path, cli, capsys)
    )


def test_bit_flips_anywhere_in_a_delta_never_give_wrong_bytes(world: World) -> None:
    """One bit flipped at positions spread over a whole delta (header, window headers,
    instructions, data, checksums): each read returns the stored bytes exactly (the flip hit
    something unused) or raises IntegrityError; most are caught."""
    prefix = "flips"
    world.store(prefix)
    key = f"{prefix}/{DELTA}"
    got = world.raw.get_object(Bucket=world.bucket, Key=key)
    original, metadata = got["Body"].read(), got["Metadata"]
    positions = sorted({*range(0, len(original), max(1, len(original) // 40)), len(original) - 1})
    caught = 0
    with world.engine() as engine:
        for n, position in enumerate(positions):
            tampered = _flip(position, n % 8)(original)
            world.raw.put_object(Bucket=world.bucket, Key=key, Body=tampered, Metadata=metadata)
            try:
                data = bounded(lambda: get_bytes(engine, world.bucket, f"{prefix}/app-2.zip"))
            except IntegrityError:
                caught += 1
            else:
                assert data == V2, f"wrong bytes after a flip at {position}"
    assert caught >= len(positions) * 3 // 4, (caught, len(positions))


# --- huge sizes, in processes with limited memory --------------------------------------------


def _varint(n: int) -> bytes:
    """VCDIFF's integer: base 128, most significant digit first."""
    digits = [n & 0x7F]
    while n := n >> 7:
        digits.append(0x80 | (n & 0x7F))
    return bytes(reversed(digits))


def expanding_delta(windows: int, size: int = WINDOW, byte: int = 0) -> bytes:
    """A VCDIFF delta (RFC 3284; no secondary compression, no source) of ``windows``
    windows, each one RUN instruction that makes ``size`` copies of ``byte``: 12 bytes per
    64 MiB decoded."""
    inst = b"\x00" + _varint(size)  # code 0 of the default table: RUN, its size after it
    sections = _varint(1) + _varint(len(inst)) + _varint(0) + bytes([byte]) + inst
    encoding = _varint(size) + b"\x00" + sections  # target size, delta indicator, sections
    return b"\xd6\xc3\xc4\x00\x00" + (b"\x00" + _varint(len(encoding)) + encoding) * windows


CHILD = r"""
import json, sys
from deltaglider import create_client
from deltaglider.cache import MemoryCache
from deltaglider.config import Config
from deltaglider.engine import DeltaStore
from deltaglider.storage.s3 import S3Storage

cfg = json.loads(sys.argv[1])
config = Config.from_env(environ={}, cache_backend="memory")
creds = dict(aws_access_key_id=cfg["access"], aws_secret_access_key=cfg["secret"])
delivered = [0]

class Sink:
    def write(self, data):
        delivered[0] += len(data)
        return len(data)

def engine():
    storage = S3Storage(endpoint_url=cfg["endpoint"], region="us-east-1", max_attempts=2, **creds)
    return DeltaStore(storage, MemoryCache(256 << 20), config)

def client():
    return create_client(endpoint_url=cfg["endpoint"], region_name="us-east-1",
                         deltaglider_config=config, **creds)

def engine_file(key):
    with engine() as e:
        e.get(cfg["bucket"], key, cfg["out"] + "/engine.bin")

def engine_to_stream(key):
    with engine() as e:
        e.get(cfg["bucket"], key, Sink())

def engine_open(key):
    with engine() as e:
        _, reader = e.open(cfg["bucket"], key)
        with reader:
            while chunk := reader.read(1 << 20):
                delivered[0] += len(chunk)

def client_get_object(key):
    body = client().get_object(Bucket=cfg["bucket"], Key=key)["Body"]
    for chunk in body.iter_chunks(1 << 20):
        delivered[0] += len(chunk)

def client_download_file(key):
    client().download_file(cfg["bucket"], key, cfg["out"] + "/client.bin")

results = []
for surface, key in cfg["reads"]:
    delivered[0] = 0
    try:
        globals()[surface](key)
        results.append([surface, key, None, "", delivered[0]])
    except Exception as exc:
        results.append([surface, key, type(exc).__name__, str(exc), delivered[0]])
# The peak of this program's own memory: VmHWM starts again at exec (ru_maxrss would also
# count the pages of the test process this one was forked from).
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
rss = int(hwm.split()[1]) << 10
print(json.dumps({"results": results, "maxrss": rss}))
"""


#: First in every limited process: the address-space limit, and the codec's thread count pinned
#: to 2 (a streamed decode holds about one 64 MiB window per decoding thread, plus two: pinned,
#: the bounds checked here hold on any machine).
PRELUDE = f"""
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({AS_LIMIT}, {AS_LIMIT}))
os.cpu_count = lambda: 2
"""


def limited(code: str, args: list[str], env: dict[str, str], **kw: Any) -> Any:
    """Python ``code`` (after PRELUDE) with ``args``, in a process of its own, time-limited."""
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + code, *args],
        env=env,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT,
        text=True,
        **kw,
    )


def child_env(world: World) -> dict[str, str]:
    env: dict[str, str] = world.server.env(
        DG_ENDPOINT_URL=world.server.endpoint_url,
        DG_CACHE_BACKEND="memory",
        DG_LOG_LEVEL="WARNING",
        DG_MAX_ATTEMPTS="2",
        MALLOC_ARENA_MAX="2",  # predictable address space: fewer malloc arenas
    )
    return env


def read_in_child(world: World, reads: list[tuple[str, str]], out: Path) -> dict[str, Any]:
    cfg = {
        "endpoint": world.server.endpoint_url,
        "access": world.server.access_key,
        "secret": world.server.secret_key,
        "bucket": world.bucket,
        "out": str(out),
        "reads": reads,
    }
    done = limited(CHILD, [json.dumps(cfg)], child_env(world))
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def cli_in_child(world: World, *args: str, **kw: Any) -> Any:
    """``deltaglider`` (its entry point, as the installed command runs it) in a limited
    process."""
    code = "from deltaglider.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return limited(code, [*args, "--no-progress"], child_env(world), **kw)


@pytest.mark.slow
@LINUX
def test_huge_declared_sizes_are_refused_without_allocating(world: World, tmp_path: Path) -> None:
    """A delta that declares 4 GiB (64 windows of 64 MiB, 780 bytes in all) under a
    ``dg-file-size`` of 118,595 is refused by that bound before any window is decoded: the
    engine (to a file, as a stream) and the client (get_object, download_file) raise
    IntegrityError having delivered nothing, in a process limited to 1 GiB of address space;
    ``deltaglider cp`` exits 1 naming it. A ``dg-ref-key`` naming a 64 MiB object that is no
    reference is refused without fetching it; one naming a 64 MiB object called
    ``reference.bin`` (not the right one) is read once and refused by its sha256. The
    process's peak RSS stays under twice that object plus 200 MiB."""
    small = expanding_delta(3, 1000, 7)  # the hand-made format is one xdelta3 decodes
    assert Decoder(b"any reference").decode(small, max_output_size=3000) == b"\x07" * 3000
    world.store("expand")
    world.body(f"expand/{DELTA}", lambda _: expanding_delta(64))
    # A huge object, twice: once under a plain name, once named like a reference.
    huge = b"\x5a" * (WINDOW + 1)
    world.raw.put_object(Bucket=world.bucket, Key="big/reference.bin", Body=huge)
    world.raw.copy_object(
        Bucket=world.bucket, Key="big/disk.iso", CopySource=f"{world.bucket}/big/reference.bin"
    )
    for name, target in (("to-iso", "big/disk.iso"), ("to-ref", "big/reference.bin")):
        world.store(name)
        world.meta(f"{name}/{DELTA}", _set("dg-ref-key", target))
    # The plain name: refused from the metadata alone; the object is never fetched.
    with world.engine() as engine:
        fetched: list[str] = []
        real_get = engine.storage.get

        def get(bucket: str, key: str, *a: Any, **kw: Any) -> Any:
            fetched.append(key)
            return real_get(bucket, key, *a, **kw)

        refused = pytest.raises(IntegrityError, match=r"damaged \(missing or invalid: dg-ref-key")
        with mock.patch.object(engine.storage, "get", get), refused:
            bounded(lambda: get_bytes(engine, world.bucket, "to-iso/app-2.zip"))
        assert "big/disk.iso" not in fetched
    out = tmp_path / "out"
    out.mkdir()
    surfaces = ["engine_file", "engine_open", "client_get_object", "client_download_file"]
    reads = [(s, "expand/app-2.zip") for s in surfaces] + [("engine_open", "to-ref/app-2.zip")]
    report = read_in_child(world, reads, out)
    for surface, key, error, message, delivered in report["results"]:
        assert error == "IntegrityError", (surface, key, error, message)
        if key.startswith("expand"):
            assert "more than max_output_size=118595" in message, message
        else:
            assert "the reference is not the one the delta was made against" in message
        assert delivered == 0
    assert list(out.iterdir()) == []
    assert report["maxrss"] < 2 * WINDOW + 200 * MiB, report["maxrss"] // MiB
    # The command, in a process of its own under the same limit.
    done = cli_in_child(world, "cp", f"s3://{world.bucket}/expand/app-2.zip", str(out / "x.zip"))
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"download failed: s3://{world.bucket}/expand/app-2.zip to "), line
    assert "the delta does not decode" in line
    assert "more than max_output_size=118595" in line
    assert list(out.iterdir()) == []


@pytest.mark.slow
@LINUX
def test_huge_recorded_size_streams_in_bounded_memory(world: World, tmp_path: Path) -> None:
    """A delta that decodes to 1 GiB and whose metadata claims exactly that size, with the
    sha256 of other bytes: the engine (to a stream) and the client's ``get_object`` hand the
    bytes on as they are rebuilt, in memory bounded by a few 64 MiB windows (a process
    limited to 1 GiB of address space, peak RSS checked), and raise IntegrityError at the end;
    ``deltaglider cp ... -`` exits 1 naming the mismatch."""
    size = 16 * WINDOW
    world.store("stream")
    key = f"stream/{DELTA}"
    world.body(key, lambda _: expanding_delta(16))

    def claim(meta: dict[str, str]) -> None:
        meta.update({"dg-file-size": str(size), "dg-file-sha256": _sha(b"other bytes")})

    world.meta(key, claim)
    out = tmp_path / "out"
    out.mkdir()
    reads = [("engine_to_stream", "stream/app-2.zip"), ("client_get_object", "stream/app-2.zip")]
    report = read_in_child(world, reads, out)
    for surface, _, error, message, delivered in report["results"]:
        assert error == "IntegrityError", (surface, error, message)
        assert "sha256 mismatch" in message
        assert delivered == size  # streamed through, and refused at the end
    assert report["maxrss"] < 6 * WINDOW, report["maxrss"] // MiB
    done = cli_in_child(
        world, "cp", f"s3://{world.bucket}/stream/app-2.zip", "-", stdout=subprocess.DEVNULL
    )
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "stream/app-2.zip: sha256 mismatch" in line


# --- the reference cache ---------------------------------------------------------------------


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def _symlink(path: Path, to: Path | str) -> None:
    path.unlink()
    path.symlink_to(to)


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "x").write_bytes(V1)


CACHE_TAMPERS: dict[str, Callable[[Path, Path, Path], None]] = {
    # (the entry, another valid entry of the same key, an unrelated file)
    "bit-flip": lambda p, o, f: _replace(p, _flip(len(p.read_bytes()) // 2)(p.read_bytes())),
    "bit-flip-in-the-nonce": lambda p, o, f: _replace(p, _flip(3)(p.read_bytes())),
    "truncated-to-nothing": lambda p, o, f: _replace(p, b""),
    "truncated-inside-the-nonce": lambda p, o, f: _replace(p, p.read_bytes()[:7]),
    "truncated-by-one-byte": lambda p, o, f: _replace(p, p.read_bytes()[:-1]),
    "random-bytes": lambda p, o, f: _replace(p, os.urandom(len(p.read_bytes()))),
    "another-entry-copied-over": lambda p, o, f: _replace(p, o.read_bytes()),
    "plaintext-swapped-in": lambda p, o, f: _replace(p, V1),
    "a-symlink-to-another-file": lambda p, o, f: _symlink(p, f),
    "a-symlink-loop": lambda p, o, f: _symlink(p, p.name),
    "a-folder": lambda p, o, f: _folder(p),
}


@pytest.mark.parametrize("case", list(CACHE_TAMPERS))
def test_tampered_cache_entries_are_never_used(world: World, case: str, tmp_path: Path) -> None:
    """A reference cache entry (encrypted, authenticated with its sha256) tampered with on
    disk is never used: with the reference gone from the bucket, the read fails with
    ObjectNotFound instead of using it, and a file a symlinked entry pointed to is left
    alone; with the reference back, the read returns the exact bytes and the entry is
    written again, valid (or, where a folder squats its place, the read still succeeds)."""
    prefix = f"cache-{case}"
    world.store(prefix)
    folder, key = tmp_path / "cache", os.urandom(32)
    precious = tmp_path / "precious"
    precious.write_bytes(b"not a cache entry")
    cache = FilesystemCache(folder, 256 * MiB, key)
    with world.engine(cache) as engine:
        assert bounded(lambda: get_bytes(engine, world.bucket, f"{prefix}/app-2.zip")) == V2
    entry = cache._path(_sha(V1))
    assert entry.is_file()
    cache.put(_sha(V3), V3)
    CACHE_TAMPERS[case](entry, cache._path(_sha(V3)), precious)
    ref = f"{prefix}/{REF}"
    saved = world.raw.get_object(Bucket=world.bucket, Key=ref)
    world.raw.delete_object(Bucket=world.bucket, Key=ref)
    refused = pytest.raises(ObjectNotFound, match=r"reference\.bin does not exist")
    with world.engine(FilesystemCache(folder, 256 * MiB, key)) as engine, refused:
        bounded(lambda: get_bytes(engine, world.bucket, f"{prefix}/app-2.zip"))
    assert precious.read_bytes() == b"not a cache entry"
    world.raw.put_object(
        Bucket=world.bucket, Key=ref, Body=saved["Body"].read(), Metadata=saved["Metadata"]
    )
    fresh = FilesystemCache(folder, 256 * MiB, key)
    with world.engine(fresh) as engine:
        assert bounded(lambda: get_bytes(engine, world.bucket, f"{prefix}/app-2.zip")) == V2
    if case != "a-folder":
        assert fresh.get(_sha(V1)) == V1
        assert entry.is_file() and not entry.is_symlink()
    assert precious.read_bytes() == b"not a cache entry"


def test_cli_cache_heals_tampering_and_refuses_a_bad_key(
    world: World,
    tmp_path: Path,
    cli: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``deltaglider cp`` with the shared filesystem cache: entries are 0600 in 0700 folders;
    after its entry is flipped and its folders opened to everyone, the next download is exact,
    the folders are 0700 again and the entry valid again. A malformed
    ``DG_CACHE_ENCRYPTION_KEY`` is a usage error, one line naming it."""
    world.store("cli-cache")
    key = os.urandom(32)
    folder = tmp_path / "cache"
    monkeypatch.setenv("DG_CACHE_BACKEND", "filesystem")
    monkeypatch.setenv("DG_CACHE_DIR", str(folder))
    monkeypatch.setenv("DG_CACHE_ENCRYPTION_KEY", base64.b64encode(key).decode())
    url = f"s3://{world.bucket}/cli-cache/app-2.zip"

    def download(n: int) -> None:
        code, err = cli("cp", url, str(tmp_path / f"{n}.zip"), "--no-progress", capsys=capsys)
        assert code == 0, err
        assert (tmp_path / f"{n}.zip").read_bytes() == V2

    download(1)
    (entry,) = folder.rglob("*.ref")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    folders = [folder, entry.parent]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o700 for f in folders)
    _replace(entry, _flip(40)(entry.read_bytes()))
    for f in folders:
        f.chmod(0o777)
    download(2)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o700 for f in folders)
    assert FilesystemCache(folder, 256 * MiB, key).get(_sha(V1)) == V1
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        monkeypatch.setenv("DG_CACHE_ENCRYPTION_KEY", bad)
        code, err = cli("cp", url, str(tmp_path / "3.zip"), capsys=capsys)
        assert code == 2, err
        (line,) = err.strip().splitlines()
        assert line.startswith("deltaglider: error: DG_CACHE_ENCRYPTION_KEY "), line
        assert not (tmp_path / "3.zip").exists()


# --- malformed URLs, keys and options --------------------------------------------------------

#: (arguments, exit code, pattern of the one message line). ``{b}`` is the bucket, ``{o}`` the
#: other bucket, ``{f}`` a local file, ``{d}`` a local folder that must stay empty.
USAGE: list[tuple[tuple[str, ...], int, str]] = [
    (("cp", "{f}", "s3://"), 2, r"Invalid value for DST: 's3://' names no bucket"),
    (("cp", "s3:///key.zip", "{d}/x.zip"), 2, r"'s3:///key\.zip' names no bucket"),
    (("cp", "{f}", "s3://bad bucket/x.zip"), 2, r"'bad bucket' is not a valid bucket name"),
    (("cp", "{f}", "s3://a*b/x.zip"), 2, r"'a\*b' is not a valid bucket name"),
    (("rm", "s3://{b}"), 2, r"names no object \(use --recursive for a bucket\)"),
    (("cp", "{f}", "s3://{b}/x.zip", "--bogus"), 2, r"No such option '--bogus'"),
    (("cp", "{f}", "s3://{b}/x.zip", "--max-workers", "0"), 2, r"'--max-workers': 0 is not in"),
    (("cp", "{f}", "s3://{b}/x.zip", "--max-workers", "-3"), 2, r"'--max-workers': -3 is not"),
    (("cp", "{f}", "s3://{b}/x.zip", "--max-workers", "257"), 2, r"'--max-workers': 257 is not"),
    (("cp", "{f}", "s3://{b}/x.zip", "--max-workers", "abc"), 2, r"'abc' is not a valid integer"),
    (("cp", "{f}", "s3://{b}/x.zip", "--max-workers", ""), 2, r"'' is not a valid integer"),
    (("cp", "{f}", "s3://{b}/x.zip", "--max-workers", "1.5"), 2, r"'1\.5' is not a valid integer"),
    (("--max-workers", "9999", "ls", "s3://{b}/"), 2, r"'--max-workers'.*9999 is not in the range"),
    (("cp", "{f}", "s3://{b}/x.zip", "--max-ratio", "0"), 2, r"'--max-ratio': 0\.0 is not in"),
    (("cp", "{f}", "s3://{b}/x.zip", "--max-ratio", "nan"), 2, r"'nan' is not a number in"),
    (("cp", "{f}", "s3://{b}/x.zip", "--cli-read-timeout", "-1"), 2, r"-1\.0 is not in the range"),
    (("cp", "{f}", "s3://{b}/x.zip", "--metadata", "{{bad json"), 2, r"not valid JSON"),
    (("cp", "{f}", "s3://{b}/x.zip", "--endpoint-url", "not-a-url"), 2, r"'not-a-url' is neither"),
    (("cp", "{f}", "s3://{b}/x.zip", "--endpoint-url", "ftp://127.0.0.1:1"), 2, r"is neither"),
    (("cp", "{f}", "s3://{b}/x.zip", "--endpoint-url", "http://[::1"), 2, r"is neither"),
    # Keys the store cannot hold.
    (("cp", "{f}", "s3://{b}/" + "k" * 1025), 1, r"the object key is longer than 1024 bytes"),
    (("cp", "s3://{b}/" + "k" * 1025, "{d}/x.zip"), 1, r"the object key is longer than 1024"),
    (("cp", "{f}", "s3://{b}/.deltaglider/x.zip"), 1, r"keys under \.deltaglider/ are reserved"),
    (("cp", "s3://{b}/folder/", "{d}/x.zip"), 2, r"folder/ is a prefix; use --recursive"),
    (("cp", "{f}", "s3://{b}/x.zip", "--metadata", "dg-x=1"), 1, r"'dg-x' is reserved"),
    (("cp", "{f}", "s3://{b}/x.zip", "--metadata", "k=\u00e9"), 1, r"must be printable ASCII"),
    (("cp", "{f}", "s3://{b}/nul\x00.txt"), 1, r"nul\x00\.txt failed: InvalidRequest"),
    (("cp", "s3://{b}/nul\x00.zip", "{d}/x.zip"), 1, r"nul\x00\.zip failed: 400: Bad Request"),
    # ``..`` must never reach another bucket (the other bucket holds p/app-1.zip).
    (("cp", "{f}", "s3://{b}/../{o}/evil.zip"), 1, r"\.\./.*failed: 400: Bad Request"),
    (("cp", "s3://{b}/../{o}/p/app-1.zip", "{d}/x.zip"), 1, r"\.\./.*failed: 400: Bad Request"),
    (("cp", "{f}", "s3://{b}/p/./x.zip"), 1, r"/\./.*failed: 400: Bad Request"),
]


@pytest.mark.parametrize(
    ("args", "code", "pattern"),
    USAGE,
    ids=[f"{i}-{' '.join(a)[:40]}" for i, (a, _, _) in enumerate(USAGE)],
)
def test_malformed_urls_keys_and_options(
    world: World,
    tmp_path: Path,
    cli: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    code: int,
    pattern: str,
) -> None:
    """Each malformed URL, key or option: the usage errors exit 2, what the store cannot hold
    exits 1; either way one line says what is wrong (click's usage lines aside), no traceback,
    nothing written locally, and nothing stored (``..`` reaches no other bucket)."""
    local = tmp_path / "a.zip"
    local.write_bytes(V1)
    folder = tmp_path / "d"
    folder.mkdir()
    before = {b: world.keys(b) for b in (world.bucket, world.other)}
    filled = [a.format(b=world.bucket, o=world.other, f=local, d=folder) for a in args]
    got, err = cli(*filled, capsys=capsys)
    assert got == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    usage = [ln for ln in lines if ln.startswith(("Usage: ", "Try '"))]
    (message,) = [ln for ln in lines if ln not in usage]
    assert re.search(pattern, message), message
    assert list(folder.iterdir()) == []
    assert {b: world.keys(b) for b in (world.bucket, world.other)} == before


def test_the_executable_reports_usage_errors_in_one_line(world: World, tmp_path: Path) -> None:
    """The installed ``deltaglider``, in a process of its own (time-limited): an invalid
    endpoint URL and an invalid ``--max-workers`` exit 2 with one error line, no traceback."""
    exe = shutil.which("deltaglider", path=str(Path(sys.executable).parent)) or "deltaglider"
    for args, pattern in (
        (("--endpoint-url", "not-a-url", "ls", "s3://x/"), "deltaglider: error: endpoint URL"),
        (("ls", f"s3://{world.bucket}/", "--max-workers", "0"), "Error: Invalid value for"),
    ):
        done = subprocess.run(
            [exe, *args], env=child_env(world), capture_output=True, text=True, timeout=TIMEOUT
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        (line,) = [ln for ln in done.stderr.splitlines() if "rror" in ln]
        assert line.startswith(pattern), done.stderr
