"""Benchmark: big artifacts (256 MB, 1 GB, 4 GB) against the xdelta3 tool and plain boto3.

    python bench/big.py                  # 256M, 1G and 4G; --help for options
    python bench/big.py --quick          # 256M only

Data (made once, cached under ``--data``, default /tmp/dg-big; a ``meta.json`` beside each pair
records how it was made and the sha256 of both versions):

- ``tar``: a tar of system files (/usr/bin, /usr/sbin, /usr/lib, /usr/libexec, /usr/include,
  /usr/share; names sorted within each, the six taken in turn about 8 MiB at a time so that every
  size mixes executables, libraries, headers and text; mtime, owner and group fixed; made with
  Python's ``tarfile``) cut at the target size. Should the system hold less than that, later
  passes take the same files in a shuffled order, each compressed with zlib at a level of its
  own, so that the file is never one block of data repeated. Version 2 is version 1 with,
  seeded and deterministic: 24 deletions of 1 KiB-1 MiB, 8 blocks of 64 KiB-4 MiB moved
  elsewhere, 24 inserts of 1 KiB-512 KiB of new bytes (half random, half word-like text), then
  300 spots of 1-64 new bytes written over it, and 5 MiB of text appended.
- ``image``: an ext4 image of the target size made by ``mkfs.ext4 -d`` from a folder of system
  files (the same files, about 72% of the image; fixed UUID, hash seed, creation time and file
  times). Version 2 is the image rebuilt from that folder changed as a release changes it: 100
  files edited in 1-4 places each (1-64 bytes, same size), 20 removed, 20 added (4 KiB-1 MiB) plus
  one of 5 MiB, 10 grown by 1-64 KiB, and one directory renamed (its files move in the image).

Per file, one thing at a time:

1. The xdelta3 tool, ``xdelta3 -e -9 -B <v1's size> -s v1 v2 out`` (``-B`` as large as the tool
   takes, 2 GiB: for the 4 GB file the tool cannot cover the reference and the output says so),
   and its self-delta (``-s v1 v1``): bytes, time, peak memory. Timed once. ``-W`` (the tool's
   target window, 8 MiB by default, 16 MiB at most) is left at its default: on the 32 MiB tar
   16 MiB gave 0.01% more bytes and 1 MiB 0.18% more (``--tool-window`` to try others).
2. Ours, the codec alone, in a child process: ``Encoder(mmap of v1).copy_stream(v2, out file)``
   with the default settings; its self-delta; its delta decoded (``Decoder.copy_stream`` into a
   sha256) and checked against v2. Timed once.
3. Ours, the engine end to end through the ``deltaglider`` CLI, each command a fresh process as a
   user runs it, on the local folder store (``file://``) and on SeaweedFS (``weed mini``, data on
   tmpfs when it fits, else on disk): ``cp v1`` (the reference), ``cp v2`` into the same folder
   (the first one after v1 goes through a counting proxy: the requests on the wire, and whether
   the reference was fetched; then ``--repeat`` timed uploads), ``cp`` of v2 (``--repeat``) and
   of v1 back to a file (each checked against its sha256), ``verify`` of v2 (``--repeat``). The
   cache is the default filesystem cache, shared by the commands (``DG_CACHE_DIR`` and a
   ``DG_CACHE_ENCRYPTION_KEY``; its size cap raised above 2 GiB only when the reference does not
   fit in the default, which the output says). On SeaweedFS also the engine's self-delta (v1
   uploaded again under another name) and the stored bytes read from the store.
4. Plain boto3 ``upload_file`` and ``download_file`` of v2 to and from the same SeaweedFS, default
   ``TransferConfig``, each in a fresh process (``--repeat``), interleaved with ours in
   alternating order. The ratios compare the whole commands (interpreter start-up included on
   both sides); boto3's in-process time is printed beside them.

Memory: every measured command runs in a child whose ``RssAnon`` (``/proc/<pid>/status``: heap,
stacks, anonymous mappings), summed over its process tree, is sampled every 10 ms; the peak is
reported with the kernel's ``VmHWM`` (``ru_maxrss``, which also counts file-backed pages such as
a memory-mapped reference, which the kernel can drop and read again). Times are wall-clock from
the start of the command to its exit; medians of ``--repeat`` runs.

Ends with the bars of issue 15, PASS/FAIL. The JSON result goes to bench/results/big-<date>.json.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "reliability"))
from faultproxy import FaultProxy  # noqa: E402
from memory import tree_anon  # noqa: E402
from servers import SeaweedFS, Server  # noqa: E402

os.environ["DG_DISABLE_EC2_DETECTION"] = "1"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

MB = 1e6
MiB = 1 << 20
KiB = 1 << 10
SIZES = {"32M": 32 * MiB, "256M": 256 * MiB, "1G": 1 << 30, "4G": 4 << 30}
KINDS = ("tar", "image")
XDELTA3 = shutil.which("xdelta3") or "/usr/bin/xdelta3"
TOOL_MAX_B = 1 << 31  # xdelta3 3.0.x: -B is a 32-bit size, at most 2 GiB
EPOCH = 1_700_000_000  # every file time in the data
ROOTS = ("/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec", "/usr/include", "/usr/share")
BUCKET = "big"
DATA_VERSION = 3  # bump when the recipe changes: cached data is made again


class BenchError(RuntimeError):
    """A measured command failed: recorded, and the dependent steps are skipped."""


# --- data ----------------------------------------------------------------------------------


def system_files() -> list[Path]:
    """Regular, readable files under ROOTS (symlinks skipped): each root's names sorted, the
    roots taken in turn, about 8 MiB from each at a time, so that any cut of the list mixes
    executables, libraries, headers and documentation."""
    per_root: list[list[tuple[Path, int]]] = []
    for root in ROOTS:
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath) / name
                try:
                    if p.is_symlink() or not p.is_file() or not os.access(p, os.R_OK):
                        continue
                    found.append((p, p.stat().st_size))
                except OSError:
                    continue
        per_root.append(found)
    out: list[Path] = []
    at = [0] * len(per_root)
    while any(at[i] < len(f) for i, f in enumerate(per_root)):
        for i, files in enumerate(per_root):
            taken = 0
            while at[i] < len(files) and taken < 8 * MiB:
                out.append(files[at[i]][0])
                taken += files[at[i]][1]
                at[i] += 1
    return out


def real_files() -> Iterator[tuple[str, int, bytes]]:
    """(relative name, mode, content) of system files; after the first pass, the same files in a
    shuffled order, each compressed at its own zlib level (never one block repeated)."""
    files = system_files()
    for k in range(1, 12):
        order = files if k == 1 else random.Random(k).sample(files, len(files))
        for p in order:
            try:
                data = p.read_bytes()
                mode = p.stat().st_mode & 0o7777
            except OSError:
                continue
            name = str(p).lstrip("/")
            if k > 1:
                data = zlib.compress(data, 1 + (k - 2) % 9)
                name = f"pass{k}/{name}.z"
            yield name, mode, data
    raise RuntimeError("not enough system files for the target size")


_WORDS = [
    "".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=2 + i % 9))
    for i in range(4096)
]


def new_bytes(rng: random.Random, n: int) -> bytes:
    """``n`` bytes found nowhere in the data: half random (incompressible), half word-like text."""
    half = n // 2
    text = bytearray()
    while len(text) < n - half:
        text += " ".join(rng.choices(_WORDS, k=64)).encode() + b"\n"
    return rng.randbytes(half) + bytes(text[: n - half])


def make_tar(path: Path, size: int) -> dict[str, Any]:
    count = 0
    with open(path, "wb") as raw:
        tf = tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT)  # noqa: SIM115
        for name, mode, data in real_files():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tf.addfile(info, _Reader(data))
            count += 1
            if raw.tell() >= size:
                break
        tf.close()
    os.truncate(path, size)
    return {"members": count, "note": "cut at the target size (its last member is cut short)"}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = memoryview(data), 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        out = bytes(self.data[self.pos : end])
        self.pos += len(out)
        return out


def mutate(v1: Path, v2: Path, seed: int) -> dict[str, Any]:
    """v2 = v1 with deletions, moved blocks, inserts, scattered small edits and an append."""
    rng = random.Random(seed)
    size = v1.stat().st_size
    cuts: list[tuple[int, int]] = []  # [a, b) of v1 left out here (deleted, or moved away)

    def free_range(length: int) -> tuple[int, int]:
        while True:
            a = rng.randrange(0, size - length)
            if all(b0 + 4096 <= a or a + length + 4096 <= a0 for a0, b0 in cuts):
                cuts.append((a, a + length))
                return a, a + length

    def free_point() -> int:
        while True:
            p = rng.randrange(0, size)
            if all(not (a0 <= p < b0) for a0, b0 in cuts):
                return p

    scale = min(1.0, size / (256 * MiB))  # smaller blocks in files under 256 MiB (trying)
    deletions = [free_range(rng.randint(KiB, int(MiB * scale))) for _ in range(24)]
    moves = [free_range(rng.randint(64 * KiB, int(4 * MiB * scale))) for _ in range(8)]
    # what goes in at a point of v1: ("ref", a, b) a moved block, ("new", bytes) new bytes
    points: list[tuple[int, tuple]] = [(free_point(), ("ref", a, b)) for a, b in moves]
    inserted = 0
    for _ in range(24):
        n = rng.randint(KiB, int(512 * KiB * scale))
        inserted += n
        points.append((free_point(), ("new", new_bytes(rng, n))))
    cuts.sort()
    points.sort(key=lambda p: p[0])
    segments: list[tuple] = []
    pos = 0
    events = sorted(
        [(a, 1, ("cut", a, b)) for a, b in cuts] + [(p, 0, s) for p, s in points],
        key=lambda e: (e[0], e[1]),
    )
    for at, _, what in events:
        if at > pos:
            segments.append(("ref", pos, at))
            pos = at
        if what[0] == "cut":
            pos = what[2]
        else:
            segments.append(what)
    segments.append(("ref", pos, size))
    with open(v1, "rb") as src, open(v2, "wb") as dst:
        for seg in segments:
            if seg[0] == "new":
                dst.write(seg[1])
                continue
            a, b = seg[1], seg[2]
            while a < b:
                chunk = os.pread(src.fileno(), min(8 * MiB, b - a), a)
                dst.write(chunk)
                a += len(chunk)
        length = dst.tell()
        for _ in range(300):
            n = rng.randint(1, 64)
            os.pwrite(dst.fileno(), rng.randbytes(n), rng.randrange(0, length - n))
        dst.seek(length)
        dst.write(new_bytes(rng, 5 * MiB))
    return {
        "deletions": len(deletions),
        "deleted_bytes": sum(b - a for a, b in deletions),
        "moves": len(moves),
        "moved_bytes": sum(b - a for a, b in moves),
        "inserts": 24,
        "inserted_bytes": inserted,
        "edits": 300,
        "appended_bytes": 5 * MiB,
    }


def _blocks(n: int) -> int:
    return (n + 4095) // 4096 * 4096 + 4096  # data blocks plus about an inode's share


def build_tree(tree: Path, budget: int) -> int:
    """Copies system files into ``tree`` up to ``budget`` bytes of blocks; returns the count."""
    used = count = 0
    for name, mode, data in real_files():
        need = _blocks(len(data))
        if used + need > budget:
            if budget - used < 256 * KiB:
                break
            continue
        dst = tree / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        os.chmod(dst, mode)
        used += need
        count += 1
    return count


def fix_times(tree: Path, when: int) -> None:
    for dirpath, _, filenames in os.walk(tree):
        for n in filenames:
            os.utime(Path(dirpath) / n, (when, when), follow_symlinks=False)
        os.utime(dirpath, (when, when))


def mkfs(tree: Path, image: Path, size: int, inodes: int) -> None:
    image.unlink(missing_ok=True)
    with open(image, "wb") as fh:
        fh.truncate(size)
    uuid = "d31a9117-0000-4000-8000-000000000015"
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(EPOCH))
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-N", str(inodes), "-U", uuid,
         "-E", f"hash_seed={uuid},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0",
         "-L", "dg-big", "-d", str(tree), str(image)],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def change_tree(tree: Path, seed: int, scale: float) -> dict[str, Any]:
    """A release's changes to the files of ``tree`` (see the module docstring); what is added
    is ``scale`` times smaller in images under 256 MiB (trying)."""
    rng = random.Random(seed)
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    big_enough = [p for p in files if p.stat().st_size >= 4096]
    edited = rng.sample(big_enough, min(100, len(big_enough)))
    for p in edited:
        with open(p, "r+b") as fh:
            n = p.stat().st_size
            for _ in range(rng.randint(1, 4)):
                k = rng.randint(1, 64)
                os.pwrite(fh.fileno(), rng.randbytes(k), rng.randrange(0, n - k))
    rest = [p for p in files if p not in set(edited)]
    removed = rng.sample(rest, min(20, len(rest) // 4))
    for p in removed:
        p.unlink()
    rest = [p for p in rest if p not in set(removed)]
    grown = rng.sample(rest, min(10, len(rest) // 4))
    for p in grown:
        with open(p, "ab") as fh:
            fh.write(new_bytes(rng, rng.randint(KiB, 64 * KiB)))
    dirs = sorted({p.parent for p in rest})
    added = 0
    for i in range(20):
        n = rng.randint(4 * KiB, int(MiB * scale))
        (rng.choice(dirs) / f"added-{i}.bin").write_bytes(new_bytes(rng, n))
        added += n
    notes = int(5 * MiB * scale)
    (tree / "usr" / "RELEASE-NOTES-1.1.txt").write_bytes(new_bytes(rng, notes))
    # One directory of 1-5% of the data renamed: readdir order changes, its files move.
    total = sum(p.stat().st_size for p in rest)
    sizes: dict[Path, int] = {}
    for p in rest:
        for d in p.parents:
            if d == tree:
                break
            sizes[d] = sizes.get(d, 0) + p.stat().st_size
    candidates = sorted(d for d, s in sizes.items() if 0.01 * total <= s <= 0.05 * total)
    moved = None
    if candidates:
        d = rng.choice(candidates)
        d.rename(d.with_name(d.name + "-renamed"))
        moved = {"dir": str(d.relative_to(tree)), "bytes": sizes[d]}
    fix_times(tree, EPOCH + 86400)
    return {
        "files_edited": len(edited),
        "files_removed": len(removed),
        "files_grown": len(grown),
        "files_added": 21,
        "added_bytes": added + notes,
        "renamed_dir": moved,
    }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 * MiB):
            h.update(chunk)
    return h.hexdigest()


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def need_space(path: Path, need: int, what: str) -> None:
    have = free_bytes(path)
    if have < need + 4 * (1 << 30):  # and 4 GiB to spare for everyone else
        raise SystemExit(
            f"not enough free disk for {what}: {have / 2**30:.1f} GiB free at {path}, "
            f"{need / 2**30:.1f} GiB needed plus 4 GiB to spare"
        )


def dataset(data: Path, kind: str, label: str) -> dict[str, Any]:
    """v1 and v2 of a kind and size, made once and cached under ``data``."""
    size = SIZES[label]
    folder = data / f"{kind}-{label}"
    meta_path = folder / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("version") == DATA_VERSION and all(
            Path(meta[v]).exists() and Path(meta[v]).stat().st_size == meta[v + "_bytes"]
            for v in ("v1", "v2")
        ):
            return meta
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    need_space(data, (3 if kind == "image" else 2) * size + 16 * MiB, f"the {kind} {label} data")
    ext = ".tar" if kind == "tar" else ".img"
    v1, v2 = folder / f"v1{ext}", folder / f"v2{ext}"
    print(f"  making the {kind} {label} data in {folder} (once; cached for later runs)...")
    t = time.perf_counter()
    seed = 15_000 + list(SIZES).index(label)
    if kind == "tar":
        made = make_tar(v1, size)
        changes = mutate(v1, v2, seed)
    else:
        tree = folder / "tree"
        tree.mkdir()
        count = build_tree(tree, int(size * 0.72))
        fix_times(tree, EPOCH)
        inodes = int(count * 1.25) + 4096
        mkfs(tree, v1, size, inodes)
        changes = change_tree(tree, seed, min(1.0, size / (256 * MiB)))
        mkfs(tree, v2, size, inodes)
        shutil.rmtree(tree)
        made = {"files": count, "inodes": inodes}
    meta = {
        "version": DATA_VERSION,
        "kind": kind,
        "label": label,
        "v1": str(v1),
        "v2": str(v2),
        "v1_bytes": v1.stat().st_size,
        "v2_bytes": v2.stat().st_size,
        "v1_sha256": sha256_file(v1),
        "v2_sha256": sha256_file(v2),
        "made": made,
        "changes": changes,
        "seconds_to_make": time.perf_counter() - t,
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    print(f"  made in {meta['seconds_to_make']:.0f} s")
    return meta


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float  # wall clock, start to exit
    peak_anon: int  # highest sampled sum of RssAnon over the process tree
    hwm: int  # ru_maxrss of the child (VmHWM: anonymous and file-backed pages)
    stdout: str
    stderr: str
    returncode: int


def measure(argv: list[str], env: dict[str, str] | None = None, tmp: Path | None = None) -> Run:
    """Runs ``argv``, sampling the RssAnon of its process tree every 10 ms."""
    tmp = tmp or Path("/tmp")
    out_path, err_path = tmp / ".big-stdout", tmp / ".big-stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_anon(proc.pid))
                done.wait(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        took = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    return Run(
        took,
        peak,
        usage.ru_maxrss * 1024,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
        proc.returncode,
    )


def checked(run: Run, what: str) -> Run:
    if run.returncode != 0:
        raise BenchError(f"{what}: exit {run.returncode}: {(run.stdout + run.stderr)[-1500:]}")
    return run


def summary(runs: list[Run]) -> dict[str, Any]:
    return {
        "seconds": statistics.median(r.seconds for r in runs),
        "all_seconds": [r.seconds for r in runs],
        "peak_anon": max(r.peak_anon for r in runs),
        "hwm": max(r.hwm for r in runs),
    }


# --- the tool and the codec ----------------------------------------------------------------


def tool_options(meta: dict[str, Any], window: int | None) -> list[str]:
    b = min(TOOL_MAX_B, max(meta["v1_bytes"], 16 * MiB))
    return ["-e", "-9", "-B", str(b), *(["-W", str(window)] if window else [])]


def run_tool(meta: dict[str, Any], work: Path, window: int | None) -> dict[str, Any]:
    opts = tool_options(meta, window)
    out: dict[str, Any] = {"options": " ".join(opts), "covers_reference": True}
    if meta["v1_bytes"] > TOOL_MAX_B:
        out["covers_reference"] = False
    for label, target in (("delta", meta["v2"]), ("self", meta["v1"])):
        dst = work / f"tool-{label}.vcdiff"
        dst.unlink(missing_ok=True)
        run = checked(
            measure([XDELTA3, *opts, "-s", meta["v1"], target, str(dst)], tmp=work),
            f"xdelta3 {label}",
        )
        out[label] = {"bytes": dst.stat().st_size, **asdict_run(run)}
        dst.unlink()
    return out


def asdict_run(run: Run) -> dict[str, Any]:
    d = asdict(run)
    del d["stdout"], d["stderr"], d["returncode"]
    return d


_CODEC = textwrap.dedent("""
    import hashlib, mmap, sys, time
    from deltaglider.codec import Decoder, Encoder
    mode, ref, src_path, out_path = sys.argv[1:5]
    with open(ref, "rb") as fh:
        source = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    t = time.perf_counter()
    if mode == "encode":
        with open(src_path, "rb") as r, open(out_path, "wb") as w:
            n_in, n_out = Encoder(source).copy_stream(r, w)
        print(time.perf_counter() - t, n_out)
    else:
        class Sha:
            def __init__(self):
                self.h, self.n = hashlib.sha256(), 0
            def write(self, b):
                self.h.update(b)
                self.n += len(b)
                return len(b)
        sink = Sha()
        with open(src_path, "rb") as r:
            Decoder(source).copy_stream(r, sink, max_output_size=int(sys.argv[5]))
        print(time.perf_counter() - t, sink.h.hexdigest())
""")


def run_codec(meta: dict[str, Any], work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, target in (("self", meta["v1"]), ("delta", meta["v2"])):
        dst = work / f"codec-{label}.vcdiff"
        run = checked(
            measure(
                [sys.executable, "-c", _CODEC, "encode", meta["v1"], target, str(dst)], tmp=work
            ),
            f"codec encode {label}",
        )
        inner = float(run.stdout.split()[0])
        out[label] = {"bytes": dst.stat().st_size, "in_process_seconds": inner, **asdict_run(run)}
        if label == "self":
            dst.unlink()
    dst = work / "codec-delta.vcdiff"
    run = checked(
        measure(
            [sys.executable, "-c", _CODEC, "decode", meta["v1"], str(dst), "-",
             str(meta["v2_bytes"] + MiB)],
            tmp=work,
        ),
        "codec decode",
    )  # fmt: skip
    took, digest = run.stdout.split()
    out["decode"] = {
        "ok": digest == meta["v2_sha256"],
        "in_process_seconds": float(took),
        **asdict_run(run),
    }
    dst.unlink()
    return out


# --- the engine through the CLI, and boto3 -------------------------------------------------


def deltaglider_exe() -> str:
    exe = Path(sys.executable).parent / "deltaglider"
    if exe.exists():
        return str(exe)
    found = shutil.which("deltaglider")
    if not found:
        raise SystemExit("the deltaglider executable is not installed")
    return found


_BOTO3 = textwrap.dedent("""
    import sys, time, boto3
    op, path, bucket, key = sys.argv[1:5]
    client = boto3.client("s3")  # endpoint, keys, region from the environment
    t = time.perf_counter()
    if op == "up":
        client.upload_file(path, bucket, key)
    else:
        client.download_file(bucket, key, path)
    print(time.perf_counter() - t)
""")


class Engine:
    """The ``deltaglider`` CLI against one store, each command a fresh process."""

    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.env, self.work, self.exe = env, work, deltaglider_exe()

    def run(self, *args: str, what: str, env: dict[str, str] | None = None) -> Run:
        return checked(
            measure([self.exe, "--no-progress", *args], env=env or self.env, tmp=self.work), what
        )


def cache_env(work: Path, name: str, size: int) -> tuple[dict[str, str], str | None]:
    """The default filesystem cache, shared by the commands of a store (a key of their own, a
    folder of their own); its cap raised only when the reference does not fit in the default."""
    env = {
        "DG_CACHE_DIR": str(work / f"cache-{name}"),
        "DG_CACHE_ENCRYPTION_KEY": base64.b64encode(random.Random(15).randbytes(32)).decode(),
        "DG_LOG_LEVEL": "WARNING",
        "DG_SUPPRESS_DEPRECATION": "1",
        "HOME": str(work),
        "DG_DISABLE_EC2_DETECTION": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    note = None
    default_mb = 2048
    if size + 64 * MiB > default_mb * MiB:
        mb = (2 * size) // MiB
        env["DG_CACHE_MAX_SIZE_MB"] = str(mb)
        note = (
            f"DG_CACHE_MAX_SIZE_MB={mb} (the default cap, {default_mb} MiB, is below the reference)"
        )
    return env, note


def names(meta: dict[str, Any]) -> tuple[str, str, str]:
    ext = ".tar" if meta["kind"] == "tar" else ".img"
    stem = "system" if meta["kind"] == "tar" else "disk"
    return f"{stem}-1.0{ext}", f"{stem}-1.1{ext}", f"{stem}-1.0-again{ext}"


def engine_store(
    store: str,
    meta: dict[str, Any],
    work: Path,
    repeat: int,
    server: Server | None = None,
    client: Any = None,
) -> dict[str, Any]:
    """The CLI's upload, download and verify on one store; with a SeaweedFS ``server`` also the
    counted first upload of v2 and boto3 interleaved."""
    v1_name, v2_name, again_name = names(meta)
    prefix = f"{meta['kind']}-{meta['label']}"
    base = f"s3://{BUCKET}/{prefix}/"
    env, note = cache_env(work, store, meta["v1_bytes"])
    if server is None:
        root = work / "store-local"
        env["DG_ENDPOINT_URL"] = f"file://{root}"
        full_env = dict(os.environ, **env)
        for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            full_env.pop(k, None)
    else:
        full_env = server.env(**env)
        for k in ("DG_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            full_env.pop(k, None)
    eng = Engine(full_env, work)
    out: dict[str, Any] = {"cache": note}
    eng.run("mb", f"s3://{BUCKET}", what="mb")
    down = work / "down"
    down.mkdir(exist_ok=True)

    r = eng.run("cp", meta["v1"], base + v1_name, what="upload v1")
    out["upload_v1"] = asdict_run(r)
    # The first upload of v2 after v1: a fresh process, the cache warm from v1's upload.
    if server is not None:
        proxy = FaultProxy(server.endpoint_url)
        try:
            penv = dict(full_env, AWS_ENDPOINT_URL=proxy.endpoint_url)
            penv.pop("AWS_ENDPOINT_URL_S3", None)
            r = eng.run("cp", meta["v2"], base + v2_name, what="first upload v2", env=penv)
            records = [(rec.method, rec.path, rec.status) for rec in proxy.records]
        finally:
            proxy.close()
        out["first_upload_v2"] = asdict_run(r)
        out["first_upload_v2"]["requests"] = [f"{m} {p} {s}" for m, p, s in records]
        out["reference_gets"] = sum(
            1 for m, p, _ in records if m == "GET" and p.endswith("/reference.bin")
        )
    else:
        r = eng.run("cp", meta["v2"], base + v2_name, what="first upload v2")
        out["first_upload_v2"] = asdict_run(r)

    def ours_up() -> Run:
        return eng.run("cp", meta["v2"], base + v2_name, what="upload v2")

    def ours_down() -> Run:
        dst = down / v2_name
        r = eng.run("cp", base + v2_name, str(dst), what="download v2")
        ok = sha256_file(dst) == meta["v2_sha256"]
        dst.unlink()
        if not ok:
            raise BenchError("download v2: the bytes differ from v2")
        return r

    def boto3_run(op: str) -> Run:
        path = meta["v2"] if op == "up" else str(down / ("plain-" + v2_name))
        r = checked(
            measure(
                [sys.executable, "-c", _BOTO3, op, path, BUCKET, f"plain/{prefix}/{v2_name}"],
                env=full_env,
                tmp=work,
            ),
            f"boto3 {op}",
        )
        if op == "down":
            ok = sha256_file(Path(path)) == meta["v2_sha256"]
            Path(path).unlink()
            if not ok:
                raise BenchError("boto3 download: the bytes differ from v2")
        return r

    ups: list[Run] = []
    downs: list[Run] = []
    b_ups: list[Run] = []
    b_downs: list[Run] = []
    if server is not None:
        boto3_run("up")  # the plain object exists before the first timed download
    for _phase, ours, theirs, mine, plain in (
        ("up", ours_up, lambda: boto3_run("up"), ups, b_ups),
        ("down", ours_down, lambda: boto3_run("down"), downs, b_downs),
    ):
        for i in range(repeat):
            order = [(ours, mine), (theirs, plain)]
            if i % 2:
                order.reverse()
            for fn, into in order:
                if server is None and into is plain:
                    continue
                time.sleep(0.5)  # let the server settle after the previous transfer
                into.append(fn())
    out["upload_v2"] = summary(ups)
    out["download_v2"] = summary(downs)
    if server is not None:
        out["boto3_upload"] = summary(b_ups)
        out["boto3_upload"]["in_process_seconds"] = statistics.median(
            float(r.stdout.split()[0]) for r in b_ups
        )
        out["boto3_download"] = summary(b_downs)
        out["boto3_download"]["in_process_seconds"] = statistics.median(
            float(r.stdout.split()[0]) for r in b_downs
        )
    dst = down / v1_name
    r = eng.run("cp", base + v1_name, str(dst), what="download v1")
    ok = sha256_file(dst) == meta["v1_sha256"]
    dst.unlink()
    if not ok:
        raise BenchError("download v1: the bytes differ from v1")
    out["download_v1"] = asdict_run(r)
    verifies = []
    for _ in range(repeat):
        r = eng.run("verify", base + v2_name, what="verify v2")
        verifies.append(r)
    out["verify_v2"] = summary(verifies)
    out["stored"] = stored_layout(store, work, prefix, client)
    if server is not None:
        r = eng.run("cp", meta["v1"], base + again_name, what="upload v1 again (self-delta)")
        out["upload_self"] = asdict_run(r)
        layout = stored_layout(store, work, prefix, client)
        out["self_stored"] = layout.get(again_name + ".delta", layout.get(again_name))
        out["self_is_delta"] = again_name + ".delta" in layout
    return out


def stored_layout(store: str, work: Path, prefix: str, client: Any) -> dict[str, int]:
    """Key (under the prefix) -> stored bytes, read from the store itself."""
    if client is None:
        root = work / "store-local" / BUCKET / prefix
        return {
            p.name: p.stat().st_size
            for p in root.iterdir()
            if p.is_file() and not p.name.endswith(".dgmeta")
        }
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix + "/"
    ):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix) + 1 :]] = o["Size"]
    return out


# --- one file ------------------------------------------------------------------------------


def bench_file(meta: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    import boto3

    size = meta["v1_bytes"]
    work = args.data / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result: dict[str, Any] = {"data": meta, "errors": {}, "code": code_state()}
    print("  the xdelta3 tool (once)...", flush=True)
    try:
        result["tool"] = run_tool(meta, work, args.tool_window)
    except BenchError as e:
        result["errors"]["tool"] = str(e)
    print("  the codec (once)...", flush=True)
    try:
        result["codec"] = run_codec(meta, work)
    except BenchError as e:
        result["errors"]["codec"] = str(e)
    # The local store: the reference and a delta in it, v1 in the cache, one download at a time.
    need_space(work, 3 * size, "the local store")
    print(f"  the engine on the local store (repeat {args.repeat})...", flush=True)
    try:
        result["local"] = engine_store("local", meta, work, args.repeat)
    except BenchError as e:
        result["errors"]["local"] = str(e)
    if not args.keep:
        shutil.rmtree(work / "store-local", ignore_errors=True)
        shutil.rmtree(work / "cache-local", ignore_errors=True)
    # SeaweedFS: tmpfs when its copies (reference, the plain object, the self-delta's) fit
    # with room to spare, else the disk.
    shm = Path("/dev/shm")
    memory = shm.is_dir() and 3 * size < 0.4 * free_bytes(shm)
    if not memory:
        need_space(Path("/tmp"), 4 * size, "SeaweedFS on disk")
    result["seaweedfs_data"] = "tmpfs" if memory else "disk"
    print(
        f"  the engine and boto3 on SeaweedFS (data on {result['seaweedfs_data']}, "
        f"repeat {args.repeat})...",
        flush=True,
    )
    sw = SeaweedFS(memory=memory)
    server = sw.start()
    try:
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name="us-east-1",
        )
        result["seaweedfs"] = engine_store("seaweedfs", meta, work, args.repeat, server, client)
    except BenchError as e:
        result["errors"]["seaweedfs"] = str(e)
    finally:
        sw.stop()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if code_state() != result["code"]:
        result["errors"]["code"] = f"the code changed: {result['code']} -> {code_state()}"
    return result


# --- printing ------------------------------------------------------------------------------


def mib(n: float | None) -> str:
    return "-" if n is None else f"{n / MiB:,.0f} MiB"


def secs(s: float | None) -> str:
    return "-" if s is None else f"{s:,.2f} s"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def get(d: dict[str, Any] | None, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def report_file(r: dict[str, Any]) -> None:
    meta = r["data"]
    c = meta["changes"]
    if meta["kind"] == "tar":
        how = (
            f"{c['deletions']} deletions ({c['deleted_bytes'] / MB:.1f} MB), {c['moves']} moved "
            f"blocks ({c['moved_bytes'] / MB:.1f} MB), {c['inserts']} inserts "
            f"({c['inserted_bytes'] / MB:.1f} MB), {c['edits']} small edits, 5 MiB appended"
        )
    else:
        ren = c.get("renamed_dir") or {}
        how = (
            f"image rebuilt: {c['files_edited']} files edited, {c['files_removed']} removed, "
            f"{c['files_added']} added ({c['added_bytes'] / MB:.1f} MB), {c['files_grown']} grown, "
            f"{ren.get('dir', 'no dir')} renamed ({ren.get('bytes', 0) / MB:.1f} MB)"
        )
    print(
        f"\n== {meta['kind']} {meta['label']}: v1 {meta['v1_bytes']:,} bytes, "
        f"v2 {meta['v2_bytes']:,} bytes\n   ({how})"
    )
    for name, err in r["errors"].items():
        print(f"  {'NOTE' if name == 'code' else 'ERROR'} {name}: {err}")
    t, o = r.get("tool"), r.get("codec")

    def row(label: str, a: str, b: str, x: str = "") -> None:
        print(f"  {label:34s} {a:>22s} {b:>22s} {x:>10s}")

    if t:
        print(f"  tool: xdelta3 {t['options']}" + (
            "" if t["covers_reference"]
            else f"  (-B is at most {TOOL_MAX_B:,}: the tool cannot cover this reference)"
        ))  # fmt: skip
    row("delta v1 -> v2", "xdelta3 tool", "ours (codec)", "ours/tool")
    row(
        "delta bytes",
        f"{get(t, 'delta', 'bytes') or 0:,}",
        f"{get(o, 'delta', 'bytes') or 0:,}",
        ratio(get(o, "delta", "bytes"), get(t, "delta", "bytes")),
    )
    row(
        "self-delta bytes (v1 against v1)",
        f"{get(t, 'self', 'bytes') or 0:,}",
        f"{get(o, 'self', 'bytes') or 0:,}",
        ratio(get(o, "self", "bytes"), get(t, "self", "bytes")),
    )
    row(
        "encode time (once)",
        secs(get(t, "delta", "seconds")),
        secs(get(o, "delta", "seconds")),
        ratio(get(o, "delta", "seconds"), get(t, "delta", "seconds")),
    )
    row(
        "encode peak RssAnon",
        mib(get(t, "delta", "peak_anon")),
        mib(get(o, "delta", "peak_anon")),
        ratio(get(o, "delta", "peak_anon"), get(t, "delta", "peak_anon")),
    )
    row(
        "encode peak RSS (VmHWM)",
        mib(get(t, "delta", "hwm")),
        mib(get(o, "delta", "hwm")),
        ratio(get(o, "delta", "hwm"), get(t, "delta", "hwm")),
    )
    if o:
        d = o["decode"]
        row(
            "ours: decode to sha256 (once)",
            "",
            f"{'ok' if d['ok'] else 'WRONG'} {d['seconds']:.2f} s",
            "",
        )
        row("ours: decode peak RssAnon / VmHWM", "", f"{mib(d['peak_anon'])} / {mib(d['hwm'])}")
    loc, sw = r.get("local"), r.get("seaweedfs")
    print(
        "  engine, deltaglider CLI (fresh process each; medians; SeaweedFS on "
        f"{r['seaweedfs_data']})"
    )
    row("", "local store", "SeaweedFS", "")
    for label, key in (
        ("upload v1 (new reference)", "upload_v1"),
        ("upload v2, first after v1 (*)", "first_upload_v2"),
        ("upload v2 (warm cache)", "upload_v2"),
        ("download v2", "download_v2"),
        ("download v1 (the reference)", "download_v1"),
        ("verify v2", "verify_v2"),
    ):
        row(
            label,
            f"{secs(get(loc, key, 'seconds'))} {mib(get(loc, key, 'peak_anon'))}",
            f"{secs(get(sw, key, 'seconds'))} {mib(get(sw, key, 'peak_anon'))}",
        )
    print(
        "  (*) on SeaweedFS through the counting proxy (a Python proxy in this process); "
        "not in the medians"
    )
    t_bytes = get(t, "delta", "bytes")
    for label, s in (("local store", loc), ("SeaweedFS", sw)):
        if not s:
            continue
        lay = s["stored"]
        v2_name = names(meta)[1]
        kind = "delta" if v2_name + ".delta" in lay else "whole"
        b = lay.get(v2_name + ".delta", lay.get(v2_name))
        print(
            f"  {label}: stored {', '.join(f'{k} {v:,}' for k, v in sorted(lay.items()))}; "
            f"v2 stored as {kind}, {ratio(b, t_bytes)} the tool's delta"
        )
        if s.get("cache"):
            print(f"  {label}: {s['cache']}")
    if sw:
        print(
            f"  SeaweedFS: first upload of v2 after v1, requests on the wire: "
            f"{'; '.join(sw['first_upload_v2']['requests'])} "
            f"(reference GETs: {sw['reference_gets']})"
        )
        print(
            f"  SeaweedFS: self-delta (v1 uploaded again): "
            f"{'delta' if sw['self_is_delta'] else 'whole'} {sw['self_stored'] or 0:,} bytes"
        )
        row("vs plain boto3 on SeaweedFS", "boto3 (in process)", "ours (CLI)", "ours/boto3")
        for label, b, ours in (
            ("upload v2", "boto3_upload", "upload_v2"),
            ("download v2", "boto3_download", "download_v2"),
        ):
            row(
                f"{label}, wall time",
                f"{secs(sw[b]['seconds'])} ({secs(sw[b]['in_process_seconds'])})",
                secs(sw[ours]["seconds"]),
                ratio(sw[ours]["seconds"], sw[b]["seconds"]),
            )
            row(
                f"{label}, peak RssAnon",
                mib(sw[b]["peak_anon"]),
                mib(sw[ours]["peak_anon"]),
                ratio(sw[ours]["peak_anon"], sw[b]["peak_anon"]),
            )


def bars(results: list[dict[str, Any]], sizes: list[str]) -> bool:
    print("\n== Bars (issue 15)")
    ok_all = True

    def line(ok: bool | None, text: str) -> None:
        nonlocal ok_all
        verdict = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        if ok is False:
            ok_all = False
        print(f"  {verdict}  {text}")

    for r in results:
        name = f"{r['data']['kind']} {r['data']['label']}"
        t = get(r, "tool", "delta", "bytes")
        v2 = names(r["data"])[1]
        cands = [("codec", get(r, "codec", "delta", "bytes"))]
        for store in ("local", "seaweedfs"):
            lay = get(r, store, "stored") or {}
            cands.append((store, lay.get(v2 + ".delta", lay.get(v2))))
        for who, b in cands:
            line(
                None if not t or b is None else b <= 1.1 * t,
                f"{name}: delta bytes <= 1.1x the tool's ({who}): {ratio(b, t)}"
                + ("" if b is None else f" ({b:,} against {t or 0:,})"),
            )
        s = get(r, "codec", "self", "bytes")
        line(
            None if s is None else s < 64 * KiB,
            f"{name}: self-delta < 64 KiB (codec): {'-' if s is None else f'{s:,} bytes'}",
        )
        s = get(r, "seaweedfs", "self_stored")
        line(
            None if s is None else s < 64 * KiB and bool(get(r, "seaweedfs", "self_is_delta")),
            f"{name}: self-delta < 64 KiB (engine): {'-' if s is None else f'{s:,} bytes'}",
        )
    for r in results:
        if r["data"]["label"] != "4G":
            continue
        name = f"{r['data']['kind']} 4G"
        for store in ("local", "seaweedfs"):
            for label, keys in (
                ("upload", ("upload_v1", "first_upload_v2", "upload_v2")),
                ("download", ("download_v1", "download_v2")),
                ("verify", ("verify_v2",)),
            ):
                peaks = [get(r, store, k, "peak_anon") for k in keys]
                known = [p for p in peaks if p is not None]
                peak = max(known) if known else None
                line(
                    None if peak is None else peak < 512 * MiB,
                    f"{name} ({store}): {label} peak RssAnon < 512 MiB: {mib(peak)}",
                )
    if "4G" not in sizes:
        line(None, "4 GB file: peak RssAnon < 512 MiB (4G not in --sizes)")
    for r in results:
        if r["data"]["label"] != "1G":
            continue
        name = f"{r['data']['kind']} 1G"
        sw = r.get("seaweedfs") or {}
        for label, ours, b in (
            ("upload", "upload_v2", "boto3_upload"),
            ("download", "download_v2", "boto3_download"),
        ):
            a, p = get(sw, ours, "seconds"), get(sw, b, "seconds")
            line(
                None if not a or not p else a <= 1.5 * p,
                f"{name}: {label} of v2 <= 1.5x plain boto3 on SeaweedFS: {ratio(a, p)} "
                f"({secs(a)} against {secs(p)})",
            )
    if "1G" not in sizes:
        line(None, "1 GB file: upload/download within 1.5x boto3 (1G not in --sizes)")
    for r in results:
        name = f"{r['data']['kind']} {r['data']['label']}"
        g = get(r, "seaweedfs", "reference_gets")
        line(
            None if g is None else g == 0,
            f"{name}: second CLI upload into the folder GETs no reference (on the wire): "
            f"{'-' if g is None else g} GETs of reference.bin",
        )
    return ok_all


# --- main ----------------------------------------------------------------------------------


def code_state() -> str:
    """The commit of the code measured, and whether src/ differs from it (an editable install
    measures the working tree)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    dirty = git("status", "--porcelain", "--", "src")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in src/" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="256M,1G,4G", help="comma-separated: 256M, 1G, 4G (and 32M, for trying)"
    )
    parser.add_argument("--kinds", default="tar,image", help="comma-separated: tar, image")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed engine command")
    parser.add_argument("--quick", action="store_true", help="256M only, one run each")
    parser.add_argument("--data", type=Path, default=Path("/tmp/dg-big"), help="data cache")
    parser.add_argument("--json", type=Path, help="default bench/results/big-<date>.json")
    parser.add_argument("--keep", action="store_true", help="keep the stores and caches")
    parser.add_argument("--tool-window", type=int, help=argparse.SUPPRESS)  # xdelta3 -W
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeat = "256M", 1
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for s in sizes:
        if s not in SIZES:
            parser.error(f"unknown size {s!r} (choose from {', '.join(SIZES)})")
    for k in kinds:
        if k not in KINDS:
            parser.error(f"unknown kind {k!r} (choose from {', '.join(KINDS)})")
    if not Path(XDELTA3).exists():
        raise SystemExit("the xdelta3 tool is missing (apt-get install xdelta3)")
    if "image" in kinds and not shutil.which("mkfs.ext4"):
        raise SystemExit("mkfs.ext4 is missing (apt-get install e2fsprogs)")
    args.data.mkdir(parents=True, exist_ok=True)
    json_path = args.json or HERE / "results" / f"big-{datetime.date.today().isoformat()}.json"
    print(
        f"big artifacts: sizes {', '.join(sizes)}; kinds {', '.join(kinds)}; repeat "
        f"{args.repeat}; data in {args.data} ({free_bytes(args.data) / 2**30:.0f} GiB free); "
        f"{os.cpu_count()} CPUs"
    )
    started_on = code_state()
    print(f"code: {started_on}")
    results = []
    for label in sizes:
        for kind in kinds:
            print(f"\n-- {kind} {label}", flush=True)
            meta = dataset(args.data, kind, label)
            r = bench_file(meta, args)
            results.append(r)
            report_file(r)
            json_path.parent.mkdir(parents=True, exist_ok=True)
            partial = {"args": {k: str(v) for k, v in vars(args).items()}, "files": results}
            json_path.write_text(json.dumps(partial, indent=2, default=str))  # so far
    ok = bars(results, sizes)
    ended_on = code_state()
    if ended_on != started_on:
        print(f"\nNOTE: the code changed during the run ({started_on} -> {ended_on})")
    out = {
        "code": {"start": started_on, "end": ended_on},
        "args": {k: str(v) for k, v in vars(args).items()},
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "files": results,
        "pass": ok,
    }
    json_path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nresults: {json_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
