"""Benchmark: ``deltaglider ls`` of a prefix holding 5,000 deltas vs ``aws s3 ls`` of it.

    python bench/cli.py            # --help for options; --quick for a smoke test

On a local SeaweedFS (127.0.0.1, telemetry off, data on tmpfs), one bucket gets ``count``
small similar ``.zip`` files (~30 KB each) under one prefix, stored through the library
(``DeltaStore.put_many``) since uploading them one by one through the CLI would take long;
each is checked to be stored as a delta (physical key ``*.delta``).

Then, interleaved (the order alternating from one repetition to the next, so that the
server's pauses hit both alike), each installed executable in a process of its own:

- ``aws s3 ls s3://bucket/prefix/`` against ``deltaglider ls s3://bucket/prefix/``: the bar;
- the same with ``--summarize`` and human-readable sizes;
- the whole bucket, recursively;
- ``ls`` of the buckets (one ListBuckets request): what starting each tool costs.

``aws`` lists the stored objects (``x.zip.delta`` with the delta's size, and the reference);
``deltaglider`` the logical ones (``x.zip`` with the size a download gives, one HEAD per
delta). The listings are checked: the same names, and deltaglider's sizes those of the files
stored. Also timed: the listing in-process through the library, with and without the
logical sizes. Bar: ``deltaglider ls`` of the prefix at most 3x the time of ``aws s3 ls``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from originals import awscli  # noqa: E402
from servers import REGION, SeaweedFS, Server  # noqa: E402

BUCKET = "bench-cli-ls"
PREFIX = "releases/"
BAR = 3.0


def deltaglider_exe() -> Path:
    """The installed ``deltaglider`` of the environment running this script."""
    exe = Path(sys.executable).parent / "deltaglider"
    if not exe.exists():
        raise SystemExit(f"no deltaglider executable next to {sys.executable}")
    return exe


def payloads(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """``count`` similar zip-like files: one random ~30 KB body, each with a few bytes of its
    own (a version string, a handful of changed bytes) and a length of its own."""
    rng = random.Random(seed)
    base = rng.randbytes(32_000)
    out = []
    for i in range(count):
        r = random.Random(i)
        body = bytearray(b"PK\x03\x04" + base[: 28_000 + i % 997])
        for _ in range(8):
            at = r.randrange(64, len(body) - 16)
            body[at : at + 16] = r.randbytes(16)
        body += f"app version 1.{i // 100}.{i % 100}\n".encode()
        out.append((f"{PREFIX}app-1.{i // 100}.{i % 100}.zip", bytes(body)))
    return out


def make_store(server: Server) -> Any:
    from deltaglider.cache import MemoryCache
    from deltaglider.config import Config
    from deltaglider.engine import DeltaStore
    from deltaglider.storage.s3 import S3Storage

    storage = S3Storage(
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region=REGION,
    )
    return DeltaStore(
        storage, MemoryCache(256 << 20), Config.from_env(environ={}, cache_backend="memory")
    )


def setup(store: Any, files: list[tuple[str, bytes]]) -> float:
    """Stores the files as deltas; the time it took."""
    store.storage.create_bucket(BUCKET)
    t = time.perf_counter()
    for key, result, exc in store.put_many(BUCKET, files):
        if exc:
            raise SystemExit(f"storing {key} failed: {exc!r}")
        assert result is not None
    took = time.perf_counter() - t
    physical = [o.key for o in store.storage.iter_objects(BUCKET, prefix=PREFIX)]
    deltas = [k for k in physical if k.endswith(".delta")]
    others = sorted(set(physical) - set(deltas))
    # One file became the reference (reference.bin) and is also stored as a delta of it.
    if len(deltas) != len(files) or others != [PREFIX + "reference.bin"]:
        raise SystemExit(
            f"expected {len(files)} deltas and the reference under {PREFIX}, found "
            f"{len(deltas)} deltas and {others[:5]}"
        )
    return took


def run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return took, proc.stdout


def parse_ls(out: str) -> dict[str, str]:
    """Object lines of an ``ls`` listing: name -> size as printed (PRE and totals skipped)."""
    entries = {}
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[0][:1].isdigit():
            entries[parts[3]] = parts[2]
    return entries


def parse_ls_human(out: str) -> list[str]:
    """Names of the object lines of a human-readable listing (a size is "n unit")."""
    names = []
    for line in out.splitlines():
        if line[:1].isdigit():
            names.append(line.split(None, 4)[-1])
    return names


def check_listings(aws_out: str, dg_out: str, files: list[tuple[str, bytes]]) -> tuple[int, int]:
    """Both name the same files; deltaglider's sizes are the stored files' sizes."""
    aws = parse_ls(aws_out)
    dg = parse_ls(dg_out)
    expected = {key[len(PREFIX) :]: len(data) for key, data in files}
    aws_names = {n[: -len(".delta")] for n in aws if n.endswith(".delta")}
    extra = sorted(n for n in aws if not n.endswith(".delta"))
    problems = []
    if aws_names != set(expected):
        problems.append(f"aws's .delta names differ from the files ({len(aws_names)})")
    if extra != ["reference.bin"]:
        problems.append(f"aws lists other objects: {extra[:5]}")
    if set(dg) != set(expected):
        problems.append(f"deltaglider's names differ from the files ({len(dg)})")
    wrong = [n for n, size in expected.items() if dg.get(n) != str(size)]
    if wrong:
        problems.append(f"{len(wrong)} deltaglider sizes are not the files' sizes: {wrong[:3]}")
    if problems:
        raise SystemExit("listings disagree:\n  " + "\n  ".join(problems))
    return len(aws), len(dg)


def compare(
    label: str,
    aws_args: list[str],
    dg_args: list[str],
    env: dict[str, str],
    repeat: int,
    check: Callable[[str, str], str] | None = None,
) -> dict[str, Any]:
    """Both commands ``repeat`` times, alternating which goes first (ABBA)."""
    times: dict[str, list[float]] = {"aws": [], "dg": []}
    outputs: dict[str, str] = {}
    commands = {"aws": aws_args, "dg": dg_args}
    for i in range(repeat):
        for tool in ("aws", "dg") if i % 2 == 0 else ("dg", "aws"):
            took, out = run(commands[tool], env)
            times[tool].append(took)
            outputs[tool] = out
    a, d = statistics.median(times["aws"]), statistics.median(times["dg"])
    note = check(outputs["aws"], outputs["dg"]) if check else ""
    print(
        f"  {label:38s} aws {a:6.2f} s   deltaglider {d:6.2f} s   ratio {d / a:5.2f}x"
        f"{'   ' + note if note else ''}"
    )
    return {"aws_s": a, "dg_s": d, "ratio": d / a, "aws_all": times["aws"], "dg_all": times["dg"]}


def in_process(store: Any, repeat: int, count: int) -> dict[str, float]:
    """The library's listing of the prefix, without and with logical sizes."""
    out = {}
    for sizes in (False, True):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            listed = list(store.iter_objects(BUCKET, prefix=PREFIX, logical_sizes=sizes))
            times.append(time.perf_counter() - t)
            assert len(listed) == count, len(listed)
            if sizes:
                assert all(o.size is not None for o in listed)
        out["with_sizes" if sizes else "without_sizes"] = statistics.median(times)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="deltas under the prefix")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command")
    parser.add_argument("--quick", action="store_true", help="smoke test: 300 deltas, 2 runs")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the server running with the bucket (prints how to reach and stop it)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.count, args.repeat = min(args.count, 300), min(args.repeat, 2)
    aws = str(awscli())
    dg = str(deltaglider_exe())

    server_proc = SeaweedFS(memory=True)
    server = server_proc.start()
    results: dict[str, Any] = {"count": args.count, "repeat": args.repeat}
    store = None
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            env = server.env(
                HOME=str(tmp),  # no ~/.aws of the user's
                AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
                AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
                DG_CACHE_DIR=str(tmp / "dg-cache"),
                DG_SUPPRESS_DEPRECATION="1",
                DG_LOG_LEVEL="WARNING",
            )
            env.pop("DG_CACHE_ENCRYPTION_KEY", None)
            endpoint = ["--endpoint-url", server.endpoint_url]
            files = payloads(args.count)
            logical = sum(len(d) for _, d in files)
            store = make_store(server)
            took = setup(store, files)
            stored = sum(o.size for o in store.storage.iter_objects(BUCKET, prefix=PREFIX))
            results["setup_s"] = took
            print(
                f"setup: {args.count} files ({logical / 1e6:.1f} MB) stored as {args.count} "
                f"deltas + a reference ({stored / 1e6:.2f} MB) by DeltaStore.put_many in "
                f"{took:.1f} s ({args.count / took:.0f} files/s)"
            )
            url = f"s3://{BUCKET}/{PREFIX}"
            print(f"\n== ls, median of {args.repeat} interleaved runs (each in its own process)")

            def check_prefix(aws_out: str, dg_out: str) -> str:
                a, d = check_listings(aws_out, dg_out, files)
                return f"(listings agree: aws {a} lines, deltaglider {d})"

            def check_summary(aws_out: str, dg_out: str) -> str:
                a, d = parse_ls_human(aws_out), parse_ls_human(dg_out)
                want = f"Total Objects: {args.count}"
                if len(d) != args.count or want not in " ".join(dg_out.split()):
                    raise SystemExit(f"deltaglider --summarize: {dg_out[-300:]!r}")
                return f"({len(a)} / {len(d)} objects)"

            def check_recursive(aws_out: str, dg_out: str) -> str:
                a, d = parse_ls(aws_out), parse_ls(dg_out)
                if len(d) != args.count or len(a) != args.count + 1:
                    raise SystemExit(f"-r listings: aws {len(a)} objects, deltaglider {len(d)}")
                return f"({len(a)} / {len(d)} objects)"

            runs = {
                "buckets": (
                    "ls (buckets: start-up + 1 request)",
                    [aws, "s3", "ls", *endpoint],
                    [dg, "ls", "--no-progress", *endpoint],
                    None,
                ),
                "prefix": (
                    f"ls {url}",
                    [aws, "s3", "ls", url, *endpoint],
                    [dg, "ls", url, "--no-progress", *endpoint],
                    check_prefix,
                ),
                "summarize": (
                    "ls --summarize -h (prefix)",
                    [aws, "s3", "ls", url, "--summarize", "--human-readable", *endpoint],
                    [dg, "ls", url, "--summarize", "-h", "--no-progress", *endpoint],
                    check_summary,
                ),
                "recursive": (
                    f"ls -r s3://{BUCKET}",
                    [aws, "s3", "ls", f"s3://{BUCKET}", "--recursive", *endpoint],
                    [dg, "ls", "-r", f"s3://{BUCKET}", "--no-progress", *endpoint],
                    check_recursive,
                ),
            }
            results["ls"] = {}
            for name, (label, a_args, d_args, check) in runs.items():
                results["ls"][name] = compare(label, a_args, d_args, env, args.repeat, check)
            lib = in_process(store, args.repeat, args.count)
            results["library"] = lib
            print(
                f"  {'in-process, DeltaStore.iter_objects':38s} without sizes "
                f"{lib['without_sizes']:.2f} s, with logical sizes (1 HEAD a delta) "
                f"{lib['with_sizes']:.2f} s"
            )
    finally:
        if args.keep:
            if store is not None:
                store.close()
            print(
                f"\nkept: SeaweedFS (pid {server_proc.proc.pid if server_proc.proc else '?'}, "
                f"data in {server_proc.dir}) at {server.endpoint_url}, bucket {BUCKET}; "
                f"AWS_ACCESS_KEY_ID={server.access_key} "
                f"AWS_SECRET_ACCESS_KEY={server.secret_key}; stop it with "
                f"kill -- -{server_proc.proc.pid if server_proc.proc else '?'} "
                f"&& rm -rf {server_proc.dir}"
            )
        else:
            if store is not None:
                try:
                    keys = [o.key for o in store.storage.iter_objects(BUCKET)]
                    if keys:
                        store.storage.delete_many(BUCKET, keys)
                    store.storage.delete_bucket(BUCKET)
                except Exception as exc:  # the server and its data go anyway
                    print(f"cleanup: {exc!r}", file=sys.stderr)
                store.close()
            server_proc.stop()
    p = results["ls"]["prefix"]
    ok = p["ratio"] <= BAR
    results["pass"] = ok
    print(
        f"\nls {args.count} deltas: deltaglider {p['dg_s']:.2f} s, aws {p['aws_s']:.2f} s, "
        f"ratio {p['ratio']:.2f}x (bar <= {BAR:g}x): {'PASS' if ok else 'FAIL'}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("DG_DISABLE_EC2_DETECTION", "1")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    sys.exit(main())
