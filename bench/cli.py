"""Benchmarks of the CLI: ``ls`` of 5,000 deltas vs ``aws s3 ls``; ``migrate`` vs the original's.

    python bench/cli.py            # --help for options; --quick for a smoke test
    python bench/cli.py --only ls  # or --only migrate (default: all)

ls
--

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

migrate
-------
A source bucket gets ``--migrate-count`` (1,000) plain objects, put straight to the storage in
parallel: 20 folders (products) of similar ``.zip`` releases of 100-200 KB (one random base a
folder, a few small changes a version). Then each tool runs, in a process of its own with a
cold cache, ``migrate s3://src/releases/ s3://<fresh bucket>/ --yes`` (both keep the source's
last folder: ``<bucket>/releases/...``), then the same command again over the completed
destination (the resume: nothing to do):

- ``deltaglider`` with its default 8 workers (``--max-workers``);
- the original DeltaGlider (6.2.0, its own venv; sequential, an ``xdelta3`` subprocess a file).
  It exits 0 even when files failed: its summary is read, and every destination is checked.

Each destination is read back through the library (every object byte-exact, no other logical
keys), and its stored bytes summed (every physical object). Reported: median wall times, the
speed-up (original/deltaglider), the stored bytes and their ratio (deltaglider/original). Runs
of each (``--repeat-migrate``): 3, but the original's 1 if its first takes over a minute.
Fails (exit 1) if a deltaglider run is wrong; what the original gets wrong is reported.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
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
from originals import awscli, build  # noqa: E402
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


def bench_ls(
    args: argparse.Namespace,
    aws: str,
    dg: str,
    store: Any,
    env: dict[str, str],
    endpoint: list[str],
    results: dict[str, Any],
) -> None:
    """The ls section (see the module's notes): the bucket, then each command."""
    files = payloads(args.count)
    logical = sum(len(d) for _, d in files)
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


def ls_verdict(args: argparse.Namespace, results: dict[str, Any]) -> bool:
    p = results["ls"]["prefix"]
    ok = bool(p["ratio"] <= BAR)
    results["pass"] = ok
    print(
        f"\nls {args.count} deltas: deltaglider {p['dg_s']:.2f} s, aws {p['aws_s']:.2f} s, "
        f"ratio {p['ratio']:.2f}x (bar <= {BAR:g}x): {'PASS' if ok else 'FAIL'}"
    )
    return ok


# -- migrate -----------------------------------------------------------------------------------

MIGRATE_SRC = "bench-migrate-src"
MIGRATE_PREFIX = "releases/"
MIGRATE_FOLDERS = 20
#: Above this (seconds), the original's first migrate is not repeated (unless --repeat-migrate).
SLOW = 60.0


def release_files(count: int, seed: int = 11) -> list[tuple[str, bytes]]:
    """``count`` plain release files in 20 folders (one product each): per folder one random
    base of 100-200 KB; each version is that base cut to a length of its own (up to 2 KB
    shorter), with eight 16-byte changes and its version string, so deltas are small."""
    rng = random.Random(seed)
    folders = min(MIGRATE_FOLDERS, count)
    out = []
    for f in range(folders):
        base = rng.randbytes(rng.randrange(100_000, 198_000))
        for v in range(count // folders + (f < count % folders)):
            r = random.Random(f * 100_003 + v)
            body = bytearray(b"PK\x03\x04" + base[: len(base) - r.randrange(2_000)])
            for _ in range(8):
                at = r.randrange(64, len(body) - 16)
                body[at : at + 16] = r.randbytes(16)
            version = f"3.{v // 10}.{v % 10}"
            body += f"app{f:02d} version {version}\n".encode()
            out.append((f"{MIGRATE_PREFIX}app{f:02d}/app{f:02d}-{version}.zip", bytes(body)))
    return out


def setup_source(store: Any, files: list[tuple[str, bytes]]) -> float:
    """Puts the files as plain objects (straight to the storage, in parallel); the time."""
    store.storage.create_bucket(MIGRATE_SRC)
    t = time.perf_counter()
    for (key, _), _, exc in store.pools.operations.as_completed(
        lambda key, data: store.storage.put(MIGRATE_SRC, key, data), files
    ):
        if exc:
            raise SystemExit(f"putting {key} failed: {exc!r}")
    took = time.perf_counter() - t
    listed = {o.key: o.size for o in store.storage.iter_objects(MIGRATE_SRC)}
    if listed != {key: len(data) for key, data in files}:
        raise SystemExit(f"the source bucket holds {len(listed)} objects, not the files")
    return took


def run_migrate(
    args: list[str], env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    return time.perf_counter() - t, proc


def inspect_destination(store: Any, bucket: str, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Reads every file back from ``bucket`` through the library (the destination keys are the
    source keys: ``releases/`` kept under the bucket's root) and sums the stored objects."""
    want = {key for key, _ in files}
    listed = {o.key for o in store.iter_objects(bucket)}
    differ: list[str] = []
    errors: dict[str, str] = {}

    def reads_back(key: str, data: bytes) -> bool:
        out = io.BytesIO()
        store.get(bucket, key, out)
        return out.getvalue() == data

    for (key, _), same, exc in store.pools.operations.as_completed(reads_back, files):
        if exc:
            errors[key] = repr(exc)
        elif not same:
            differ.append(key)
    physical = list(store.storage.iter_objects(bucket))
    deltas = sum(o.key.endswith(".delta") for o in physical)
    refs = sum(o.key.endswith("/reference.bin") for o in physical)
    return {
        "exact": len(files) - len(differ) - len(errors),
        "missing": sorted(want - listed),
        "extra": sorted(listed - want),
        "differ": sorted(differ),
        "errors": errors,
        "stored_bytes": sum(o.size for o in physical),
        "objects": len(physical),
        "deltas": deltas,
        "references": refs,
        "other": len(physical) - deltas - refs,
    }


def migrate_once(
    tool: str,
    exe: str,
    n: int,
    store: Any,
    env: dict[str, str],
    tmp: Path,
    files: list[tuple[str, bytes]],
    made: list[str],
) -> dict[str, Any]:
    """One migrate of the source into a fresh bucket, then the same command again (the
    resume: nothing left to do), each timed; then the destination is read back."""
    bucket = f"bench-migrate-{tool}-{n}"
    store.storage.create_bucket(bucket)
    made.append(bucket)
    run_env = {**env, "DG_CACHE_DIR": str(tmp / f"migrate-cache-{tool}-{n}")}
    args = [exe, "migrate", f"s3://{MIGRATE_SRC}/{MIGRATE_PREFIX}", f"s3://{bucket}/", "--yes"]
    args += ["--endpoint-url", env["AWS_ENDPOINT_URL"]]
    if tool == "dg":
        args.append("--no-progress")
    took, first = run_migrate(args, run_env)
    resume_s, second = run_migrate(args, run_env)
    out: dict[str, Any] = {"bucket": bucket, "seconds": took, "resume_seconds": resume_s}
    out["exit"], out["resume_exit"] = first.returncode, second.returncode
    out["resume_nothing_to_do"] = "Nothing to do." in second.stdout
    if not out["resume_nothing_to_do"]:
        out["resume_output"] = (second.stdout + second.stderr)[-1500:]
    if tool == "original":
        # It exits 0 whatever failed; its summary says.
        ok = re.search(r"Successfully migrated: (\d+) files", first.stdout)
        bad = re.search(r"Failed: (\d+) files", first.stdout)
        out["reported_migrated"] = int(ok.group(1)) if ok else None
        out["reported_failed"] = int(bad.group(1)) if bad else 0
        failures = [line.strip() for line in first.stdout.splitlines() if "✗" in line]
        if failures:
            out["failures"] = failures[:20]
    if first.returncode or out.get("reported_failed"):
        out["output"] = (first.stdout[-3000:], first.stderr[-3000:])
    out.update(inspect_destination(store, bucket, files))
    return out


def describe_run(label: str, n: int, r: dict[str, Any], count: int) -> list[str]:
    """The run's line, and lines for whatever went wrong."""
    resume = "nothing to do" if r["resume_nothing_to_do"] else "DID WORK"
    lines = [
        f"  {label:18s} run {n}: {r['seconds']:7.1f} s, resume {r['resume_seconds']:5.2f} s "
        f"({resume}); stored {r['stored_bytes'] / 1e6:.2f} MB in {r['objects']} objects "
        f"({r['deltas']} deltas, {r['references']} references, {r['other']} other); "
        f"read back byte-exact {r['exact']}/{count}"
    ]
    problems = []
    if r["exit"] or r["resume_exit"]:
        problems.append(f"exit codes {r['exit']} / {r['resume_exit']} (first / resume run)")
    if r.get("reported_failed"):
        problems.append(f"it reports {r['reported_failed']} failed files")
    for name in ("missing", "extra", "differ"):
        if r[name]:
            problems.append(f"{len(r[name])} {name}: {r[name][:3]}")
    if r["errors"]:
        problems.append(f"{len(r['errors'])} unreadable: {list(r['errors'].items())[:2]}")
    if not r["resume_nothing_to_do"]:
        problems.append(f"the resume run did work: {r.get('resume_output', '')[-600:]!r}")
    for failure in r.get("failures", [])[:5]:
        problems.append(f"failure: {failure}")
    if "output" in r and (r["exit"] or not r.get("failures")):
        problems.append(f"output: {r['output'][0][-800:]!r} {r['output'][1][-800:]!r}")
    lines += [f"    ! {p}" for p in problems]
    return lines


def run_ok(r: dict[str, Any]) -> bool:
    return (
        not r["exit"]
        and not r["resume_exit"]
        and not r.get("reported_failed")
        and r["resume_nothing_to_do"]
        and not (r["missing"] or r["extra"] or r["differ"] or r["errors"])
    )


def bench_migrate(
    args: argparse.Namespace,
    dg: str,
    original: str,
    store: Any,
    env: dict[str, str],
    tmp: Path,
    made: list[str],
) -> dict[str, Any]:
    """The migrate section: the source bucket, then each tool into fresh buckets."""
    files = release_files(args.migrate_count)
    logical = sum(len(d) for _, d in files)
    took = setup_source(store, files)
    print(
        f"\nsetup: {len(files)} plain .zip objects in {min(MIGRATE_FOLDERS, len(files))} folders "
        f"({logical / 1e6:.1f} MB, {min(len(d) for _, d in files) // 1000}-"
        f"{max(len(d) for _, d in files) // 1000} KB each) put in s3://{MIGRATE_SRC}/"
        f"{MIGRATE_PREFIX} in {took:.1f} s"
    )
    env = dict(env)
    env.pop("DG_MAX_WORKERS", None)  # deltaglider's default --max-workers (8)
    labels = {"dg": "deltaglider", "original": f"original {args.original}"}
    repeat: dict[str, int | None] = {
        "dg": args.repeat_migrate or 3,
        "original": args.repeat_migrate,  # None: decided by its first run
    }
    print(
        f"\n== migrate s3://{MIGRATE_SRC}/{MIGRATE_PREFIX} s3://<fresh bucket>/ --yes, each tool "
        f"in its own process; deltaglider with its default 8 workers, the original sequential "
        f"(xdelta3 subprocess per file); {os.cpu_count()} CPU cores"
    )
    runs: dict[str, list[dict[str, Any]]] = {"dg": [], "original": []}
    exes = {"dg": dg, "original": original}
    i = 0
    while True:
        order = ("original", "dg") if i % 2 == 0 else ("dg", "original")
        pending = [t for t in order if repeat[t] is None or len(runs[t]) < (repeat[t] or 0)]
        if not pending:
            break
        for tool in pending:
            r = migrate_once(tool, exes[tool], i + 1, store, env, tmp, files, made)
            runs[tool].append(r)
            for line in describe_run(labels[tool], i + 1, r, len(files)):
                print(line, flush=True)
            if repeat[tool] is None:
                repeat[tool] = 1 if r["seconds"] > SLOW else 3
                print(
                    f"    (the original took {'more' if r['seconds'] > SLOW else 'less'} than "
                    f"{SLOW:g} s: {repeat[tool]} run(s) of it)"
                )
        i += 1
    med = {t: statistics.median(r["seconds"] for r in runs[t]) for t in runs}
    resume = {t: statistics.median(r["resume_seconds"] for r in runs[t]) for t in runs}
    stored = {t: statistics.median(r["stored_bytes"] for r in runs[t]) for t in runs}
    return {
        "objects": len(files),
        "logical_bytes": logical,
        "setup_s": took,
        "repeat": {t: len(runs[t]) for t in runs},
        "seconds": med,
        "resume_seconds": resume,
        "stored_bytes": stored,
        "speedup": med["original"] / med["dg"],
        "stored_ratio": stored["dg"] / stored["original"] if stored["original"] else 0.0,
        "dg_ok": all(run_ok(r) for r in runs["dg"]),
        "original_ok": all(run_ok(r) for r in runs["original"]),
        "runs": runs,
    }


def migrate_verdict(args: argparse.Namespace, m: dict[str, Any]) -> bool:
    s, rs, b, n = m["seconds"], m["resume_seconds"], m["stored_bytes"], m["repeat"]
    orig = f"original {args.original}"
    print(
        f"\nmigrate {m['objects']} objects (median of {n['dg']} / {n['original']} runs): "
        f"deltaglider {s['dg']:.1f} s, {orig} {s['original']:.1f} s, {m['speedup']:.1f}x "
        f"faster; stored {b['dg'] / 1e6:.1f} MB vs {b['original'] / 1e6:.1f} MB "
        f"({m['stored_ratio']:.2f}x) of {m['logical_bytes'] / 1e6:.1f} MB"
    )
    print(
        f"resume over the completed destination: deltaglider {rs['dg']:.2f} s, "
        f"{orig} {rs['original']:.2f} s"
    )
    for tool, label in (("dg", "deltaglider"), ("original", orig)):
        ok = m[f"{tool}_ok"]
        print(
            f"{label}: "
            + (
                f"every run read back all {m['objects']} objects byte-exactly, resume did nothing"
                if ok
                else "PROBLEMS (see the runs above)"
            )
        )
    return bool(m["dg_ok"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=["ls", "migrate", "all"], default="all", help="which benchmark"
    )
    parser.add_argument("--count", type=int, default=5000, help="deltas under the prefix (ls)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (ls)")
    parser.add_argument("--migrate-count", type=int, default=1000, help="plain objects to migrate")
    parser.add_argument(
        "--repeat-migrate",
        type=int,
        help=f"migrate runs of each tool (default: 3; the original 1 if it takes over {SLOW:g} s)",
    )
    parser.add_argument("--original", default="6.2.0", help="the original DeltaGlider's version")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 300 deltas, 2 runs; 100 objects to migrate, 1 run",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the server running with the buckets (prints how to reach and stop it)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.count, args.repeat = min(args.count, 300), min(args.repeat, 2)
        args.migrate_count = min(args.migrate_count, 100)
        args.repeat_migrate = args.repeat_migrate or 1
    do_ls, do_migrate = args.only in ("ls", "all"), args.only in ("migrate", "all")
    aws = str(awscli()) if do_ls else ""
    dg = str(deltaglider_exe())
    original = ""
    if do_migrate:
        original = str(build(args.original))
        if not shutil.which("xdelta3"):
            raise SystemExit("the original needs the xdelta3 tool (apt-get install xdelta3)")

    server_proc = SeaweedFS(memory=True)
    server = server_proc.start()
    results: dict[str, Any] = {"count": args.count, "repeat": args.repeat}
    store = None
    made: list[str] = []  # buckets
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
            store = make_store(server)
            if do_ls:
                made.append(BUCKET)
                bench_ls(args, aws, dg, store, env, endpoint, results)
            if do_migrate:
                made.append(MIGRATE_SRC)
                results["migrate"] = bench_migrate(args, dg, original, store, env, tmp, made)
    finally:
        if args.keep:
            if store is not None:
                store.close()
            print(
                f"\nkept: SeaweedFS (pid {server_proc.proc.pid if server_proc.proc else '?'}, "
                f"data in {server_proc.dir}) at {server.endpoint_url}, buckets {', '.join(made)}; "
                f"AWS_ACCESS_KEY_ID={server.access_key} "
                f"AWS_SECRET_ACCESS_KEY={server.secret_key}; stop it with "
                f"kill -- -{server_proc.proc.pid if server_proc.proc else '?'} "
                f"&& rm -rf {server_proc.dir}"
            )
        else:
            if store is not None:
                for bucket in made:
                    try:
                        keys = [o.key for o in store.storage.iter_objects(bucket)]
                        if keys:
                            store.storage.delete_many(bucket, keys)
                        store.storage.delete_bucket(bucket)
                    except Exception as exc:  # the server and its data go anyway
                        print(f"cleanup: {exc!r}", file=sys.stderr)
                store.close()
            server_proc.stop()
    ok = True
    if do_ls:
        ok = ls_verdict(args, results) and ok
    if do_migrate:
        ok = migrate_verdict(args, results["migrate"]) and ok
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("DG_DISABLE_EC2_DETECTION", "1")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    sys.exit(main())
