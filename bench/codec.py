"""Benchmark: deltaglider's in-process codec against the xdelta3 command-line tool.

    python bench/corpus.py      # once: fetch the corpus from PyPI (bench/.corpus)
    python bench/codec.py       # the comparison; --help for options

The competitor is the ``xdelta3`` tool exactly as the original DeltaGlider runs it, one process
per file: ``xdelta3 -e -9 -s ref new out`` and ``xdelta3 -d -s ref delta out``. Both sides work
file to file (read the inputs, write the output), each timing the median of ``--repeat`` runs.

Sections: every consecutive-release pair of the corpus and the totals (delta bytes, encode and
decode MB/s of target, ratios ours/tool); thread scaling; the early abort on two unrelated
100 MB files; peak memory of streaming encode and decode; with ``--sweep``, the level and
secondary-compression table the defaults were chosen from. Ends with the bars of issue 2.
"""

from __future__ import annotations

import argparse
import functools
import json
import mmap
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus

from deltaglider.codec import Decoder, Encoder
from deltaglider.errors import DeltaTooLargeError

MB = 1e6
XDELTA3 = shutil.which("xdelta3")


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL)


# --- tool and ours, file to file -------------------------------------------------------------


def tool_encode(ref: Path, new: Path, out: Path) -> None:
    out.unlink(missing_ok=True)  # the original does not pass -f
    run(XDELTA3 or "xdelta3", "-e", "-9", "-s", ref, new, out)


def tool_decode(ref: Path, delta: Path, out: Path) -> None:
    out.unlink(missing_ok=True)
    run(XDELTA3 or "xdelta3", "-d", "-s", ref, delta, out)


def ours_encode(ref: Path, new: Path, out: Path, **options: object) -> None:
    delta = Encoder(ref.read_bytes(), **options).encode(new.read_bytes())  # type: ignore[arg-type]
    out.write_bytes(delta)


def ours_decode(ref: Path, delta: Path, out: Path, size: int) -> None:
    """Streaming, file to file, with the reference memory-mapped (as ``python -m
    deltaglider.codec decode`` does)."""
    with open(ref, "rb") as fh:
        source = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        with open(delta, "rb") as src, open(out, "wb") as dst:
            Decoder(source).copy_stream(src, dst, max_output_size=size)
    finally:
        source.close()


def corpus_comparison(pairs: list[tuple[Path, Path]], tmp: Path, repeat: int) -> dict:
    """Per pair: the tool (a process, file to file) against ours in process and file to file.

    "codec" is how deltaglider runs the codec: reference and target (or delta) in memory, the
    result returned in memory; the tool can only work on files, so its time includes writing
    and reading them. "f2f" runs ours on the same files as the tool: encode reads the inputs
    and writes the delta; decode is ``Decoder.copy_stream`` from the delta file to the output
    file with the reference memory-mapped. Writing a 12-16 MB output file costs both sides the
    same few milliseconds. The decode bar is judged file to file.
    """
    print(f"\n== Corpus: consecutive releases (median of {repeat} runs; files in {tmp})")
    head = (
        f"{'target':30s} {'MB':>5s} | {'tool delta':>10s} {'ours':>9s} {'ratio':>6s} | "
        f"{'enc tool':>8s} {'codec':>6s} {'x':>6s} {'f2f':>6s} {'x':>6s} | "
        f"{'dec tool':>8s} {'codec':>6s} {'x':>6s} {'f2f':>6s} {'x':>6s}"
    )
    print(head)
    print("-" * len(head))
    rows = []
    for ref, new in pairs:
        size = new.stat().st_size
        ref_b, new_b = ref.read_bytes(), new.read_bytes()
        td, od, to, oo = tmp / "t.delta", tmp / "o.delta", tmp / "t.out", tmp / "o.out"
        t_enc = median_time(functools.partial(tool_encode, ref, new, td), repeat)
        t_dec = median_time(functools.partial(tool_decode, ref, td, to), repeat)
        delta = Encoder(ref_b).encode(new_b)
        c_enc = median_time(lambda r=ref_b, n=new_b: Encoder(r).encode(n), repeat)
        c_dec = median_time(
            lambda r=ref_b, d=delta, z=size: Decoder(r).decode(d, max_output_size=z), repeat
        )
        f_enc = median_time(functools.partial(ours_encode, ref, new, od), repeat)
        f_dec = median_time(functools.partial(ours_decode, ref, od, oo, size), repeat)
        assert to.read_bytes() == oo.read_bytes() == new_b and od.read_bytes() == delta
        row = {
            "target": new.name,
            "size": size,
            "tool_delta": td.stat().st_size,
            "ours_delta": len(delta),
            "tool_encode_s": t_enc,
            "codec_encode_s": c_enc,
            "f2f_encode_s": f_enc,
            "tool_decode_s": t_dec,
            "codec_decode_s": c_dec,
            "f2f_decode_s": f_dec,
        }
        rows.append(row)
        print(
            f"{new.name[:30]:30s} {size / MB:5.1f} | {row['tool_delta']:10d} {len(delta):9d} "
            f"{len(delta) / row['tool_delta']:6.3f} | {t_enc * 1e3:6.0f}ms {c_enc * 1e3:4.0f}ms "
            f"{t_enc / c_enc:5.2f}x {f_enc * 1e3:4.0f}ms {t_enc / f_enc:5.2f}x | "
            f"{t_dec * 1e3:6.1f}ms {c_dec * 1e3:4.1f}ms {t_dec / c_dec:5.2f}x "
            f"{f_dec * 1e3:4.1f}ms {t_dec / f_dec:5.2f}x"
        )
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "target"}
    size = total["size"]
    summary = {
        "pairs": len(rows),
        "target_bytes": size,
        "tool_delta_bytes": total["tool_delta"],
        "ours_delta_bytes": total["ours_delta"],
        "delta_ratio": total["ours_delta"] / total["tool_delta"],
    }
    for op in ("encode", "decode"):
        tool = total[f"tool_{op}_s"]
        summary[f"tool_{op}_MBps"] = size / tool / MB
        for how in ("codec", "f2f"):
            summary[f"{how}_{op}_MBps"] = size / total[f"{how}_{op}_s"] / MB
            summary[f"{how}_{op}_speedup"] = tool / total[f"{how}_{op}_s"]
    print("-" * len(head))
    print(
        f"TOTAL {size / MB:.1f} MB of targets in {len(rows)} pairs: delta bytes ours/tool "
        f"{summary['delta_ratio']:.4f} ({total['ours_delta']} / {total['tool_delta']})"
    )
    for op in ("encode", "decode"):
        print(
            f"  {op}: tool {summary[f'tool_{op}_MBps']:7.1f} MB/s | ours codec "
            f"{summary[f'codec_{op}_MBps']:7.1f} MB/s = {summary[f'codec_{op}_speedup']:5.2f}x"
            f" | ours file to file {summary[f'f2f_{op}_MBps']:7.1f} MB/s = "
            f"{summary[f'f2f_{op}_speedup']:5.2f}x"
        )
    return {"rows": rows, "summary": summary}


# --- threads ---------------------------------------------------------------------------------


def thread_scaling(pairs: list[tuple[Path, Path]], repeat: int) -> dict:
    print(
        f"\n== Thread scaling (in memory, corpus totals, median of {repeat}; {os.cpu_count()} CPUs)"
    )
    data = [(r.read_bytes(), n.read_bytes()) for r, n in pairs]
    deltas = [Encoder(r).encode(n) for r, n in data]
    size = sum(len(n) for _, n in data)
    out: dict[str, dict[str, float]] = {}
    counts = sorted({1, 2, os.cpu_count() or 1, 4})
    base_enc = base_dec = 0.0
    for threads in counts:
        te = median_time(
            lambda t=threads: [Encoder(r, threads=t).encode(n) for r, n in data], repeat
        )
        td = median_time(
            lambda t=threads: [
                Decoder(r, threads=t).decode(d, max_output_size=len(n))
                for (r, n), d in zip(data, deltas, strict=True)
            ],
            repeat,
        )
        if threads == 1:
            base_enc, base_dec = te, td
        out[f"threads={threads}"] = {"encode_MBps": size / te / MB, "decode_MBps": size / td / MB}
        print(
            f"  one call, threads={threads}: encode {size / te / MB:6.1f} MB/s "
            f"({base_enc / te:4.2f}x)   decode {size / td / MB:7.1f} MB/s "
            f"({base_dec / td:4.2f}x)"
        )
    for workers in (1, 2):

        def many(w: int = workers) -> None:
            with ThreadPoolExecutor(w) as pool:
                list(pool.map(lambda p: Encoder(p[0], threads=1).encode(p[1]), data))

        def many_dec(w: int = workers) -> None:
            with ThreadPoolExecutor(w) as pool:
                list(
                    pool.map(
                        lambda p: Decoder(p[0][0], threads=1).decode(
                            p[1], max_output_size=len(p[0][1])
                        ),
                        zip(data, deltas, strict=True),
                    )
                )

        t = median_time(many, repeat)
        t_dec = median_time(many_dec, repeat)
        out[f"independent_encoders={workers}"] = {"encode_MBps": size / t / MB}
        out[f"independent_decoders={workers}"] = {"decode_MBps": size / t_dec / MB}
        print(
            f"  {workers} independent encoder(s) and decoder(s) (threads=1 each) in "
            f"{workers} thread(s): encode {size / t / MB:6.1f} MB/s, "
            f"decode {size / t_dec / MB:7.1f} MB/s"
        )
    return out


# --- early abort -----------------------------------------------------------------------------


def _compressed_noise(path: Path, size: int, seed: int) -> None:
    """``size`` bytes of deflate output of pseudo-text: high entropy, like a rebuilt archive."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(2, 9)).hex().encode() for _ in range(5000)]
    comp = zlib.compressobj(6)
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            text = b" ".join(rng.choices(words, k=20000))
            chunk = comp.compress(text)
            fh.write(chunk[: size - written])
            written += min(len(chunk), size - written)


def early_abort(tmp: Path) -> dict:
    print("\n== Early abort: two unrelated 100 MB files, max_delta_size = 50% of the target")
    out = {}
    for kind in ("random", "compressed"):
        a, b = tmp / f"{kind}-a", tmp / f"{kind}-b"
        if kind == "random":
            rng = random.Random(1)
            a.write_bytes(rng.randbytes(100_000_000))
            b.write_bytes(rng.randbytes(100_000_000))
        else:
            _compressed_noise(a, 100_000_000, 2)
            _compressed_noise(b, 100_000_000, 3)
        t_tool = median_time(functools.partial(tool_encode, a, b, tmp / "u.delta"), 1)

        def abort(a: Path = a, b: Path = b) -> None:
            try:
                Encoder(a.read_bytes()).encode(b.read_bytes(), max_delta_size=50_000_000)
            except DeltaTooLargeError:
                return
            raise AssertionError("expected DeltaTooLargeError")

        t_abort = median_time(abort, 3)
        t_full = median_time(functools.partial(ours_encode, a, b, tmp / "o.delta"), 1)
        out[kind] = {
            "tool_full_s": t_tool,
            "ours_abort_s": t_abort,
            "ours_full_s": t_full,
            "abort_vs_tool": t_abort / t_tool,
        }
        print(
            f"  {kind:10s}: tool full encode {t_tool:6.2f}s | ours: gives up in {t_abort:5.2f}s "
            f"= {100 * t_abort / t_tool:4.1f}% of the tool's time (full encode {t_full:5.2f}s)"
        )
        a.unlink()
        b.unlink()
    return out


# --- peak memory -----------------------------------------------------------------------------

_MEMORY_CHILD = textwrap.dedent("""
    import io, os, random, sys
    source_path, mode, total, mixed, threads = sys.argv[1:6]
    total, mixed, threads = int(total), mixed == "1", int(threads)
    # A machine with at least as many CPUs as threads: the codec's shared pool gets that many
    # workers, so that every thread really has windows in flight at once.
    real = os.cpu_count() or 1
    os.cpu_count = lambda: max(real, threads)

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    from deltaglider.codec import Encoder, Decoder
    baseline = status("VmRSS:")
    source = open(source_path, "rb").read()
    view = memoryview(source)

    class Target(io.RawIOBase):
        # The reference over and over, mutated; with mixed, every third MiB is new data. Made
        # in place in the caller's buffer, in small pieces: the generator's own allocations
        # must not count (nor move glibc's mmap threshold, see _codec.streams.MAPPED_BLOCK).
        def __init__(self):
            self.left, self.pos, self.rng = total, 0, random.Random(5)
        def readable(self):
            return True
        def readinto(self, b):
            n = min(len(b), self.left, 1 << 20)
            if n <= 0:
                return 0
            b = memoryview(b).cast("B")
            if mixed and (self.pos >> 20) % 3 == 2:
                for k in range(0, n, 1 << 15):
                    piece = self.rng.randbytes(1 << 14).hex().encode()
                    m = min(n - k, len(piece))
                    b[k:k + m] = piece[:m]
            else:
                off = self.pos % max(1, len(source) - n)
                b[:n] = view[off:off + n]
                b[self.rng.randrange(n)] ^= 1
            self.left -= n
            self.pos += n
            return n

    class Sink:
        n = 0
        def write(self, b):
            self.n += len(b)

    if mode == "encode":
        # Peak over the interpreter's own footprint: the reference plus the encoder.
        sink = Sink()
        Encoder(source, threads=threads).copy_stream(Target(), sink)
        print(status("VmHWM:") - baseline, sink.n)
    else:
        # The delta is made first (it is the decoder's input, not its memory); then the peak
        # is reset and only the streaming decode is measured, counted with the reference.
        buf = io.BytesIO()
        Encoder(source, threads=threads).copy_stream(Target(), buf)
        delta = buf.getvalue()
        del buf
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
        before = status("VmRSS:")
        sink = Sink()
        Decoder(source, threads=threads).copy_stream(io.BytesIO(delta), sink)
        assert sink.n == total
        print(len(source) + status("VmHWM:") - before, len(delta))
""")


def peak_memory(
    pairs: list[tuple[Path, Path]], tmp: Path, target_mb: int, threads: list[int], big_mb: int
) -> dict:
    """Peak memory of streaming encode and decode: per thread count (explicit ``threads=``, in
    a child that sees at least that many CPUs), for a corpus reference and a large random
    one, on similar and mixed targets. The bar is judged on the worst case."""
    print(
        f"\n== Peak memory of streaming encode and decode ({target_mb} MiB targets; "
        "bar: reference size + 64 MiB)"
    )
    big = tmp / "big-ref"
    rng = random.Random(7)
    with open(big, "wb") as fh:
        for _ in range(big_mb):
            fh.write(rng.randbytes(1 << 20))
    sources = [pairs[-1][0], big]
    out = {}
    for src in sources:
        size = src.stat().st_size
        for mixed in (False, True):
            for mode in ("encode", "decode"):
                cells = []
                for t in threads:
                    res = subprocess.run(
                        [
                            sys.executable,
                            "-c",
                            _MEMORY_CHILD,
                            str(src),
                            mode,
                            str(target_mb << 20),
                            "1" if mixed else "0",
                            str(t),
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    used = int(res.stdout.split()[0])
                    over = used - size
                    label = f"{src.name[:24]} {'mixed' if mixed else 'similar'} {mode} threads={t}"
                    out[label] = {"source": size, "threads": t, "used": used, "over_source": over}
                    cells.append(f"{t}: +{over / 2**20:4.1f}")
                name = f"{src.name[:24]} ({size / 2**20:.0f} MiB) {'mixed' if mixed else 'similar'}"
                print(f"  {name:44s} {mode:6s} reference + MiB by threads  {'  '.join(cells)}")
    big.unlink()
    return out


# --- defaults sweep --------------------------------------------------------------------------


def sweep(
    pairs: list[tuple[Path, Path]], tool_bytes: int, tool_seconds: float, repeat: int = 2
) -> dict:
    print(
        "\n== Levels and secondary compression (in memory, corpus totals): "
        "the table the defaults come from"
    )
    data = [(r.read_bytes(), n.read_bytes()) for r, n in pairs]
    size = sum(len(n) for _, n in data)
    out = {}
    print(
        f"  {'level':>5s} {'secondary':>10s} {'delta bytes':>12s} {'vs tool':>8s} "
        f"{'encode MB/s':>12s} {'vs tool':>8s} {'decode MB/s':>12s}"
    )
    for level in range(1, 10):
        for secondary in ("none", "djw", "lzma"):
            # The fastest of ``repeat`` runs: the machine's noise only ever slows a run down.
            te = td = float("inf")
            for _ in range(repeat):
                t = time.perf_counter()
                deltas = [Encoder(r, level=level, secondary=secondary).encode(n) for r, n in data]
                te = min(te, time.perf_counter() - t)
                t = time.perf_counter()
                for (r, n), d in zip(data, deltas, strict=True):
                    Decoder(r).decode(d, max_output_size=len(n))
                td = min(td, time.perf_counter() - t)
            total = sum(map(len, deltas))
            key = f"level={level} secondary={secondary}"
            out[key] = {
                "delta_ratio": total / tool_bytes,
                "encode_MBps": size / te / MB,
                "decode_MBps": size / td / MB,
            }
            print(
                f"  {level:5d} {secondary:>10s} {total:12d} {total / tool_bytes:8.4f} "
                f"{size / te / MB:12.1f} {tool_seconds / te:7.2f}x {size / td / MB:12.1f}"
            )
    return out


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--corpus", type=Path, default=corpus.DEFAULT_DIR)
    parser.add_argument("--sweep", action="store_true", help="also print the level table")
    parser.add_argument(
        "--sweep-repeat", type=int, default=2, help="runs per sweep cell (the fastest counts)"
    )
    parser.add_argument("--skip-abort", action="store_true", help="skip the 100 MB early abort")
    parser.add_argument("--memory-target-mb", type=int, default=512)
    parser.add_argument(
        "--memory-threads",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 2, 4, 8],
        help="thread counts of the memory section (comma-separated; default 1,2,4,8)",
    )
    parser.add_argument(
        "--memory-big-mb", type=int, default=128, help="size of the large random reference"
    )
    parser.add_argument("--skip-memory", action="store_true", help="skip the memory section")
    parser.add_argument("--json", type=Path, help="write all results to this file")
    args = parser.parse_args()
    if not XDELTA3:
        raise SystemExit("the xdelta3 tool is required (apt-get install xdelta3)")
    tool_version = subprocess.run([XDELTA3, "-V"], capture_output=True, text=True)
    print(f"tool: {(tool_version.stdout or tool_version.stderr).splitlines()[0]}")
    pairs = corpus.pairs(args.corpus)
    results: dict = {}
    # Work files on tmpfs when there is one: it takes the disk out of the tool's times.
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmpdir:
        tmp = Path(tmpdir)
        results["corpus"] = corpus_comparison(pairs, tmp, args.repeat)
        results["threads"] = thread_scaling(pairs, args.repeat)
        if not args.skip_abort:
            results["early_abort"] = early_abort(tmp)
        if not args.skip_memory:
            results["memory"] = peak_memory(
                pairs, tmp, args.memory_target_mb, args.memory_threads, args.memory_big_mb
            )
        if args.sweep:
            s = results["corpus"]["summary"]
            results["sweep"] = sweep(
                pairs,
                s["tool_delta_bytes"],
                s["target_bytes"] / s["tool_encode_MBps"] / MB,
                args.sweep_repeat,
            )
    s = results["corpus"]["summary"]
    bars = [
        (
            "encode >= 3x the tool's -e -9",
            s["codec_encode_speedup"] >= 3,
            f"{s['codec_encode_speedup']:.2f}x (file to file {s['f2f_encode_speedup']:.2f}x)",
        ),
        ("delta bytes <= 1.03x the tool's", s["delta_ratio"] <= 1.03, f"{s['delta_ratio']:.4f}x"),
        (
            "decode >= 5x the tool's -d (file to file)",
            s["f2f_decode_speedup"] >= 5,
            f"{s['f2f_decode_speedup']:.2f}x (in memory {s['codec_decode_speedup']:.2f}x)",
        ),
    ]
    if "early_abort" in results:
        worst = max(v["abort_vs_tool"] for v in results["early_abort"].values())
        bars.append(
            ("early abort < 20% of the tool's full encode", worst < 0.2, f"{100 * worst:.1f}%")
        )
    if "memory" in results:
        worst_key = max(results["memory"], key=lambda k: results["memory"][k]["over_source"])
        worst_mem = results["memory"][worst_key]["over_source"]
        bars.append(
            (
                "streaming peak memory <= reference + 64 MiB",
                worst_mem <= 64 << 20,
                f"reference + {worst_mem / 2**20:.1f} MiB (worst: {worst_key})",
            )
        )
    print("\n== Bars")
    for name, ok, value in bars:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {value}")
    results["bars"] = {name: {"pass": ok, "value": value} for name, ok, value in bars}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    sys.exit(0 if all(ok for _, ok, _ in bars) else 1)


if __name__ == "__main__":
    main()
