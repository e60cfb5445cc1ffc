"""Soak: mixed concurrent operations from several processes against SeaweedFS, for a bounded
time, with each worker's memory (RSS) and open files sampled.

Run by ``test_soak.py`` (which starts it in the background when the session begins, so it
overlaps the rest of the suite), or by hand for a longer run::

    python tests/reliability/soak.py --seconds 600 --workers 4 --out soak.json

It starts a SeaweedFS of its own (127.0.0.1). Each worker is a separate process with its own
``create_client()`` (the encrypted filesystem cache in a folder of its own, temporary files in
a folder of its own) and loops over random operations: put, get and check, upload_file,
download_file and check, copy, head, delete, list (paginated). The workers share deltaspaces
(so references are created, shared and removed under them) but each checks only the keys it
wrote, so a read can be held to exact bytes. A worker keeps at most ``LIVE`` keys of its own, so
the bucket, and what a listing costs, stays the same size over the run.

The clock starts once every worker has done every kind of operation three times on the
largest files and opened its connection pools to their full size (imports, buffers, pools and
the cache are warm); samples are taken every ``--every`` seconds. At the end each worker reads
back every key it holds, and the runner reports what is left: files in the workers' temporary
and download folders, objects under ``.deltaglider/`` and multipart uploads still open. The
report (JSON) is all the test reads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from data import release  # noqa: E402
from servers import REGION, SeaweedFS, Server  # noqa: E402

#: Keys a worker keeps at most; the oldest is deleted first past it.
LIVE = 24
#: Deltaspaces shared by all workers.
SPACES = 4
#: Connections (and HEAD threads) per worker.
POOL = 8
OPERATIONS = ("put", "get", "upload_file", "download_file", "copy", "head", "delete", "list")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: Versions of one release: deltas against the deltaspace's reference, some stored whole.
VERSIONS = 40


def _content(rng: random.Random, largest: bool = False) -> bytes:
    if largest:  # the warm-up: the largest buffers any operation will need
        return max(
            (release(v, seed=s) for v in (VERSIONS - 2, VERSIONS - 1) for s in (1, 2)), key=len
        )
    return release(rng.randrange(1, VERSIONS), seed=rng.randrange(1, 3))


def worker(
    index: int,
    server: dict[str, str],
    bucket: str,
    base: str,
    ready: Any,
    start: Any,
    stop_at: Any,
    results: Any,
    pause: float = 0.0,
) -> None:
    """One process: warm-up (every operation once), then random operations until stop_at."""
    root = Path(base) / f"w{index}"
    tmp = root / "tmp"
    downloads = root / "downloads"
    for folder in (tmp, downloads):
        folder.mkdir(parents=True)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)
    os.environ["DG_CACHE_DIR"] = str(root / "cache")
    os.environ["DG_CACHE_BACKEND"] = "filesystem"
    os.environ["DG_CACHE_MAX_SIZE_MB"] = "16"

    from botocore.config import Config as BotoConfig

    from deltaglider import create_client

    client = create_client(
        server["endpoint_url"],
        aws_access_key_id=server["access_key"],
        aws_secret_access_key=server["secret_key"],
        region_name=REGION,
        # Small pools, filled before the clock starts: a pool filling up is not a leak.
        config=BotoConfig(max_pool_connections=POOL),
    )
    rng = random.Random(1000 + index)
    mine: dict[str, str] = {}  # key -> sha256 it must have
    order: list[str] = []
    counts = dict.fromkeys(OPERATIONS, 0)
    wrong: list[str] = []
    errors: list[str] = []
    serial = 0
    open_files: dict[str, int] = {}

    def new_key() -> str:
        nonlocal serial
        serial += 1
        return f"s{rng.randrange(SPACES)}/w{index}-{serial}.zip"

    def remember(key: str, sha: str) -> None:
        if key not in mine:
            order.append(key)
        mine[key] = sha
        while len(order) > LIVE:
            old = order.pop(0)
            client.delete_object(Bucket=bucket, Key=old)
            del mine[old]

    def one(op: str, largest: bool = False) -> None:
        if op == "put" or not mine:
            data = _content(rng, largest)
            key = new_key()
            client.put_object(Bucket=bucket, Key=key, Body=data)
            remember(key, _sha(data))
            if op != "put":
                return
        elif op == "get":
            key = rng.choice(order)
            with client.get_object(Bucket=bucket, Key=key)["Body"] as body:
                if _sha(body.read()) != mine[key]:
                    wrong.append(f"get {key}")
        elif op == "upload_file":
            data = _content(rng, largest)
            path = downloads / "upload.bin"
            path.write_bytes(data)
            key = new_key()
            client.upload_file(str(path), bucket, key)
            path.unlink()
            remember(key, _sha(data))
        elif op == "download_file":
            key = rng.choice(order)
            path = downloads / "download.bin"
            client.download_file(bucket, key, str(path))
            if _sha(path.read_bytes()) != mine[key]:
                wrong.append(f"download_file {key}")
            path.unlink()
        elif op == "copy":
            source = rng.choice(order)
            key = new_key()
            client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source})
            remember(key, mine[source])
        elif op == "head":
            key = rng.choice(order)
            client.head_object(Bucket=bucket, Key=key)
        elif op == "delete":
            key = rng.choice(order)
            client.delete_object(Bucket=bucket, Key=key)
            order.remove(key)
            del mine[key]
        elif op == "list":
            prefix = f"s{rng.randrange(SPACES)}/"
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 50}
            )
            seen = {o["Key"] for page in pages for o in page.get("Contents", [])}
            missing = {k for k in mine if k.startswith(prefix)} - seen  # only I delete mine
            if missing:
                wrong.append(f"list: {sorted(missing)[:3]} missing")
        counts[op] += 1

    def fill_pools() -> None:
        """Opens the connection pools to their full size: 40 deltas listed with their logical
        sizes (parallel HEADs) and 40 HEADs at once (POOL connections are kept). What grows
        later is then not a pool."""
        warm = [f"warm/w{index}/{n}.zip" for n in range(40)]
        for n, key in enumerate(warm):
            client.put_object(Bucket=bucket, Key=key, Body=release(n % 30 + 1))
        for _ in range(3):
            client.list_objects_v2(Bucket=bucket, Prefix=f"warm/w{index}/")
            with ThreadPoolExecutor(len(warm)) as pool:
                list(pool.map(lambda k: client.head_object(Bucket=bucket, Key=k), warm))
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in warm]})

    try:
        for _ in range(3):  # every operation, on the largest files
            for op in OPERATIONS:
                one(op, largest=True)
        fill_pools()
        ready.release()
        start.wait()
        while time.time() < stop_at.value:
            if pause:
                time.sleep(rng.uniform(0, 2 * pause))
            try:
                one(rng.choice(OPERATIONS))
            except Exception as exc:  # counted and reported: the test fails on any
                errors.append(f"{type(exc).__name__}: {exc}")
                if len(errors) > 20:
                    break
        for key, sha in mine.items():  # everything this worker holds reads back exactly
            with client.get_object(Bucket=bucket, Key=key)["Body"] as body:
                if _sha(body.read()) != sha:
                    wrong.append(f"final {key}")
        open_files = _open_files()
        client.close()
    except Exception:  # reported: the test fails on it
        errors.append(traceback.format_exc())
        ready.release()
    results.put(
        {
            "worker": index,
            "open_files": open_files,
            "counts": counts,
            "wrong": wrong,
            "errors": errors,
            "held": len(mine),
            "leftover_files": sorted(
                [str(p.relative_to(root)) for d in (tmp, downloads) for p in d.rglob("*")]
                # the cache keeps entries (*.ref) in folders and the user's key (cache/key); a
                # temporary write left is a leak
                + [
                    str(p.relative_to(root))
                    for p in (root / "cache").rglob("*")
                    if p.is_file() and not p.name.endswith(".ref") and p != root / "cache" / "key"
                ]
            ),
        }
    )


def _open_files() -> dict[str, int]:
    """This process's open files by kind (socket, pipe, anon_inode, or the path)."""
    kinds: dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":")[0] if ":" in target else target
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _rss_and_fds(pid: int) -> tuple[int, int] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        return rss * 1024, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None


def run(
    seconds: float,
    workers: int,
    every: float,
    pause: float = 0.0,
    server: Server | None = None,
) -> dict[str, Any]:
    own = None
    if server is None:
        own = SeaweedFS()
        server = own.start()
    base = tempfile.mkdtemp(prefix="dg-soak-")
    bucket = f"soak-{os.getpid()}"
    try:
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name=REGION,
        )
        s3.create_bucket(Bucket=bucket)
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Semaphore(0)
        start = ctx.Event()
        stop_at = ctx.Value("d", 0.0)
        results = ctx.Queue()
        spec = {
            "endpoint_url": server.endpoint_url,
            "access_key": server.access_key,
            "secret_key": server.secret_key,
        }
        procs = [
            ctx.Process(
                target=worker,
                args=(i, spec, bucket, base, ready, start, stop_at, results, pause),
                daemon=True,  # ended with the runner if it is stopped
            )
            for i in range(workers)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            if not ready.acquire(timeout=300):
                raise RuntimeError("a worker did not warm up within 300 s")
        t0 = time.time()
        stop_at.value = t0 + seconds
        start.set()
        samples: list[dict[str, Any]] = []
        while time.time() < stop_at.value:
            for i, p in enumerate(procs):
                got = _rss_and_fds(p.pid or 0)
                if got:
                    samples.append(
                        {"t": time.time() - t0, "worker": i, "rss": got[0], "fds": got[1]}
                    )
            time.sleep(min(every, max(0.0, stop_at.value - time.time())))
        reports = [results.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(60)
        listing = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        keys = [o["Key"] for page in listing for o in page.get("Contents", [])]
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        report = {
            "seconds": seconds,
            "pause": pause,
            "workers": workers,
            "samples": samples,
            "reports": sorted(reports, key=lambda r: r["worker"]),
            "exit_codes": [p.exitcode for p in procs],
            "internal_objects": [k for k in keys if k.startswith(".deltaglider/")],
            "open_uploads": [u["Key"] for u in uploads],
        }
        for key in keys:
            s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)
        return report
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if own is not None:
            own.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=150)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--pause", type=float, default=0.0, help="mean seconds between ops")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    # Stopped (SIGTERM): end through the finally blocks, which stop SeaweedFS.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.setdefault("DG_DISABLE_EC2_DETECTION", "1")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    report = run(args.seconds, args.workers, args.every, args.pause)
    args.out.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
