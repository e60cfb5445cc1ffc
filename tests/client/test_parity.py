"""Parity of ``create_client()`` with ``boto3.client("s3")``.

The same calls run on a plain boto3 client and on a deltaglider client, against the same
SeaweedFS server (each on a bucket of its own), and the two outcomes are compared field by
field by :func:`assert_parity`: every key present in both, the same types, the same values
(sizes, lengths, metadata, content types, key lists, prefixes, counts, truncation, error codes
and HTTP statuses...), ETags quoted hex, times datetimes. Errors must be ClientErrors of the
same class with the same code and status.

The only allowances are the documented differences, :data:`deltaglider.client.DIFFERENCES`:
:data:`HONOURED` says, for each of them by name, what the comparison lets differ, and a test
checks that the two stay in step. Responses of deltaglider may carry one extra key,
``DeltaGliderInfo``. Nothing else may differ.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import botocore.exceptions
import pytest
from botocore.config import Config
from client_conftest import Buckets, Pair, Side, make_pair, physical_keys, plain_client
from data import noise, release

from deltaglider.client import BEHAVIOURS, DIFFERENCES, DeltaGliderClient

# --- the comparison --------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    """What one documented difference lets differ (keys are response field names)."""

    absent: frozenset[str] = frozenset()  #: fields deltaglider may leave out
    absent_prefix: str | None = None  #: fields starting with this deltaglider may leave out
    values: frozenset[str] = frozenset()  #: fields whose values may differ (types may not)
    types: frozenset[str] = frozenset()  #: fields whose types may differ
    only: dict[str, frozenset[str]] = field(default_factory=dict)  #: dict field: keys compared
    dg_values: dict[str, Any] = field(default_factory=dict)  #: deltaglider's value is this
    #: values may differ only where deltaglider's is this default (the call gave none)
    dg_defaults: dict[str, Any] = field(default_factory=dict)
    extra: frozenset[str] = frozenset()  #: fields only deltaglider's may have


#: How the parity comparison honours each entry of ``DIFFERENCES`` (and nothing more).
HONOURED: dict[str, Allowance] = {
    "ETag": Allowance(values=frozenset({"ETag"})),  # format still checked
    "VersionId": Allowance(absent=frozenset({"VersionId"})),
    "Checksum*": Allowance(absent_prefix="Checksum"),
    "ServerSideEncryption": Allowance(absent=frozenset({"ServerSideEncryption"})),
    "StorageClass": Allowance(
        values=frozenset({"StorageClass"}), dg_values={"StorageClass": "STANDARD"}
    ),
    "Owner": Allowance(absent=frozenset({"Owner"})),
    "ResponseMetadata": Allowance(only={"ResponseMetadata": frozenset({"HTTPStatusCode"})}),
    "get_object Body": Allowance(types=frozenset({"Body"})),
    "TagCount": Allowance(absent=frozenset({"TagCount"})),
    "ContentType": Allowance(dg_defaults={"ContentType": "binary/octet-stream"}),
    "Error details": Allowance(only={"Error": frozenset({"Code", "Message", "Key", "BucketName"})}),
    # Checked by _compare itself: present only in deltaglider's, with exactly INFO_FIELDS.
    "DeltaGliderInfo": Allowance(),
    "list_objects extras": Allowance(
        extra=frozenset({"KeyCount", "NextContinuationToken", "Metadata"})
    ),
}

ABSENT = frozenset().union(*(a.absent for a in HONOURED.values()))
ABSENT_PREFIXES = tuple(a.absent_prefix for a in HONOURED.values() if a.absent_prefix)
FREE_VALUES = frozenset().union(*(a.values for a in HONOURED.values()))
FREE_TYPES = frozenset().union(*(a.types for a in HONOURED.values()))
ONLY = {k: v for a in HONOURED.values() for k, v in a.only.items()}
DG_VALUES = {k: v for a in HONOURED.values() for k, v in a.dg_values.items()}
DG_DEFAULTS = {k: v for a in HONOURED.values() for k, v in a.dg_defaults.items()}
EXTRA = frozenset().union(*(a.extra for a in HONOURED.values()))

#: Not differences: what two runs of the same program see differently anyway.
TIMES = frozenset({"LastModified", "CreationDate"})  # both datetimes
TOKENS = frozenset({"ContinuationToken", "NextContinuationToken", "NextToken"})  # opaque strings

INFO_FIELDS = {
    "IsDelta",
    "OriginalSize",
    "StoredSize",
    "Savings",
    "ReferenceKey",
    "PhysicalKey",
    # the original DeltaGlider's names of the same figures
    "OriginalSizeMB",
    "StoredSizeMB",
    "SavingsPercent",
    "DeltaRatio",
    "CompressionRatio",
    "StoredAs",
}
#: DeltaGliderInfo of a write (put, copy) also names what it did; of a delete, only whether
#: there was an object.
WRITE_INFO_FIELDS = INFO_FIELDS | {"Operation"}
DELETE_INFO_FIELDS = {"Deleted"}
DG_ETAG = re.compile(r'^"[0-9a-f]{32}(-\d+)?"$')
# SeaweedFS leaves the quotes out of CopyObjectResult's ETag (S3 has them): a server quirk.
S3_ETAG = re.compile(r'^"?[0-9a-f]{32}(-\d+)?"?$')


def test_honoured_are_the_documented_differences() -> None:
    """One list: every allowance of this suite is a documented difference, and back."""
    assert set(HONOURED) == set(DIFFERENCES)
    assert all(isinstance(text, str) and text for text in DIFFERENCES.values())


def _compare(ref: Any, got: Any, path: str, names: dict[str, str], out: list[str]) -> None:
    key = path.rsplit(".", 1)[-1].split("[", 1)[0]
    if isinstance(got, str):
        for dg_name, s3_name in names.items():
            got = got.replace(dg_name, s3_name)
    if key in FREE_TYPES:
        return
    if key == "ETag":
        if not (isinstance(ref, str) and S3_ETAG.match(ref)):
            out.append(f"{path}: boto3's ETag {ref!r} is not hex")
        if not (isinstance(got, str) and DG_ETAG.match(got)):
            out.append(f"{path}: deltaglider's ETag {got!r} is not quoted hex")
        return
    if key in TIMES:
        for who, value in (("boto3", ref), ("deltaglider", got)):
            if not (isinstance(value, datetime) and value.tzinfo is not None):
                out.append(f"{path}: {who}'s {value!r} is not an aware datetime")
        return
    if type(ref) is not type(got):
        out.append(f"{path}: type {type(ref).__name__} (boto3) != {type(got).__name__}: {got!r}")
        return
    if isinstance(ref, dict):
        compared = ONLY.get(key)
        for name in sorted(set(ref) | set(got)):
            sub = f"{path}.{name}"
            if compared is not None and name not in compared:
                continue
            if name == "DeltaGliderInfo" and name not in ref:
                info = got[name]
                if not (
                    isinstance(info, dict)
                    and set(info) in (INFO_FIELDS, WRITE_INFO_FIELDS, DELETE_INFO_FIELDS)
                ):
                    out.append(f"{sub}: {info!r}")
                continue
            if name not in got:
                if name in ABSENT or name.startswith(ABSENT_PREFIXES):
                    continue
                out.append(f"{sub}: missing from deltaglider's (boto3: {ref[name]!r})")
                continue
            if name not in ref:
                if name not in EXTRA:
                    out.append(f"{sub}: only in deltaglider's ({got[name]!r})")
                continue
            _compare(ref[name], got[name], sub, names, out)
        return
    if isinstance(ref, list):
        if len(ref) != len(got):
            out.append(f"{path}: {len(ref)} items (boto3) != {len(got)}")
        for i, (a, b) in enumerate(zip(ref, got, strict=False)):
            _compare(a, b, f"{path}[{i}]", names, out)
        return
    if key in DG_VALUES:
        if got != DG_VALUES[key]:
            out.append(f"{path}: {got!r} != {DG_VALUES[key]!r}")
        return
    if key in FREE_VALUES or key in TOKENS:
        return
    if key in DG_DEFAULTS and got == DG_DEFAULTS[key]:
        return
    if ref != got:
        out.append(f"{path}: {ref!r} (boto3) != {got!r}")


def differences(ref: Any, got: Any, names: dict[str, str] | None = None) -> list[str]:
    """Every undocumented difference between boto3's outcome and deltaglider's."""
    out: list[str] = []
    names = names or {}
    if isinstance(ref, Exception) or isinstance(got, Exception):
        if not isinstance(ref, botocore.exceptions.ClientError):
            return [f"boto3 gave {ref!r}, deltaglider {got!r}"]
        if not isinstance(got, botocore.exceptions.ClientError):
            return [f"boto3 raised {type(ref).__name__} {ref.response['Error']}, deltaglider "
                    f"gave {got!r}"]  # fmt: skip
        if type(ref).__name__ != type(got).__name__:
            out.append(f"error class {type(ref).__name__} (boto3) != {type(got).__name__}")
        if ref.operation_name != got.operation_name:
            out.append(f"operation {ref.operation_name} != {got.operation_name}")
        ref, got = ref.response, got.response
    _compare(ref, got, "$", names, out)
    return out


def assert_parity(pair: Pair, ref: Any, got: Any) -> None:
    diffs = differences(ref, got, {pair.dg.bucket: pair.s3.bucket})
    assert not diffs, "undocumented differences from boto3:\n  " + "\n  ".join(diffs)


def same(pair: Pair, method: str, /, **kwargs: Any) -> tuple[Any, Any]:
    """Runs the call on both sides and asserts parity; returns the two outcomes."""
    ref, got = pair.call(method, **kwargs)
    assert_parity(pair, ref, got)
    return ref, got


def code(outcome: Any) -> tuple[str, int]:
    assert isinstance(outcome, botocore.exceptions.ClientError), outcome
    return outcome.response["Error"]["Code"], outcome.response["ResponseMetadata"]["HTTPStatusCode"]


def test_the_comparison_finds_differences() -> None:
    """The comparison is not blind: each kind of difference is reported."""
    base = {
        "ContentLength": 3,
        "ETag": '"' + "a" * 32 + '"',
        "Metadata": {"a": "1"},
        "LastModified": datetime.now(timezone.utc),
        "Contents": [{"Key": "a", "Size": 1}],
        "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": "x"},
    }
    assert differences(base, dict(base, DeltaGliderInfo=dict.fromkeys(INFO_FIELDS))) == []
    assert differences(base, dict(base, ResponseMetadata={"HTTPStatusCode": 200})) == []
    for changed in (
        {"ContentLength": 4},
        {"ContentLength": "3"},
        {"ETag": "a" * 32},
        {"Metadata": {"a": "2"}},
        {"LastModified": "2026-01-01"},
        {"Contents": [{"Key": "b", "Size": 1}]},
        {"Contents": [{"Key": "a", "Size": 1}, {"Key": "b", "Size": 1}]},
        {"ResponseMetadata": {"HTTPStatusCode": 206}},
        {"Extra": 1},
        {"DeltaGliderInfo": {}},
    ):
        assert differences(base, dict(base, **changed)), changed
    assert differences(base, {k: v for k, v in base.items() if k != "Metadata"})
    assert differences(dict(base, TagCount=1), base) == []  # documented
    assert differences(dict(base, ChecksumCRC32="x"), base) == []  # documented


# --- objects ---------------------------------------------------------------------------------

RELEASES = {f"releases/app-1.{v}.zip": release(v) for v in range(4)}
LARGE = noise(17 << 20, seed=3)  # over the multipart threshold

#: key -> (body as given to put_object, the bytes it stands for, other put_object arguments)
PUTS: dict[str, tuple[Any, bytes, dict[str, Any]]] = {
    "small.txt": (b"hello world\n", b"hello world\n", {}),
    "empty": (b"", b"", {}),
    "text/str.txt": ("héllo wörld ✓\n", "héllo wörld ✓\n".encode(), {}),
    "bin/all-bytes.bin": (bytes(range(256)) * 40, bytes(range(256)) * 40, {}),
    "bin/filelike.dat": (
        lambda side: io.BytesIO(noise(300_000, 5)),
        noise(300_000, 5),
        {"ContentType": "application/x-test"},
    ),
    "bin/large.bin": (LARGE, LARGE, {}),
    "meta/with-metadata.json": (
        b'{"a": 1}',
        b'{"a": 1}',
        {"Metadata": {"owner": "ci", "build-id": "42"}, "ContentType": "application/json"},
    ),
    "tagged/t.txt": (b"tagged", b"tagged", {"Tagging": "team=core&stage=beta"}),
    "names/naïve file + plus & more.txt": (b"odd name", b"odd name", {}),
    "names/notes.delta": (b"looks internal", b"looks internal", {}),
    "names/reference.bin": (b"mine", b"mine", {}),
    **{
        key: (data, data, {"Metadata": {"version": key[-5]}, "ContentType": "application/zip"})
        for key, data in RELEASES.items()
    },
    "releases/tagged-1.9.zip": (
        release(9),
        release(9),
        {"Tagging": "kind=release", "Metadata": {"version": "9"}},
    ),
}


@pytest.fixture(scope="module")
def objects(seaweedfs: Any, s3_client: Any, dg_client: DeltaGliderClient) -> Iterator[Pair]:
    """A pair of buckets holding every object of PUTS (the puts are compared as they go)."""
    made = Buckets(s3_client)
    try:
        pair = make_pair(made, s3_client, dg_client)
        for key, (body, _, extra) in PUTS.items():
            ref, got = pair.call("put_object", Key=key, Body=body, **extra)
            assert_parity(pair, ref, got)
            info = got["DeltaGliderInfo"]
            data = PUTS[key][1]
            assert info["OriginalSize"] == len(data)
            if not info["PhysicalKey"].endswith(".delta") and len(data) < (16 << 20):
                assert got["ETag"] == ref["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        yield pair
    finally:
        made.cleanup()


def test_put_variety_makes_deltas_of_similar_releases(objects: Pair) -> None:
    infos = {
        k: objects.dg.client.head_object(Bucket=objects.dg.bucket, Key=k)["DeltaGliderInfo"]
        for k in PUTS
    }
    assert all(infos[k]["IsDelta"] for k in RELEASES if not k.endswith("1.0.zip")), infos
    assert infos["releases/app-1.3.zip"]["StoredSize"] < len(RELEASES["releases/app-1.3.zip"]) / 4
    assert not infos["small.txt"]["IsDelta"] and not infos["bin/large.bin"]["IsDelta"]
    stored = physical_keys(objects.dg.client.boto_client, objects.dg.bucket, "releases/")
    assert "releases/reference.bin" in stored and "releases/app-1.3.zip.delta" in stored


@pytest.mark.parametrize("key", list(PUTS))
def test_head_and_get(objects: Pair, key: str) -> None:
    _, head = same(objects, "head_object", Key=key)
    ref, got = objects.call("get_object", Key=key)
    bodies = ref["Body"].read(), got["Body"].read()
    assert bodies[0] == bodies[1] == PUTS[key][1]
    assert_parity(objects, ref, got)
    given = PUTS[key][2]
    assert got["Metadata"] == head["Metadata"] == given.get("Metadata", {})
    if "ContentType" in given:  # a given type is kept exactly (the allowance is for none)
        assert got["ContentType"] == head["ContentType"] == ref["ContentType"]
        assert got["ContentType"] == given["ContentType"]


def test_get_body_interfaces(objects: Pair) -> None:
    data = RELEASES["releases/app-1.2.zip"]
    key = "releases/app-1.2.zip"
    for side in objects.sides:
        get = lambda side=side: side.client.get_object(Bucket=side.bucket, Key=key)  # noqa: E731
        assert b"".join(get()["Body"].iter_chunks()) == data
        assert b"".join(get()["Body"].iter_chunks(chunk_size=1000)) == data
        with get()["Body"] as body:
            assert body.read(10) == data[:10]
            assert body.read() == data[10:]
            assert body.read() == b""
        assert b"".join(get()["Body"]) == data
        text = objects.call_one(side, "get_object", Key="small.txt")["Body"]
        assert list(text.iter_lines()) == [b"hello world"]
        body = get()["Body"]
        body.close()


RANGES = ["bytes=0-9", "bytes=5-", "bytes=-7", "bytes=10-10", "bytes=3-100000000"]


@pytest.mark.parametrize("key", ["small.txt", "releases/app-1.3.zip", "bin/large.bin"])
@pytest.mark.parametrize("rng", RANGES)
def test_get_ranges(objects: Pair, key: str, rng: str) -> None:
    data = PUTS[key][1]
    ref, got = objects.call("get_object", Key=key, Range=rng)
    bodies = ref["Body"].read(), got["Body"].read()
    first, _, last = rng[6:].partition("-")
    expected = (
        data[-int(last) :] if first == "" else data[int(first) : int(last) + 1 if last else None]
    )
    assert bodies[0] == bodies[1] == expected
    assert got["ContentRange"] == ref["ContentRange"]
    assert_parity(objects, ref, got)
    assert_head_range(objects, key, rng)


def assert_head_range(pair: Pair, key: str, rng: str) -> None:
    """HEAD with a Range: S3 answers with the GET's headers (206, the range's ContentLength and
    ContentRange; 416 if unsatisfiable). SeaweedFS ignores the Range of a HEAD (a server
    quirk, not a deltaglider difference): where it does, deltaglider's HEAD is compared with
    boto3's GET of the same range, less the body, as S3 would answer it."""
    ref, got = pair.call("head_object", Key=key, Range=rng)
    honoured = isinstance(ref, Exception) or ref["ResponseMetadata"]["HTTPStatusCode"] == 206
    if not honoured:
        ref = pair.call_one(pair.s3, "get_object", Key=key, Range=rng)
        if isinstance(ref, Exception):  # a HEAD's error has no body: its status names it
            status = ref.response["ResponseMetadata"]["HTTPStatusCode"]
            assert code(got) == (str(status), status)
            assert got.response["Error"]["Message"] == "Requested Range Not Satisfiable"
            return
        ref.pop("Body").close()
    assert_parity(pair, ref, got)


@pytest.mark.parametrize("key", ["small.txt", "releases/app-1.3.zip", "empty"])
@pytest.mark.parametrize("rng", ["bytes=100000000-", "bytes=100000000-100000001"])
def test_unsatisfiable_range(objects: Pair, key: str, rng: str) -> None:
    _, got = same(objects, "get_object", Key=key, Range=rng)
    assert code(got) == ("InvalidRange", 416)
    assert_head_range(objects, key, rng)


@pytest.mark.parametrize("method", ["get_object", "head_object"])
@pytest.mark.parametrize("key", ["small.txt", "releases/app-1.2.zip"])
def test_conditions(objects: Pair, method: str, key: str) -> None:
    etags = objects.each(lambda s: s.client.head_object(Bucket=s.bucket, Key=key)["ETag"])
    mine = lambda side: etags[0] if side is objects.s3 else etags[1]  # noqa: E731
    past = datetime.now(timezone.utc) - timedelta(days=1)
    future = datetime.now(timezone.utc) + timedelta(days=1)
    wrong = '"' + "0" * 32 + '"'
    for kwargs, expected in (
        ({"IfMatch": mine}, 200),
        ({"IfMatch": "*"}, 200),
        ({"IfMatch": wrong}, 412),
        ({"IfNoneMatch": mine}, 304),
        ({"IfNoneMatch": "*"}, 304),
        ({"IfNoneMatch": wrong}, 200),
        ({"IfModifiedSince": future}, 304),
        ({"IfModifiedSince": past}, 200),
        ({"IfUnmodifiedSince": past}, 412),
        ({"IfUnmodifiedSince": future}, 200),
    ):
        _, got = same(objects, method, Key=key, **kwargs)
        if expected == 200:
            assert got["ResponseMetadata"]["HTTPStatusCode"] == 200, kwargs
        else:
            status = code(got)[1]
            assert status == expected, kwargs
            if method == "get_object" and expected == 412:
                assert code(got)[0] == "PreconditionFailed"


CONDITIONS = {
    "IfMatch": ("mine", "wrong"),
    "IfNoneMatch": ("mine", "wrong"),
    "IfModifiedSince": ("past", "future"),
    "IfUnmodifiedSince": ("past", "future"),
}


def _combinations() -> list[dict[str, str]]:
    """Every combination of two or more conditions, each true or false."""
    out = []
    names = list(CONDITIONS)
    for mask in range(1, 1 << len(names)):
        chosen = [n for i, n in enumerate(names) if mask >> i & 1]
        if len(chosen) < 2:
            continue
        for values in itertools.product(*(CONDITIONS[n] for n in chosen)):
            out.append(dict(zip(chosen, values, strict=True)))
    return out


@pytest.mark.parametrize("method", ["get_object", "head_object"])
@pytest.mark.parametrize("key", ["small.txt", "releases/app-1.2.zip"])
def test_combined_conditions(objects: Pair, method: str, key: str) -> None:
    """Conditions together, as S3 combines them (RFC 7232): If-Match true wins over
    If-Unmodified-Since false (200), If-None-Match false over If-Modified-Since true (304)."""
    etags = objects.each(lambda s: s.client.head_object(Bucket=s.bucket, Key=key)["ETag"])
    now = datetime.now(timezone.utc)
    values: dict[str, Any] = {
        "mine": lambda side: etags[0] if side is objects.s3 else etags[1],
        "wrong": '"' + "0" * 32 + '"',
        "past": now - timedelta(days=1),
        "future": now + timedelta(days=1),
    }
    seen = {}
    for combo in _combinations():
        kwargs = {name: values[v] for name, v in combo.items()}
        _, got = same(objects, method, Key=key, **kwargs)
        status = got.response["ResponseMetadata"]["HTTPStatusCode"] if isinstance(
            got, Exception) else got["ResponseMetadata"]["HTTPStatusCode"]  # fmt: skip
        seen[tuple(sorted(combo.items()))] = status
    # The two rules the issue names, so a server that agreed with a wrong client fails too.
    assert seen[(("IfMatch", "mine"), ("IfUnmodifiedSince", "past"))] == 200
    assert seen[(("IfModifiedSince", "past"), ("IfNoneMatch", "mine"))] == 304
    assert seen[(("IfMatch", "wrong"), ("IfNoneMatch", "wrong"))] == 412
    assert seen[(("IfNoneMatch", "wrong"), ("IfUnmodifiedSince", "past"))] == 412


MULTI_RANGES = ["bytes=0-1,3-4", "bytes=0-1, 3-4", "bytes=0-1,100000000-100000001",
                "bytes=100000000-100000001,0-1"]  # fmt: skip


@pytest.mark.parametrize("key", ["small.txt", "releases/app-1.3.zip"])
@pytest.mark.parametrize("rng", MULTI_RANGES)
def test_multiple_ranges_get_the_whole_object(objects: Pair, key: str, rng: str) -> None:
    """S3 serves no multipart/byteranges: several ranges give the whole object, 200."""
    ref, got = objects.call("get_object", Key=key, Range=rng)
    bodies = ref["Body"].read(), got["Body"].read()
    assert bodies[0] == bodies[1] == PUTS[key][1]
    assert_parity(objects, ref, got)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200 and "ContentRange" not in got
    _, head = same(objects, "head_object", Key=key, Range=rng)
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 200 and "ContentRange" not in head


@pytest.mark.parametrize("method", ["list_objects_v2", "list_objects"])
def test_negative_max_keys(objects: Pair, method: str) -> None:
    for max_keys in (-1, -1000):
        _, got = same(objects, method, MaxKeys=max_keys)
        assert code(got) == ("InvalidArgument", 400)
        _, got = same(objects, method, MaxKeys=max_keys, Bucket=lambda s: s.bucket + "-absent")
        assert code(got) == ("InvalidArgument", 400)
    _, got = same(objects, method, MaxKeys=0)
    assert "Contents" not in got


def test_missing_objects_and_buckets(objects: Pair, buckets: Buckets) -> None:
    missing = lambda side: f"{side.bucket}-missing"  # noqa: E731
    _, got = same(objects, "get_object", Key="no/such/key.zip")
    assert code(got) == ("NoSuchKey", 404)
    assert isinstance(got, objects.dg.client.exceptions.NoSuchKey)
    _, got = same(objects, "head_object", Key="no/such/key.zip")
    assert code(got) == ("404", 404)
    _, got = same(objects, "get_object_tagging", Key="no/such/key.zip")
    assert code(got) == ("NoSuchKey", 404)
    _, got = same(objects, "get_object", Bucket=missing, Key="k")
    assert code(got) == ("NoSuchBucket", 404)
    assert isinstance(got, objects.dg.client.exceptions.NoSuchBucket)
    _, got = same(objects, "head_object", Bucket=missing, Key="k")
    assert code(got) == ("404", 404)
    for method in ("list_objects_v2", "list_objects"):
        _, got = same(objects, method, Bucket=missing)
        assert code(got) == ("NoSuchBucket", 404)
    _, got = same(objects, "delete_object", Bucket=missing, Key="k")
    assert code(got) == ("NoSuchBucket", 404)
    _, got = same(objects, "delete_objects", Bucket=missing, Delete={"Objects": [{"Key": "k"}]})
    assert code(got) == ("NoSuchBucket", 404)
    _, got = same(objects, "copy_object", Key="k", CopySource=lambda s: f"{s.bucket}/nope")
    assert code(got) == ("NoSuchKey", 404)
    _, got = same(objects, "copy_object", Key="k", CopySource=lambda s: f"{missing(s)}/nope")
    assert code(got) == ("NoSuchBucket", 404)


def test_exception_classes_catch(objects: Pair) -> None:
    for side in objects.sides:
        client = side.client
        with pytest.raises(client.exceptions.NoSuchKey) as caught:
            client.get_object(Bucket=side.bucket, Key="absent")
        assert isinstance(caught.value, botocore.exceptions.ClientError)
        with pytest.raises(client.exceptions.NoSuchBucket):
            client.list_objects_v2(Bucket=side.bucket + "-absent")
        with pytest.raises(botocore.exceptions.ClientError) as head:
            client.head_object(Bucket=side.bucket, Key="absent")
        assert head.value.response["Error"]["Code"] == "404"
        assert client.exceptions.from_code("NoSuchKey") is client.exceptions.NoSuchKey
        assert issubclass(client.exceptions.ClientError, botocore.exceptions.ClientError)
    assert objects.dg.client.exceptions.NoSuchKey.__name__ == "NoSuchKey"


def test_tagging_kept(objects: Pair) -> None:
    for key in ("tagged/t.txt", "releases/tagged-1.9.zip", "small.txt"):
        same(objects, "get_object_tagging", Key=key)


# --- copy, delete ----------------------------------------------------------------------------


def test_copy_object(pair: Pair) -> None:
    for key, data in (("src/app-1.0.zip", release(0)), ("src/app-1.1.zip", release(1))):
        pair.call("put_object", Key=key, Body=data, Metadata={"v": key[-5]}, Tagging="from=src")
    pair.call("put_object", Key="src/notes.txt", Body=b"notes", ContentType="text/plain")
    cases: list[tuple[str, Any, dict[str, Any]]] = [
        ("dst/a.zip", lambda s: f"{s.bucket}/src/app-1.1.zip", {}),
        ("dst/b.zip", lambda s: {"Bucket": s.bucket, "Key": "src/app-1.1.zip"}, {}),
        ("src/c.zip", lambda s: {"Bucket": s.bucket, "Key": "src/app-1.0.zip"}, {}),
        ("dst/n.txt", lambda s: f"/{s.bucket}/src/notes.txt", {}),
        (
            "dst/r.zip",
            lambda s: f"{s.bucket}/src/app-1.1.zip",
            {"MetadataDirective": "REPLACE", "Metadata": {"new": "yes"}, "ContentType": "a/b"},
        ),
        (
            "dst/r.txt",
            lambda s: {"Bucket": s.bucket, "Key": "src/notes.txt"},
            {"MetadataDirective": "REPLACE"},
        ),
        (
            "dst/t.zip",
            lambda s: f"{s.bucket}/src/app-1.1.zip",
            {"TaggingDirective": "REPLACE", "Tagging": "new=tag&x=y"},
        ),
        (
            "src/untagged.zip",
            lambda s: f"{s.bucket}/src/app-1.0.zip",
            {"TaggingDirective": "REPLACE"},
        ),
        ("src/app-1.0.zip", lambda s: f"{s.bucket}/src/app-1.1.zip", {}),  # over another
    ]
    for key, source, extra in cases:
        _ref, _got = same(pair, "copy_object", Key=key, CopySource=source, **extra)
        same(pair, "head_object", Key=key)
        same(pair, "get_object_tagging", Key=key)
        bodies = pair.each(lambda s, key=key: s.client.get_object(Bucket=s.bucket, Key=key))
        assert bodies[0]["Body"].read() == bodies[1]["Body"].read()
    same(pair, "list_objects_v2")


def test_delete_object_and_objects(pair: Pair) -> None:
    keys = [f"d/app-1.{v}.zip" for v in range(3)] + ["d/x.txt", "d/y.txt", "e/z.txt"]
    for i, key in enumerate(keys):
        pair.call("put_object", Key=key, Body=release(i) if key.endswith(".zip") else b"x")
    _, got = same(pair, "delete_object", Key="d/x.txt")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 204
    same(pair, "delete_object", Key="d/never-there")
    same(pair, "delete_object", Key="d/app-1.0.zip")  # the deltaspace's first file
    same(pair, "list_objects_v2")
    same(pair, "get_object", Key="d/x.txt")
    _, got = same(
        pair,
        "delete_objects",
        Delete={"Objects": [{"Key": "d/app-1.1.zip"}, {"Key": "missing"}, {"Key": "d/y.txt"}]},
    )
    assert [d["Key"] for d in got["Deleted"]] == ["d/app-1.1.zip", "missing", "d/y.txt"]
    _, got = same(
        pair,
        "delete_objects",
        Delete={"Objects": [{"Key": "e/z.txt"}, {"Key": "nope"}], "Quiet": True},
    )
    assert "Deleted" not in got
    same(pair, "list_objects_v2")
    reads = pair.each(lambda s: s.client.get_object(Bucket=s.bucket, Key="d/app-1.2.zip"))
    assert reads[0]["Body"].read() == reads[1]["Body"].read() == release(2)
    same(pair, "delete_objects", Delete={"Objects": [{"Key": "d/app-1.2.zip"}]})
    _, got = same(pair, "list_objects_v2")
    assert got["KeyCount"] == 0 and "Contents" not in got
    assert physical_keys(pair.dg.client.boto_client, pair.dg.bucket, "d/") == []


def _no_object(pair: Pair, key: str) -> None:
    """Neither side stored ``key`` (and deltaglider nothing under it either)."""
    _, got = same(pair, "head_object", Key=key)
    assert code(got) == ("404", 404)
    assert not [k for k in physical_keys(pair.dg.client.boto_client, pair.dg.bucket) if
                k.startswith(key)]  # fmt: skip


def test_put_content_md5_and_length(pair: Pair, seaweedfs: Any) -> None:
    # boto3 retries a BadDigest (with backoff: 5-10 s a call); deltaglider checks the digest
    # before sending and answers at once. The outcome is the same; the retries cost only time.
    pair.s3.client = plain_client(seaweedfs, config=Config(retries={"max_attempts": 1}))
    body = b"hello world\n"
    right = base64.b64encode(hashlib.md5(body).digest()).decode()
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    # right: stored, by both
    same(pair, "put_object", Key="md5/right.txt", Body=body, ContentMD5=right)
    same(pair, "put_object", Key="md5/stream.txt", Body=lambda s: io.BytesIO(body),
         ContentMD5=right, ContentLength=len(body))  # fmt: skip
    same(pair, "put_object", Key="md5/len.txt", Body=body, ContentLength=len(body))
    same(pair, "put_object", Key="md5/str.txt", Body="héllo", ContentMD5=base64.b64encode(
        hashlib.md5("héllo".encode()).digest()).decode())  # fmt: skip
    for key in ("md5/right.txt", "md5/stream.txt", "md5/len.txt"):
        reads = pair.each(lambda s, key=key: s.client.get_object(Bucket=s.bucket, Key=key))
        assert reads[0]["Body"].read() == reads[1]["Body"].read() == body
    # wrong: BadDigest, and nothing stored (over an existing object: it stays)
    _, got = same(pair, "put_object", Key="md5/wrong.txt", Body=body, ContentMD5=wrong)
    assert code(got) == ("BadDigest", 400)
    _no_object(pair, "md5/wrong.txt")
    _, got = same(pair, "put_object", Key="md5/wrong.zip", Body=release(1), ContentMD5=wrong)
    assert code(got) == ("BadDigest", 400)
    _no_object(pair, "md5/wrong.zip")
    _, got = same(pair, "put_object", Key="md5/right.txt", Body=b"new", ContentMD5=wrong)
    assert code(got) == ("BadDigest", 400)
    reads = pair.each(lambda s: s.client.get_object(Bucket=s.bucket, Key="md5/right.txt"))
    assert reads[0]["Body"].read() == reads[1]["Body"].read() == body
    # not base64 at all: InvalidDigest
    _, got = same(pair, "put_object", Key="md5/bad.txt", Body=body, ContentMD5="not base64!")
    assert code(got) == ("InvalidDigest", 400)
    _no_object(pair, "md5/bad.txt")


def test_put_content_length_that_is_not_the_body(pair: Pair) -> None:
    """boto3 sends such a header as given (against SeaweedFS: a truncated body and a broken
    connection, or a read timeout): not comparable. deltaglider answers S3's IncompleteBody at
    once and stores nothing (documented in BEHAVIOURS)."""
    dg = pair.dg
    for length, body in ((3, b"hello"), (10, b"hello"), (3, io.BytesIO(b"hello")), (0, b"x")):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            dg.client.put_object(Bucket=dg.bucket, Key="cl/x.txt", Body=body, ContentLength=length)
        assert code(caught.value) == ("IncompleteBody", 400)
        assert caught.value.response["Error"]["Key"] == "cl/x.txt"
    with pytest.raises(botocore.exceptions.ClientError):
        dg.client.head_object(Bucket=dg.bucket, Key="cl/x.txt")
    assert physical_keys(dg.client.boto_client, dg.bucket) == []
    assert "put_object ContentLength" in BEHAVIOURS


def test_put_tagging_is_checked_before_storing(pair: Pair) -> None:
    _, got = same(pair, "put_object", Key="tags/dup.txt", Body=b"x", Tagging="a=1&a=2")
    assert code(got) == ("InvalidTag", 400)
    _no_object(pair, "tags/dup.txt")
    _, got = same(pair, "put_object", Key="tags/dup.zip", Body=release(2), Tagging="a=1&a=2")
    assert code(got) == ("InvalidTag", 400)
    _no_object(pair, "tags/dup.zip")
    same(pair, "put_object", Key="tags/ok.txt", Body=b"x", Tagging="a=1&b=2")
    same(pair, "get_object_tagging", Key="tags/ok.txt")
    # S3's limits, which SeaweedFS's put_object does not enforce (its put_object_tagging does:
    # deltaglider tags after storing, so checks them first; documented in BEHAVIOURS).
    dg = pair.dg
    for tagging in ("&".join(f"k{i}=v" for i in range(11)), "k" * 129 + "=v",
                    "k=" + "v" * 257, "=v"):  # fmt: skip
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            dg.client.put_object(Bucket=dg.bucket, Key="tags/limit.zip", Body=release(3),
                                 Tagging=tagging)  # fmt: skip
        assert code(caught.value) == ("InvalidTag", 400)
    with pytest.raises(botocore.exceptions.ClientError):
        dg.client.head_object(Bucket=dg.bucket, Key="tags/limit.zip")
    assert "put_object Tagging" in BEHAVIOURS


def test_delete_objects_errors(pair: Pair) -> None:
    pair.call("put_object", Key="keep.txt", Body=b"x")
    for quiet in (False, True):
        _, got = same(
            pair,
            "delete_objects",
            Delete={"Objects": [{"Key": "a/../b"}, {"Key": "./c"}, {"Key": "never"}],
                    "Quiet": quiet},
        )  # fmt: skip
        assert [e["Key"] for e in got["Errors"]] == ["a/../b", "./c"]
        assert {e["Code"] for e in got["Errors"]} == {"InvalidRequest"}
        assert ("Deleted" in got) is not quiet
    # A key XML cannot carry: the whole request is refused.
    _, got = same(pair, "delete_objects", Delete={"Objects": [{"Key": "ab\x01c"}]})
    assert code(got) == ("MalformedXML", 400)
    same(pair, "list_objects_v2")
    # Keys deltaglider refuses (BEHAVIOURS "Keys"): an Errors entry each, the rest deleted.
    dg = pair.dg
    got = dg.client.delete_objects(
        Bucket=dg.bucket,
        Delete={"Objects": [{"Key": "x" * 1025}, {"Key": ".deltaglider/x"}, {"Key": "keep.txt"}]},
    )
    assert [e["Code"] for e in got["Errors"]] == ["InvalidArgument", "InvalidArgument"]
    assert got["Deleted"] == [{"Key": "keep.txt"}]


ODD_KEYS = [
    "enc/a dir/naïve file + plus & more.txt",
    "enc/a dir/sub dir/é.txt",
    "enc/odd%2F?y=z#.txt",
    "enc/plain.txt",
    "enc/spaced name.txt",
    "enc/ü/x.txt",
]
#: What botocore decodes, when it asked for EncodingType=url itself.
ENCODED = {
    "list_objects_v2": ("Delimiter", "Prefix", "StartAfter"),
    "list_objects": ("Delimiter", "Marker", "NextMarker"),
}


def _decoded(response: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The response with its encoded names decoded (``fields`` and the keys and prefixes)."""
    out = dict(response)
    for name in fields:
        if name in out:
            out[name] = unquote_plus(out[name])
    out["Contents"] = [dict(o, Key=unquote_plus(o["Key"])) for o in out.get("Contents", [])]
    out["CommonPrefixes"] = [{"Prefix": unquote_plus(p["Prefix"])}
                             for p in out.get("CommonPrefixes", [])]  # fmt: skip
    return out


@pytest.mark.parametrize("method", ["list_objects_v2", "list_objects"])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"Delimiter": "/"}, {"Prefix": "enc/a dir/", "Delimiter": " "}, {"MaxKeys": 2},
     {"Prefix": "enc/", "Delimiter": "/"}, {"After": "enc/a dir/n", "MaxKeys": 1}],
    ids=repr,
)  # fmt: skip
def test_encoding_type_url(pair: Pair, method: str, kwargs: dict[str, Any]) -> None:
    """Key names with spaces, '+', '%', non-ASCII: plain without EncodingType (boto3 asks for
    url itself and decodes), encoded as S3 encodes them with EncodingType='url' given."""
    for key in ODD_KEYS:
        pair.call("put_object", Key=key, Body=b"x")
    params = dict(kwargs)
    if "After" in params:
        params["StartAfter" if method == "list_objects_v2" else "Marker"] = params.pop("After")
    ref, got = pair.call(method, **params)
    if "NextMarker" in ref:
        # SeaweedFS leaves NextMarker plain, and botocore decodes it anyway (S3 encodes it):
        # a '+' in it comes back a space. deltaglider's is the key as it is.
        assert unquote_plus(got["NextMarker"]) == ref["NextMarker"]
        ref = dict(ref, NextMarker=got["NextMarker"])
    assert_parity(pair, ref, got)
    ref, got = pair.call(method, EncodingType="url", **params)
    assert got["EncodingType"] == ref["EncodingType"] == "url"
    # The same names once decoded as botocore decodes them (SeaweedFS encodes keys and
    # prefixes only) ...
    assert_parity(pair, _decoded(ref, ()), _decoded(got, ENCODED[method]))
    plain = pair.call_one(pair.dg, method, **params)
    lists = {
        "Contents": plain.get("Contents", []),
        "CommonPrefixes": plain.get("CommonPrefixes", []),
    }
    assert _decoded(got, ENCODED[method]) == plain | lists
    # ... and encoded as S3 does: UTF-8 percent-encoding, '+' for a space, '/' kept.
    names = [(o["Key"], p["Key"]) for o, p in zip(got.get("Contents", []),
             plain.get("Contents", []), strict=True)]  # fmt: skip
    names += [(o["Prefix"], p["Prefix"]) for o, p in zip(got.get("CommonPrefixes", []),
              plain.get("CommonPrefixes", []), strict=True)]  # fmt: skip
    names += [(got[n], plain[n]) for n in ENCODED[method] if n in plain]
    assert names
    for encoded, name in names:
        assert encoded == quote_plus(name, safe="/"), (encoded, name)
    # SeaweedFS encodes the last segment of a key as S3 does (it differs before a '/').
    for o, r in zip(got.get("Contents", []), ref.get("Contents", []), strict=True):
        if " " not in o["Key"].rpartition("/")[0] and "%20" not in r["Key"]:
            assert o["Key"] == r["Key"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        pair.dg.client.list_objects_v2(Bucket=pair.dg.bucket, EncodingType="xml")
    assert code(caught.value) == ("InvalidArgument", 400)


# --- listings --------------------------------------------------------------------------------

MANY = 1205
LISTED_KEYS = (
    [f"many/{i:05d}.txt" for i in range(MANY)]
    + [f"rel/app-1.{v}.zip" for v in range(6)]
    + [f"tree/{d}/{n}.txt" for d in "abc" for n in range(4)]
    + ["tree/top.txt", "top-a.txt", "top-b.txt", "tree/a/deep/er.txt", "zz/last.txt"]
)


def _listed_body(key: str) -> bytes:
    if key.startswith("rel/"):
        return release(int(key[-5]))
    return key.encode() * (1 + len(key) % 3)


@pytest.fixture(scope="module")
def listed(seaweedfs: Any, s3_client: Any, dg_client: DeltaGliderClient) -> Iterator[Pair]:
    """A pair of buckets with 1,235 keys (over SeaweedFS's 1,000-key page), six of them
    deltas, in folders for delimiter listings."""
    made = Buckets(s3_client)
    try:
        pair = make_pair(made, s3_client, dg_client)
        for key in LISTED_KEYS:  # the releases first, in order, so they make one deltaspace
            if key.startswith("rel/"):
                pair.call("put_object", Key=key, Body=_listed_body(key))
        with ThreadPoolExecutor(32) as pool:
            for side in pair.sides:
                jobs = [
                    pool.submit(
                        side.client.put_object, Bucket=side.bucket, Key=k, Body=_listed_body(k)
                    )
                    for k in LISTED_KEYS
                    if not k.startswith("rel/")
                ]
                for job in jobs:
                    job.result()
        yield pair
    finally:
        made.cleanup()


def _pages(pair: Pair, side: Side, method: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every page of a listing, continuing by hand as a boto3 program does."""
    pages = []
    params = dict(kwargs)
    while True:
        page = pair.call_one(side, method, **params)
        assert not isinstance(page, Exception), page
        pages.append(page)
        if not page["IsTruncated"]:
            return pages
        if method == "list_objects_v2":
            params["ContinuationToken"] = page["NextContinuationToken"]
            params.pop("StartAfter", None)
        else:
            params["Marker"] = page.get("NextMarker") or page["Contents"][-1]["Key"]
        assert len(pages) < 100


@pytest.mark.slow
def test_logical_sizes_and_hidden_objects(listed: Pair) -> None:
    _, got = same(listed, "list_objects_v2", Prefix="rel/")
    assert [o["Size"] for o in got["Contents"]] == [len(release(v)) for v in range(6)]
    stored = physical_keys(listed.dg.client.boto_client, listed.dg.bucket, "rel/")
    assert "rel/reference.bin" in stored and "rel/app-1.5.zip.delta" in stored


def test_list_everything_default_page(listed: Pair) -> None:
    _, got = same(listed, "list_objects_v2")
    assert got["KeyCount"] == 1000 and got["IsTruncated"] is True
    _, got = same(listed, "list_objects")
    assert len(got["Contents"]) == 1000 and got["IsTruncated"] is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"MaxKeys": 100},
        {"MaxKeys": 1000},
        {"MaxKeys": 2000},
        {"MaxKeys": 7, "Prefix": "tree/"},
        {"MaxKeys": 250, "StartAfter": "many/00500.txt"},
        {"StartAfter": "many/01200.txt"},
        {"StartAfter": "zz"},
        {"Delimiter": "/"},
        {"Delimiter": "/", "MaxKeys": 2},
        {"Delimiter": "/", "Prefix": "tree/"},
        {"Delimiter": "/", "Prefix": "tree/", "MaxKeys": 1},
        {"Delimiter": "/", "Prefix": "tree/a/"},
        {"Delimiter": "/", "Prefix": "tree"},
        {"Delimiter": ".", "Prefix": "top"},
        {"Prefix": "rel/app-1.", "MaxKeys": 4},
        {"Prefix": "none/"},
    ],
    ids=repr,
)
def test_list_objects_v2_pages(listed: Pair, kwargs: dict[str, Any]) -> None:
    pages = [_pages(listed, side, "list_objects_v2", **kwargs) for side in listed.sides]
    assert len(pages[0]) == len(pages[1])
    for ref, got in zip(*pages, strict=True):
        assert_parity(listed, ref, got)
    keys = [o["Key"] for page in pages[1] for o in page.get("Contents", [])]
    assert keys == sorted(keys) and len(keys) == len(set(keys))
    if not kwargs.get("Delimiter") and not kwargs.get("StartAfter"):
        prefix = kwargs.get("Prefix", "")
        assert keys == sorted(k for k in LISTED_KEYS if k.startswith(prefix))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"MaxKeys": 100},
        {},
        {"Marker": "many/01000.txt"},
        {"Marker": "many/00999.txt", "MaxKeys": 3},
        {"Delimiter": "/", "MaxKeys": 2},
        {"Delimiter": "/", "Prefix": "tree/", "MaxKeys": 2},
        {"Delimiter": "/", "Prefix": "tree/", "Marker": "tree/b/"},
    ],
    ids=repr,
)
def test_list_objects_v1_markers(listed: Pair, kwargs: dict[str, Any]) -> None:
    pages = [_pages(listed, side, "list_objects", **kwargs) for side in listed.sides]
    assert len(pages[0]) == len(pages[1])
    for ref, got in zip(*pages, strict=True):
        assert_parity(listed, ref, got)


def test_continuation_tokens(listed: Pair) -> None:
    ref, got = same(listed, "list_objects_v2", MaxKeys=3, Prefix="many/")
    token = lambda side: (ref if side is listed.s3 else got)["NextContinuationToken"]  # noqa: E731
    same(listed, "list_objects_v2", MaxKeys=3, Prefix="many/", ContinuationToken=token)
    # A token wins over StartAfter, as in S3.
    same(
        listed,
        "list_objects_v2",
        MaxKeys=3,
        Prefix="many/",
        ContinuationToken=token,
        StartAfter="many/00900.txt",
    )
    _, got = same(listed, "list_objects_v2", MaxKeys=0)
    assert got["KeyCount"] == 0


@pytest.mark.parametrize("operation", ["list_objects_v2", "list_objects"])
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"PageSize": 300},
        {"MaxItems": 333},
        {"MaxItems": 333, "PageSize": 100},
        {"MaxItems": 5, "PageSize": 2},
        {"MaxItems": 1000},  # a page boundary
        {"MaxItems": len(LISTED_KEYS)},  # exactly everything
        {"MaxItems": 5000, "PageSize": 700},
    ],
    ids=repr,
)
@pytest.mark.slow
def test_paginators(listed: Pair, operation: str, config: dict[str, Any]) -> None:
    results = []
    for side in listed.sides:
        paginator = side.client.get_paginator(operation)
        assert side.client.can_paginate(operation)
        pages = list(paginator.paginate(Bucket=side.bucket, PaginationConfig=dict(config)))
        full = paginator.paginate(Bucket=side.bucket, PaginationConfig=dict(config))
        results.append((pages, full.build_full_result()))
    (ref_pages, ref_full), (pages, full) = results
    assert len(ref_pages) == len(pages)
    for a, b in zip(ref_pages, pages, strict=True):
        assert_parity(listed, a, b)
    assert_parity(listed, ref_full, full)
    if "MaxItems" in config and config["MaxItems"] < len(LISTED_KEYS):
        assert len(full["Contents"]) == config["MaxItems"]
        # Resuming from NextToken gives the rest, as boto3's does (with tiny pages, the next
        # 11 items: 600 requests a side would prove nothing more).
        rests = []
        tokens = (ref_full["NextToken"], full["NextToken"])
        more = 11 if config.get("PageSize", 1000) < 10 else None
        for side, token in zip(listed.sides, tokens, strict=True):
            rest = side.client.get_paginator(operation).paginate(
                Bucket=side.bucket,
                PaginationConfig={
                    "StartingToken": token,
                    "PageSize": config.get("PageSize"),
                    "MaxItems": more,
                },
            )
            rests.append(rest.build_full_result())
        assert_parity(listed, *rests)
        left = len(LISTED_KEYS) - config["MaxItems"]
        assert len(rests[1]["Contents"]) == (min(left, more) if more else left)
        first = rests[1]["Contents"][0]["Key"]
        assert first == sorted(LISTED_KEYS)[config["MaxItems"]]


def test_paginator_refusals(listed: Pair) -> None:
    for side in listed.sides:
        assert not side.client.can_paginate("get_object")
        with pytest.raises(botocore.exceptions.OperationNotPageableError):
            side.client.get_paginator("get_object")
    with pytest.raises(NotImplementedError):  # pageable in S3, not by deltaglider
        listed.dg.client.get_paginator("list_object_versions")


@pytest.mark.parametrize("operation", ["list_objects_v2", "list_objects"])
def test_paginator_delimiter_and_search(listed: Pair, operation: str) -> None:
    out = []
    for side in listed.sides:
        paginator = side.client.get_paginator(operation)
        it = paginator.paginate(
            Bucket=side.bucket, Delimiter="/", Prefix="tree/", PaginationConfig={"PageSize": 2}
        )
        full = it.build_full_result()
        keys = list(paginator.paginate(Bucket=side.bucket, Prefix="rel/").search("Contents[].Key"))
        sizes = list(
            paginator.paginate(Bucket=side.bucket, Prefix="rel/").search("Contents[].Size")
        )
        prefixes = list(
            paginator.paginate(Bucket=side.bucket, Delimiter="/").search("CommonPrefixes[].Prefix")
        )
        out.append((full, keys, sizes, prefixes))
    assert_parity(listed, out[0][0], out[1][0])
    assert out[0][1:] == out[1][1:]
    assert out[1][2] == [len(release(v)) for v in range(6)]


# --- transfers (TransferMixin) ---------------------------------------------------------------


def _needs(client: DeltaGliderClient, *methods: str) -> None:
    missing = [m for m in methods if not callable(getattr(type(client), m, None))]
    if missing:
        pytest.fail(f"deltaglider's client has no {', '.join(missing)} yet")


def test_upload_and_download_file(pair: Pair, tmp_path: Path) -> None:
    _needs(pair.dg.client, "upload_file", "download_file")
    sources = {
        "app-1.0.zip": release(0),
        "app-1.1.zip": release(1),
        "notes.txt": b"notes\n",
        "empty.bin": b"",
        "big.bin": LARGE,
    }
    for name, data in sources.items():
        (tmp_path / name).write_bytes(data)
    for name, data in sources.items():
        seen: list[list[int]] = [[], []]
        extra = {"Metadata": {"n": name}, "ContentType": "application/x-thing"}
        for side, log in zip(pair.sides, seen, strict=True):
            result = side.client.upload_file(
                str(tmp_path / name),
                side.bucket,
                f"up/{name}",
                ExtraArgs=extra,
                Callback=log.append,
            )
            assert result is None
        assert sum(seen[0]) == sum(seen[1]) == len(data)
        same(pair, "head_object", Key=f"up/{name}")
    same(pair, "list_objects_v2", Prefix="up/")
    for name, data in sources.items():
        seen = [[], []]
        for side, log in zip(pair.sides, seen, strict=True):
            target = tmp_path / side.name / name
            target.parent.mkdir(exist_ok=True)
            side.client.download_file(side.bucket, f"up/{name}", str(target), Callback=log.append)
            assert target.read_bytes() == data
        assert sum(seen[0]) == sum(seen[1]) == len(data)
    info = pair.dg.client.head_object(Bucket=pair.dg.bucket, Key="up/app-1.1.zip")
    assert info["DeltaGliderInfo"]["IsDelta"]


@pytest.mark.parametrize("method", ["upload_file", "upload_fileobj"])
def test_upload_without_extra_args(pair: Pair, tmp_path: Path, method: str) -> None:
    """No ContentType given: the object gets S3's default type, as put_object's do."""
    _needs(pair.dg.client, method)
    path = tmp_path / "app-1.0.zip"
    path.write_bytes(release(0))
    for side in pair.sides:
        if method == "upload_file":
            side.client.upload_file(str(path), side.bucket, "plain/app-1.0.zip")
        else:
            with open(path, "rb") as fh:
                side.client.upload_fileobj(fh, side.bucket, "plain/app-1.0.zip")
    same(pair, "head_object", Key="plain/app-1.0.zip")


def test_upload_and_download_fileobj(pair: Pair, tmp_path: Path) -> None:
    _needs(pair.dg.client, "upload_fileobj", "download_fileobj")
    data = release(2)
    for side in pair.sides:
        got: list[int] = []
        side.client.upload_fileobj(
            io.BytesIO(data),
            side.bucket,
            "fo/app-1.2.zip",
            ExtraArgs={"Metadata": {"k": "v"}, "ContentType": "application/zip"},
            Callback=got.append,
        )
        assert sum(got) == len(data)
        out = io.BytesIO()
        got = []
        side.client.download_fileobj(side.bucket, "fo/app-1.2.zip", out, Callback=got.append)
        assert out.getvalue() == data and sum(got) == len(data)
        with open(tmp_path / f"{side.name}.zip", "wb") as fh:
            side.client.download_fileobj(Bucket=side.bucket, Key="fo/app-1.2.zip", Fileobj=fh)
        assert (tmp_path / f"{side.name}.zip").read_bytes() == data
    same(pair, "head_object", Key="fo/app-1.2.zip")


def test_transfer_errors(pair: Pair, tmp_path: Path) -> None:
    _needs(pair.dg.client, "download_file", "download_fileobj", "upload_file")
    outcomes = []
    for side in pair.sides:
        caught = []
        for call in (
            lambda s=side: s.client.download_file(s.bucket, "absent", str(tmp_path / "x")),
            lambda s=side: s.client.download_fileobj(s.bucket, "absent", io.BytesIO()),
        ):
            with pytest.raises(botocore.exceptions.ClientError) as exc:
                call()
            caught.append(exc.value.response["Error"]["Code"])
        with pytest.raises(FileNotFoundError):
            side.client.upload_file(str(tmp_path / "no-such-file"), side.bucket, "k")
        outcomes.append(caught)
    assert outcomes[0] == outcomes[1] == ["404", "404"]
    assert not (tmp_path / "x").exists()


# --- buckets (BucketMixin) -------------------------------------------------------------------


def test_bucket_lifecycle(s3_client: Any, dg_client: DeltaGliderClient, buckets: Buckets) -> None:
    _needs(
        dg_client,
        "create_bucket",
        "delete_bucket",
        "head_bucket",
        "list_buckets",
        "get_bucket_location",
    )
    pair = Pair(
        Side("boto3", s3_client, buckets.name("s3")), Side("dg", dg_client, buckets.name("dg"))
    )
    _, got = same(pair, "head_bucket")
    assert code(got) == ("404", 404)
    _, got = same(pair, "create_bucket")
    # Again: boto3 says it is already yours (409); deltaglider succeeds, as the original did
    # (a documented behaviour: a program that catches the error runs the same).
    ref, got = pair.call("create_bucket")
    assert code(ref)[1] == 409 and got["Location"] == f"/{pair.dg.bucket}"
    assert "Bucket creation and deletion" in BEHAVIOURS
    same(pair, "head_bucket")
    same(pair, "get_bucket_location")
    listings = pair.each(lambda s: s.client.list_buckets())
    for listing, side in zip(listings, pair.sides, strict=True):
        names = [b["Name"] for b in listing["Buckets"]]
        assert pair.s3.bucket in names and pair.dg.bucket in names, side.name
        assert all(isinstance(b["CreationDate"], datetime) for b in listing["Buckets"])
    assert_parity(pair, {k: v for k, v in listings[0].items() if k != "Buckets"},
                  {k: v for k, v in listings[1].items() if k != "Buckets"})  # fmt: skip
    # The entries of this test's buckets, field by field (both clients list the same server:
    # the entries are the same ones, names included).
    ours = [pair.s3.bucket, pair.dg.bucket]
    entries = [[b for b in listing["Buckets"] if b["Name"] in ours] for listing in listings]
    assert [b["Name"] for b in entries[0]] == [b["Name"] for b in entries[1]] == sorted(ours)
    diffs = differences({"Buckets": entries[0]}, {"Buckets": entries[1]})
    assert not diffs, diffs
    for a, b in zip(*entries, strict=True):
        assert a == b
    # Prefix and MaxBuckets, as S3 takes them
    prefix = pair.s3.bucket.rsplit("-", 1)[0]
    paged = pair.each(lambda s: s.client.list_buckets(Prefix=prefix, MaxBuckets=1))
    diffs = differences(paged[0], paged[1])
    assert not diffs, diffs
    pair.call("put_object", Key="rel/app-1.0.zip", Body=release(0))
    pair.call("put_object", Key="rel/app-1.1.zip", Body=release(1))
    _, got = same(pair, "delete_bucket")
    assert code(got) == ("BucketNotEmpty", 409)
    same(
        pair,
        "delete_objects",
        Delete={"Objects": [{"Key": "rel/app-1.0.zip"}, {"Key": "rel/app-1.1.zip"}]},
    )
    _, got = same(pair, "delete_bucket")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 204
    ref, got = pair.call("delete_bucket")  # gone already: 204 here, as the original's
    assert code(ref) == ("NoSuchBucket", 404)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 204
    _, got = same(pair, "get_bucket_location")
    assert code(got) == ("NoSuchBucket", 404)


def test_bucket_acl(pair: Pair) -> None:
    _needs(pair.dg.client, "put_bucket_acl", "get_bucket_acl")
    same(pair, "get_bucket_acl")
    same(pair, "put_bucket_acl", ACL="private")
    same(pair, "get_bucket_acl")
    _, got = same(pair, "get_bucket_acl", Bucket=lambda s: s.bucket + "-absent")
    assert code(got) == ("NoSuchBucket", 404)


@pytest.mark.parametrize("key", ["rel/app-1.1.zip", "plain.txt"])
def test_generate_presigned_url(pair: Pair, key: str) -> None:
    _needs(pair.dg.client, "generate_presigned_url")
    pair.call("put_object", Key="rel/app-1.0.zip", Body=release(0))
    pair.call("put_object", Key="rel/app-1.1.zip", Body=release(1))
    pair.call("put_object", Key="plain.txt", Body=b"plain")
    expected = release(1) if key.endswith(".zip") else b"plain"
    for side in pair.sides:
        url = side.client.generate_presigned_url(
            "get_object", Params={"Bucket": side.bucket, "Key": key}, ExpiresIn=300
        )
        assert isinstance(url, str) and url.startswith("http")
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.read() == expected, side.name


@pytest.mark.parametrize("key", ["rel/app-1.1.zip", "plain.txt"])
def test_presigned_head_object(pair: Pair, key: str) -> None:
    """A presigned HEAD answers as boto3's: status, length, type, user metadata (a delta's
    URL points at its rebuilt copy; the headers deltaglider keeps for itself, x-amz-meta-dg-*,
    are visible there, as BEHAVIOURS says)."""
    pair.call("put_object", Key="rel/app-1.0.zip", Body=release(0))
    pair.call("put_object", Key="rel/app-1.1.zip", Body=release(1), Metadata={"v": "1"},
              ContentType="application/zip")  # fmt: skip
    pair.call("put_object", Key="plain.txt", Body=b"plain", Metadata={"v": "p"},
              ContentType="text/plain")  # fmt: skip
    answers = []
    for side in pair.sides:
        url = side.client.generate_presigned_url(
            "head_object", Params={"Bucket": side.bucket, "Key": key}, ExpiresIn=300
        )
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=30) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            answers.append((response.status, headers))
        # A GET with the HEAD's URL is refused, as for boto3's (the signature is the method's).
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=30)
        assert refused.value.code == 403, side.name
    (status, ref), (got_status, got) = answers
    assert status == got_status == 200
    for name in ("content-length", "content-type", "x-amz-meta-v"):
        assert ref.get(name) == got.get(name), name
    assert re.fullmatch(r'"[0-9a-f]{32}"', got["etag"])
    user = {k for k in got if k.startswith("x-amz-meta-") and not k.startswith("x-amz-meta-dg-")}
    assert user == {k for k in ref if k.startswith("x-amz-meta-")}
    head = pair.dg.client.head_object(Bucket=pair.dg.bucket, Key=key)
    assert int(got["content-length"]) == head["ContentLength"]
    # A missing key: both presign it (the URL answers 404), as the original does too.
    for side in pair.sides:
        url = side.client.generate_presigned_url(
            "head_object", Params={"Bucket": side.bucket, "Key": "absent"}
        )
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=30)
        assert missing.value.code == 404, side.name
    assert "generate_presigned_url" in BEHAVIOURS
