"""Crash consistency: ``deltaglider`` killed with SIGKILL at random points, then run again.

Each command runs as the installed executable, against SeaweedFS (``cp`` also against the local
``file://`` store). It first runs once to completion, which measures it: its duration, and its
S3 requests (``--debug`` logs one line per request). Then, each time from the same starting
state (a fresh prefix or folder), it is killed with SIGKILL at a point drawn from a seeded
random (``DG_CRASH_SEED``, default fixed; every assertion message shows it and the point):

- after its N-th S3 request: the test reads the ``--debug`` log as it comes and kills on the
  N-th line, at once or up to 10 ms later (inside the next request); N may be the last one
  (the work done, the command killed before it reports);
- at a time drawn between half the time to its first request and the duration of the complete
  run (kills during the interpreter's start-up test nothing);
- on the local store, right after its N-th ``os.replace``: the process kills itself there (a
  hook in a ``python -c`` wrapper around the same entry point), between the rename of an
  object's data and of its metadata, or between two objects. ``cp`` of one file is killed
  after each of its renames in turn.

Draws go on until the wanted number of runs were killed before they ended (at most three times
as many draws); a run that ended first must have done all the work.

After each kill:

- every object ``deltaglider ls -r`` lists reads back byte-exactly (a fresh engine, an empty
  cache) as the version before the command or the version the command writes, with the listed
  size; what the command does not change is there and unchanged; nothing else is listed;
- every physical object under the user's keys is one of those listed objects (no half-written
  object, no delta without its metadata); besides them there are only ``reference.bin`` files
  and the tool's ``.deltaglider/probe/`` and ``.deltaglider/trash/`` objects (a killed probe
  of create-only writes, a killed reference removal), never listed;
- downloads: every file under a user's name in the destination folder is the old file or the
  new one, whole; the only other files are the engine's hidden temporary files
  (``.<name>.<8 random characters>.dgpart``) beside a file being downloaded. Nothing removes
  these after a SIGKILL; ``sync --delete`` removes them on its next run (they are not in the
  bucket); other commands leave them.

Then the same command runs again and must exit 0 with the work complete: the listing is exactly
what the command writes, every object reads back byte-exactly, every deltaspace that holds
deltas has its ``reference.bin`` and no other deltaspace has one, ``deltaglider verify -r``
passes; a download folder holds exactly the bucket's files.

Commands: ``cp`` of one file (the first file of a deltaspace: a new reference and its delta; a
delta against an existing reference; an overwrite of a delta; a direct upload of 6 MiB in one
PUT; a 6 MiB new reference in 5 MiB parts), ``cp -r`` of 40 files in 5 deltaspaces (SeaweedFS
and the local store), ``sync`` up with ``--delete`` (new, changed, unchanged and removed files,
one deltaspace emptied), ``sync`` down with ``--delete`` (a 6 MiB file among small ones, so that
kills land inside a download), a short ``migrate``, ``rm -r`` with ``--exclude``, ``cp -r`` from
another bucket and ``sync --delete`` between two S3 prefixes, and a Python program on
``create_client()`` (``upload_file`` of a folder, then ``delete_objects``), its requests logged
as ``--debug`` logs them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from data import get_bytes, noise, release
from reliability_conftest import s3_storage
from servers import Server

from deltaglider import format as fmt
from deltaglider.cache import MemoryCache
from deltaglider.config import Config
from deltaglider.engine import DeltaStore
from deltaglider.storage import _s3_session
from deltaglider.storage.local import LocalStorage

# Slow (SIGKILL at random points of every command: minutes): CI runs it, -m "not slow" does not.
pytestmark = pytest.mark.slow


def _cli_helpers() -> ModuleType:
    """tests/cli/conftest.py (``Target``, ``Dg``, ``base_env``, ``executable``), loaded by path
    when pytest has not loaded it (this file run alone)."""
    loaded = sys.modules.get("cli_conftest")
    if loaded is not None:
        return loaded
    path = Path(__file__).parents[1] / "cli" / "conftest.py"
    spec = importlib.util.spec_from_file_location("cli_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cli_conftest"] = module
    spec.loader.exec_module(module)
    return module


_cli = _cli_helpers()
Target = _cli.Target
Dg = _cli.Dg

#: The seed of every random kill point (``DG_CRASH_SEED=<int>`` to explore others).
SEED = int(os.environ.get("DG_CRASH_SEED", "20260611"))
#: A killed or re-run command that takes longer than this is a hang.
LIMIT = 60.0
#: The multipart settings of the multipart case: S3's smallest part (5 MiB).
MULTIPART_ENV = {"DG_MULTIPART_THRESHOLD_MB": "5", "DG_MULTIPART_CHUNKSIZE_MB": "5"}
BIG = 6 << 20

_REQUEST = re.compile(r"^deltaglider: DEBUG: [a-z ]+ s3://")
_RENAME = re.compile(r"^crash-hook: rename ")
#: The engine's temporary download files: ``tempfile.mkstemp(prefix=".<name>.", suffix=".dgpart")``.
_PART = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.dgpart$")
_buckets = iter(range(1 << 30))

#: Runs the CLI's entry point with ``os.replace`` counted: after each rename a line on stderr,
#: and after the ``DG_CRASH_AFTER_RENAMES``-th one the process SIGKILLs itself, between that
#: rename and whatever was to follow it.
_HOOK = """
import os, signal, sys
_limit = int(os.environ.get("DG_CRASH_AFTER_RENAMES") or 0)
_real = os.replace
_count = 0
def _replace(src, dst, **kw):
    global _count
    _real(src, dst, **kw)
    _count += 1
    sys.stderr.write("crash-hook: rename %d %s\\n" % (_count, dst))
    sys.stderr.flush()
    if _count == _limit:
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = _replace
from deltaglider.cli import main
sys.argv[0] = "deltaglider"
raise SystemExit(main(sys.argv[1:]))
"""


def _sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()[:16]


def _zip(version: int, seed: int) -> bytes:
    """A small release (about 25 KB) whose versions differ a little: deltas happen."""
    return release(version, files=12, size=2000, seed=seed)


# --- killing a command ---------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """Where a run is killed: once ``requests`` lines (S3 requests, or renames with the hook)
    were logged, ``pause`` seconds later; or ``seconds`` after it started; or, with
    ``renames``, by itself right after that many renames."""

    requests: int | None = None
    pause: float = 0.0
    seconds: float | None = None
    renames: int | None = None

    def __str__(self) -> str:
        if self.renames is not None:
            return f"right after rename #{self.renames}"
        if self.requests is not None:
            return f"after request #{self.requests} + {self.pause * 1000:.1f} ms"
        return f"at {self.seconds:.3f} s"


@dataclass
class Run:
    """How a run ended."""

    returncode: int
    seconds: float
    requests: int
    stderr: str
    point: Point | None = None
    #: When the first request (or rename) was logged, in seconds from the start.
    first: float = 0.0

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def describe(self) -> str:
        how = "killed" if self.killed else f"exit {self.returncode}"
        return (
            f"seed {SEED}, kill point {self.point}: {how} after {self.seconds:.3f} s and "
            f"{self.requests} logged requests/renames"
        )


@dataclass
class Command:
    """A command line, run in ``cwd`` with the target's environment."""

    target: Any
    args: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    hook: bool = False  # through the rename hook (local store)
    script: str | None = None  # a Python program run with ``args``, instead of the CLI

    def run(self, point: Point | None = None) -> Run:
        env = {**os.environ, **self.target.env, **self.env}
        env.pop("AWS_PROFILE", None)
        env.pop("DG_CRASH_AFTER_RENAMES", None)
        if point is not None and point.renames is not None:
            env["DG_CRASH_AFTER_RENAMES"] = str(point.renames)
        if self.script is not None:
            argv = [sys.executable, "-c", self.script, *self.args]
            pattern = _REQUEST
        elif self.hook:
            argv = [sys.executable, "-c", _HOOK, "--debug", *self.args]
            pattern = _RENAME
        else:
            argv = [_cli.executable(), "--debug", *self.args]
            pattern = _REQUEST
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=self.cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        lines: list[str] = []
        count = 0
        lock = threading.Lock()

        def kill() -> None:
            with lock:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGKILL)

        first = 0.0

        def read() -> None:
            nonlocal count, first
            assert proc.stderr is not None
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace")
                lines.append(line)
                if pattern.match(line):
                    count += 1
                    if count == 1:
                        first = time.monotonic() - started
                    if point is not None and point.requests == count:
                        if point.pause:
                            time.sleep(point.pause)
                        kill()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            timeout = LIMIT if point is None or point.seconds is None else point.seconds
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                if point is None or point.seconds is None:
                    raise
                kill()
            proc.wait(LIMIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(10)
        seconds = time.monotonic() - started
        return Run(proc.returncode, seconds, count, "".join(lines), point, first)


def draw_point(
    rng: random.Random,
    full: Run,
    i: int,
    *,
    renames: bool = False,
    horizon: float = 0.0,
    focus: tuple[str, str | None] | None = None,
) -> Point:
    """The ``i``-th kill point drawn within the complete run ``full`` (which took ``horizon``
    seconds, or less if a later complete run was quicker): by request (or rename) count and by
    time, alternately. With ``focus`` (two patterns), requests are drawn from the one that
    matches the first to the one before the one that matches the second (None: to the last)."""
    # After the last request too: the work done, the command killed before it reports.
    first, last = 1, full.requests - 1 if renames else full.requests
    if focus is not None:
        logged = [line for line in full.stderr.splitlines() if _REQUEST.match(line)]
        first = 1 + next(n for n, line in enumerate(logged) if re.search(focus[0], line))
        if focus[1] is not None:
            last = next(n for n, line in enumerate(logged) if re.search(focus[1], line))
    if i % 2 == 0 and last >= first:
        n = rng.randint(first, last)
        if renames:
            # Odd renames are objects' data (their metadata follows): both kinds.
            return Point(renames=n | 1 if i % 4 == 0 else max(2, n & ~1))
        return Point(requests=n, pause=rng.choice([0.0, rng.uniform(0.0, 0.01)]))
    # From just before the first request ended (the interpreter's start is of no interest).
    return Point(seconds=rng.uniform(full.first * 0.9, horizon or full.seconds))


def complete(run: Run, what: str) -> None:
    assert run.returncode == 0, f"{what}: {run.describe()}\n{run.stderr[-3000:]}"


# --- the stores, and what they hold ----------------------------------------------------------


def make_target(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """A fresh bucket on SeaweedFS or in a local store (names of this module's own)."""
    bucket = f"dg-crash-{os.getpid()}-{next(_buckets)}"
    env = _cli.base_env(tmp_path)
    if kind == "local":
        root = tmp_path / "store"
        env["DG_ENDPOINT_URL"] = root.as_uri()
        target = Target(kind, root.as_uri(), env, bucket, root=root)
    else:
        server: Server = request.getfixturevalue("seaweedfs")
        env.update(
            AWS_ACCESS_KEY_ID=server.access_key,
            AWS_SECRET_ACCESS_KEY=server.secret_key,
            AWS_DEFAULT_REGION="us-east-1",
            DG_ENDPOINT_URL=server.endpoint_url,
        )
        target = Target(kind, server.endpoint_url, env, bucket, server=server)
    target.storage().create_bucket(bucket)
    return target


@pytest.fixture
def s3(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    target = make_target("seaweedfs", tmp_path, request)
    yield target
    _cli.drop_target(target)


@contextmanager
def fresh_engine(target: Any) -> Iterator[DeltaStore]:
    """An engine with an empty cache over a new connection: nothing remembered from before."""
    storage = s3_storage(target.server) if target.server is not None else LocalStorage(target.root)
    engine = DeltaStore(
        storage, MemoryCache(64 << 20), Config.from_env(environ={}, cache_backend="memory")
    )
    try:
        yield engine
    finally:
        engine.close()


@contextmanager
def shared_session(target: Any) -> Iterator[None]:
    """In-process CLI runs reuse one boto3 Session (a new one loads botocore's data: 0.15 s)."""
    if target.server is None:
        yield
        return
    session = s3_storage(target.server).session
    with mock.patch.object(_s3_session.boto3, "Session", return_value=session):
        yield


def in_process(target: Any, workdir: Path, *args: str) -> Any:
    with shared_session(target):
        return Dg(target, workdir)(*args)


def listed(target: Any, workdir: Path, prefix: str) -> dict[str, int]:
    """``deltaglider ls -r --json s3://bucket/prefix``: logical key (under prefix) -> size."""
    result = in_process(target, workdir, "ls", "-r", "--json", target.url(prefix))
    out = {}
    for line in result.stdout.splitlines():
        record = json.loads(line)
        if "key" in record:
            out[record["key"][len(prefix) :]] = record["size"]
    # Exit 1 is ``aws s3 ls`` for a prefix that matches nothing.
    assert result.exit_code == 0 or (result.exit_code == 1 and not out), result.output
    return out


#: What a key may hold: its allowed contents (None: absent).
Allowed = Mapping[str, set[bytes | None]]


def check_bucket(
    target: Any, workdir: Path, prefix: str, allowed: Allowed, where: str
) -> dict[str, int]:
    """The bucket under ``prefix`` holds only whole objects the command may leave there.
    Returns what ``ls -r`` listed."""
    keys = listed(target, workdir, prefix)
    extra = sorted(set(keys) - set(allowed))
    assert not extra, f"{where}: listed, but never written: {extra}"
    for key, options in allowed.items():
        if key not in keys:
            assert None in options, f"{where}: {key} lost (listed: {sorted(keys)})"
    with fresh_engine(target) as engine:
        read = engine.pools.operations.as_completed(
            lambda k: get_bytes(engine, target.bucket, prefix + k), ((k,) for k in keys)
        )
        for (key,), data, error in read:
            assert error is None, f"{where}: {key} is listed but does not read back: {error!r}"
            assert data in allowed[key], (
                f"{where}: {key} reads back as {_sha(data)} ({len(data)} bytes), "
                f"not one of {sorted(str(_sha(o)) for o in allowed[key])}"
            )
            assert keys[key] == len(data), f"{where}: {key} listed with size {keys[key]}"
        physical = [o.key for o in engine.storage.iter_objects(target.bucket, prefix=prefix)]
    for key in physical:
        kind = fmt.physical(key)
        if kind.kind == "reference":
            continue
        rel = kind.logical[len(prefix) :]
        assert rel in keys, f"{where}: {key} is stored but not listed (a half-written object)"
    internal = [o.key for o in target.storage().iter_objects(target.bucket, prefix=".deltaglider/")]
    odd = [k for k in internal if not k.startswith((".deltaglider/probe/", ".deltaglider/trash/"))]
    assert not odd, f"{where}: unexpected bookkeeping objects {odd}"
    if internal:
        print(f"{where}: bookkeeping objects left: {internal}")
    return keys


def check_done(
    target: Any, workdir: Path, prefix: str, expected: Mapping[str, bytes], where: str
) -> None:
    """The command's work is complete: exactly ``expected``, one reference per deltaspace that
    needs one, ``deltaglider verify`` passes."""
    keys = check_bucket(target, workdir, prefix, {k: {v} for k, v in expected.items()}, where)
    assert sorted(keys) == sorted(expected), where
    physical = [o.key for o in target.storage().iter_objects(target.bucket, prefix=prefix)]
    refs = {fmt.deltaspace(k) for k in physical if fmt.physical(k).kind == "reference"}
    spaces = {fmt.deltaspace(k) for k in physical if fmt.physical(k).kind == "delta"}
    assert refs == spaces, f"{where}: references {sorted(refs)} for deltaspaces {sorted(spaces)}"
    verify = in_process(target, workdir, "verify", "-r", target.url(prefix))
    assert verify.exit_code == 0, f"{where}: verify failed\n{verify.output}"


def local_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def check_folder(root: Path, allowed: Allowed, where: str) -> list[str]:
    """Every file under ``root`` is whole: one of the versions allowed under its name, or a
    temporary download file beside a name the command writes. Returns those temporary files."""
    temporary = []
    found = local_files(root) if root.exists() else {}
    for rel, data in found.items():
        name = rel.rsplit("/", 1)[-1]
        part = _PART.match(name)
        if part and rel not in allowed:
            target = rel[: -len(name)] + part["name"]
            assert target in allowed, f"{where}: {rel} is a temporary file of no download"
            temporary.append(rel)
            continue
        assert rel in allowed, f"{where}: {rel} was never written"
        assert data in allowed[rel], (
            f"{where}: {rel} holds {_sha(data)} ({len(data)} bytes), "
            f"not one of {sorted(str(_sha(o)) for o in allowed[rel])} (a partial file?)"
        )
    for rel, options in allowed.items():
        if rel not in found:
            assert None in options, f"{where}: {rel} lost"
    return temporary


def seed_bucket(target: Any, prefix: str, files: Mapping[str, bytes]) -> None:
    """Stores ``files`` under ``prefix`` as deltaglider would (in-process, quick)."""
    with fresh_engine(target) as engine:
        for _key, _result, error in engine.put_many(
            target.bucket, [(prefix + k, v) for k, v in files.items()]
        ):
            assert error is None, error


def write_tree(root: Path, files: Mapping[str, bytes], old: Collection[str] = ()) -> None:
    """Writes ``files``; those in ``old`` get a time in 2020 (older than any object)."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if rel in old:
            os.utime(path, (1_600_000_000, 1_600_000_000))


def rng_for(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


# --- the driver ------------------------------------------------------------------------------


@dataclass
class Scenario:
    """A command killed and re-run: ``attempt(i)`` prepares the i-th starting state (a prefix or
    folder of its own) and returns the command; ``after_kill`` and ``after_rerun`` check it."""

    name: str
    attempt: Any  # Callable[[int], Command]
    after_kill: Any  # Callable[[int, str], None]
    after_rerun: Any  # Callable[[int, str], None]


def exercise(
    scenario: Scenario,
    kills: int,
    *,
    renames: bool = False,
    points: list[Point] | None = None,
    full: Run | None = None,
    focus: tuple[str, str | None] | None = None,
) -> None:
    """A complete run (which measures the command), then runs killed at random points until
    ``kills`` of them were killed before they ended (or one run per point of ``points``, each
    of which must kill); each checked, re-run and checked again. A run that ended before its
    kill point must have completed the work."""
    name = scenario.name
    if full is None:
        full = scenario.attempt(0).run()
        complete(full, f"{name}: the complete run")
        scenario.after_rerun(0, f"{name}: the complete run")
    rng = rng_for(name)
    horizon = full.seconds
    runs: list[Run] = []
    killed = 0
    draws = len(points) if points is not None else 3 * kills
    for i in range(draws):
        if points is None and killed == kills:
            break
        if points is not None:
            point = points[i]
        else:
            point = draw_point(rng, full, i, renames=renames, horizon=horizon, focus=focus)
        command = scenario.attempt(i + 1)
        run = command.run(point)
        runs.append(run)
        print(f"{name}: {run.describe()}")  # shown with -s, or when the test fails
        if not run.killed:
            horizon = min(horizon, run.seconds)
            complete(run, f"{name}: not killed")
            scenario.after_rerun(i + 1, f"{name}: not killed: {run.describe()}")
            continue
        killed += 1
        scenario.after_kill(i + 1, f"{name}: {run.describe()}")
        again = command.run()
        complete(again, f"{name}: re-run after {run.describe()}")
        scenario.after_rerun(i + 1, f"{name}: re-run after {run.describe()}")
    wanted = len(points) if points is not None else kills
    assert killed == wanted, (
        f"{name}: {killed} of {len(runs)} runs were killed before they ended, {wanted} wanted: "
        + "; ".join(r.describe() for r in runs)
    )


# --- cp of one file ------------------------------------------------------------------------

Z1, Z2, Z3 = _zip(1, 1), _zip(2, 1), _zip(3, 1)
BLOB = noise(BIG, 7)
BIG_ZIP = noise(BIG, 8)

#: name -> (what the deltaspace holds before, the file copied, its bytes, extra environment)
ONE_FILE: dict[str, tuple[dict[str, bytes], str, bytes, dict[str, str]]] = {
    "new-reference": ({}, "app-1.zip", Z1, {}),
    "delta": ({"app-1.zip": Z1}, "app-2.zip", Z2, {}),
    "overwrite": ({"app-1.zip": Z1, "app.zip": Z2}, "app.zip", Z3, {}),
    "direct": ({"app-1.zip": Z1}, "blob.bin", BLOB, {}),  # one PUT of 6 MiB
    "multipart": ({}, "big-1.zip", BIG_ZIP, MULTIPART_ENV),
}


def one_file(target: Any, case: str, workdir: Path, hook: bool = False) -> Scenario:
    """``cp FILE s3://.../one/k<i>/FILE`` into a deltaspace that holds ``ONE_FILE[case]``."""
    before, name, data, env = ONE_FILE[case]
    (workdir / "src").mkdir(parents=True)
    (workdir / "src" / name).write_bytes(data)

    def prefix(i: int) -> str:
        return f"one/k{i}/"

    def attempt(i: int) -> Command:
        if before:
            seed_bucket(target, prefix(i), before)
        args = ["cp", f"src/{name}", target.url(prefix(i) + name)]
        return Command(target, args, workdir, env, hook=hook)

    def after_kill(i: int, where: str) -> None:
        allowed: dict[str, set[bytes | None]] = {k: {v} for k, v in before.items()}
        allowed[name] = allowed.get(name, {None}) | {data}
        check_bucket(target, workdir, prefix(i), allowed, where)

    def after_rerun(i: int, where: str) -> None:
        check_done(target, workdir, prefix(i), {**before, name: data}, where)

    return Scenario(f"cp {case} ({target.kind})", attempt, after_kill, after_rerun)


@pytest.mark.parametrize("case", list(ONE_FILE))
def test_cp_one_file_killed(case: str, s3: Any, tmp_path: Path) -> None:
    """``cp FILE s3://...`` killed anywhere: the key holds the old object or the new one, whole,
    or nothing; what was there before is untouched; a re-run stores it."""
    # A multipart upload is killed by request between its creation and its completion.
    focus = ("multipart upload s3://", "complete multipart upload") if case == "multipart" else None
    exercise(one_file(s3, case, tmp_path / "work"), kills=3, focus=focus)


@pytest.mark.parametrize("case", ["new-reference", "delta", "overwrite", "direct"])
def test_cp_one_file_local_store_killed_at_every_rename(
    case: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """On the local store, ``cp FILE`` killed right after each rename it makes but the last:
    between an object's data and its metadata (a delta's data without its metadata would read
    as the raw delta under the user's name; an overwrite's data with the old metadata would
    not verify; a reference's data without metadata would make its deltaspace store every
    later file whole), or between two objects. The next store opened on the folder finishes
    the interrupted write: the object is whole; a re-run stores the file as a delta."""
    target = make_target("local", tmp_path, request)
    try:
        scenario = one_file(target, case, tmp_path / "work", hook=True)
        full = scenario.attempt(0).run()
        complete(full, f"{scenario.name}: the complete run")
        scenario.after_rerun(0, f"{scenario.name}: the complete run")
        points = [Point(renames=n) for n in range(1, full.requests)]
        exercise(scenario, 0, points=points, full=full)
    finally:
        _cli.drop_target(target)


# --- cp -r of a tree -----------------------------------------------------------------------


def tree() -> dict[str, bytes]:
    """40 files: 35 releases in 5 deltaspaces (one at the root), 5 direct files."""
    files = {f"app/app-1.{v}.zip": _zip(v, 1) for v in range(1, 11)}
    files.update({f"lib/lib-2.{v}.zip": _zip(v, 2) for v in range(1, 11)})
    files.update({f"tools/cli/cli-{v}.zip": _zip(v, 3) for v in range(1, 8)})
    files.update({f"tools/gui/gui-{v}.zip": _zip(v, 4) for v in range(1, 8)})
    files.update({f"docs/page-{i:02d}.html": noise(3000 + 500 * i, 100 + i) for i in range(3)})
    files.update({"README.txt": noise(4000, 99), "root-1.zip": _zip(1, 5)})
    files["tools/index.txt"] = noise(2000, 98)
    return files


@pytest.mark.parametrize("kind", ["seaweedfs", "local"])
def test_cp_recursive_killed(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """``cp -r`` of a tree killed anywhere (on the local store also between the renames of an
    object's data and its metadata): only whole objects are listed; a re-run stores the rest,
    with one reference per deltaspace."""
    target = make_target(kind, tmp_path, request)
    files = tree()
    workdir = tmp_path / "work"
    write_tree(workdir / "tree", files)

    def prefix(i: int) -> str:
        return f"cpr/k{i}/"

    def attempt(i: int) -> Command:
        return Command(
            target, ["cp", "-r", "tree/", target.url(prefix(i))], workdir, hook=kind == "local"
        )

    def after_kill(i: int, where: str) -> None:
        check_bucket(target, workdir, prefix(i), {k: {v, None} for k, v in files.items()}, where)

    def after_rerun(i: int, where: str) -> None:
        check_done(target, workdir, prefix(i), files, where)

    try:
        exercise(
            Scenario(f"cp -r ({kind})", attempt, after_kill, after_rerun),
            kills=5,
            renames=kind == "local",
        )
    finally:
        _cli.drop_target(target)


# --- sync up and down ----------------------------------------------------------------------


def sync_up_states() -> tuple[dict[str, bytes], dict[str, bytes], set[str]]:
    """The bucket before, the local folder, and the files unchanged between them."""
    before = {f"app/app-1.{v}.zip": _zip(v, 1) for v in range(1, 7)}
    before.update({f"lib/lib-2.{v}.zip": _zip(v, 2) for v in range(1, 5)})
    before.update({f"gone/g-{v}.zip": _zip(v, 6) for v in range(1, 4)})  # emptied by --delete
    before.update({f"docs/{c}.txt": noise(2000 + 100 * i, 200 + i) for i, c in enumerate("abcde")})
    local = {k: v for k, v in before.items() if k.startswith("app/")}
    local.update({f"app/app-1.{v}.zip": _zip(v, 1) for v in range(7, 11)})
    local["lib/lib-2.1.zip"] = before["lib/lib-2.1.zip"]
    local.update({f"lib/lib-2.{v}.zip": _zip(v + 20, 2) for v in (2, 3)})  # changed
    local.update({f"docs/{c}.txt": before[f"docs/{c}.txt"] for c in "ab"})
    local["docs/c.txt"] = noise(2500, 300)  # changed
    local.update({f"docs/{c}.txt": noise(1000, 301 + i) for i, c in enumerate("fg")})
    unchanged = {k for k, v in local.items() if before.get(k) == v}
    return before, local, unchanged


def test_sync_up_delete_killed(s3: Any, tmp_path: Path) -> None:
    """``sync DIR s3://... --delete`` killed anywhere: unchanged objects stay; a changed one is
    the old or the new version; a new one is whole or absent; a deleted one is whole or gone;
    a re-run makes the bucket the folder, and the emptied deltaspace keeps no reference."""
    before, local, unchanged = sync_up_states()
    workdir = tmp_path / "work"
    write_tree(workdir / "local", local, old=unchanged)

    def prefix(i: int) -> str:
        return f"up/k{i}/"

    def attempt(i: int) -> Command:
        seed_bucket(s3, prefix(i), before)
        return Command(s3, ["sync", "local/", s3.url(prefix(i)), "--delete"], workdir)

    def after_kill(i: int, where: str) -> None:
        allowed: dict[str, set[bytes | None]] = {}
        for key in set(before) | set(local):
            allowed[key] = {before.get(key), local.get(key)}
        check_bucket(s3, workdir, prefix(i), allowed, where)

    def after_rerun(i: int, where: str) -> None:
        check_done(s3, workdir, prefix(i), local, where)

    exercise(Scenario("sync up --delete", attempt, after_kill, after_rerun), kills=4)


def sync_down_states() -> tuple[dict[str, bytes], dict[str, bytes], set[str]]:
    """The bucket, the local folder before, and the files it already has."""
    bucket = {f"app/app-1.{v}.zip": _zip(v, 1) for v in range(1, 9)}
    bucket.update({f"docs/{c}.txt": noise(2000 + 100 * i, 400 + i) for i, c in enumerate("abcd")})
    bucket["big/blob.bin"] = noise(BIG, 9)
    local = {f"app/app-1.{v}.zip": bucket[f"app/app-1.{v}.zip"] for v in range(1, 5)}
    local["docs/a.txt"] = noise(1500, 410)  # changed
    local["app/app-1.0.zip"] = _zip(30, 1)  # deleted by --delete
    local["docs/z.txt"] = noise(500, 411)  # deleted by --delete
    unchanged = {k for k, v in local.items() if bucket.get(k) == v}
    return bucket, local, unchanged


def test_sync_down_delete_killed(s3: Any, tmp_path: Path) -> None:
    """``sync s3://... DIR --delete`` killed anywhere, also inside the download of a 6 MiB
    file: every file under a user's name is the old or the new one, whole; the only other files
    are hidden ``.dgpart`` temporary files; a re-run makes the folder the bucket and removes
    them."""
    bucket, local, unchanged = sync_down_states()
    seed_bucket(s3, "down/", bucket)
    workdir = tmp_path / "work"
    workdir.mkdir()
    leftovers: list[str] = []

    def folder(i: int) -> Path:
        return workdir / f"mirror-{i}"

    def attempt(i: int) -> Command:
        write_tree(folder(i), local, old=unchanged)
        return Command(s3, ["sync", s3.url("down/"), folder(i).name, "--delete"], workdir)

    def after_kill(i: int, where: str) -> None:
        allowed: dict[str, set[bytes | None]] = {}
        for key in set(bucket) | set(local):
            allowed[key] = {bucket.get(key), local.get(key)}
        leftovers.extend(check_folder(folder(i), allowed, where))

    def after_rerun(i: int, where: str) -> None:
        got = local_files(folder(i))
        assert sorted(got) == sorted(bucket), f"{where}: the folder holds {sorted(got)}"
        bad = sorted(k for k in bucket if got[k] != bucket[k])
        assert not bad, f"{where}: wrong bytes in {bad}"

    exercise(Scenario("sync down --delete", attempt, after_kill, after_rerun), kills=5)
    print(f"temporary files left by killed downloads (removed by the re-runs): {leftovers}")


# --- migrate -------------------------------------------------------------------------------


def test_migrate_killed(s3: Any, tmp_path: Path) -> None:
    """``migrate`` killed anywhere (plain objects of another tool into deltaglider storage):
    only whole objects at the destination; a re-run completes it."""
    files = {f"app/app-1.{v}.zip": _zip(v, 1) for v in range(1, 5)}
    files.update({f"lib/lib-2.{v}.zip": _zip(v, 2) for v in range(1, 5)})
    files.update({f"docs/{c}.txt": noise(3000, 500 + i) for i, c in enumerate("ab")})
    source = f"{s3.bucket}-src"
    storage = s3.storage()
    storage.create_bucket(source)
    for key, data in files.items():
        storage.put(source, "m/" + key, data, size=len(data))
    workdir = tmp_path / "work"
    workdir.mkdir()

    def prefix(i: int) -> str:
        return f"mig/k{i}/"

    def attempt(i: int) -> Command:
        args = ["migrate", f"s3://{source}/m/", s3.url(prefix(i)), "--no-preserve-prefix", "--yes"]
        return Command(s3, args, workdir)

    def after_kill(i: int, where: str) -> None:
        check_bucket(s3, workdir, prefix(i), {k: {v, None} for k, v in files.items()}, where)

    def after_rerun(i: int, where: str) -> None:
        check_done(s3, workdir, prefix(i), files, where)

    try:
        exercise(Scenario("migrate", attempt, after_kill, after_rerun), kills=3)
    finally:
        _cli.remove_bucket(storage, source)


# --- rm -r ---------------------------------------------------------------------------------


def test_rm_recursive_killed(s3: Any, tmp_path: Path) -> None:
    """``rm -r`` (excluding one deltaspace and one file) killed anywhere: each key it deletes is
    whole or gone, what it excludes is untouched, no delta loses its reference; a re-run
    removes the rest and leaves no reference behind in a deltaspace it emptied (one whose last
    delta a killed run deleted before its reference: no listing shows it any more)."""
    files = tree()
    kept = {k for k in files if k.startswith("lib/") or k == "README.txt"}
    workdir = tmp_path / "work"
    workdir.mkdir()

    def prefix(i: int) -> str:
        return f"rmr/k{i}/"

    def attempt(i: int) -> Command:
        seed_bucket(s3, prefix(i), files)
        args = ["rm", "-r", s3.url(prefix(i)), "--exclude", "lib/*", "--exclude", "README.txt"]
        return Command(s3, args, workdir)

    def after_kill(i: int, where: str) -> None:
        allowed = {k: {v} if k in kept else {v, None} for k, v in files.items()}
        check_bucket(s3, workdir, prefix(i), allowed, where)

    def after_rerun(i: int, where: str) -> None:
        check_done(s3, workdir, prefix(i), {k: files[k] for k in kept}, where)

    exercise(Scenario("rm -r", attempt, after_kill, after_rerun), kills=4)


# --- between two S3 locations -------------------------------------------------------------


def test_cp_recursive_s3_to_s3_killed(
    s3: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """``cp -r s3://other-bucket/ s3://bucket/prefix/`` killed anywhere (every object rebuilt
    from the source's deltaspaces and stored again against the destination's): only whole
    objects at the destination, the source untouched; a re-run completes the copy."""
    source = make_target("seaweedfs", tmp_path / "source", request)
    files = tree()
    seed_bucket(source, "tree/", files)
    workdir = tmp_path / "work"
    workdir.mkdir()

    def prefix(i: int) -> str:
        return f"s2s/k{i}/"

    def attempt(i: int) -> Command:
        return Command(s3, ["cp", "-r", source.url("tree/"), s3.url(prefix(i))], workdir)

    def after_kill(i: int, where: str) -> None:
        check_bucket(s3, workdir, prefix(i), {k: {v, None} for k, v in files.items()}, where)
        check_bucket(source, workdir, "tree/", {k: {v} for k, v in files.items()}, where)

    def after_rerun(i: int, where: str) -> None:
        check_done(s3, workdir, prefix(i), files, where)

    try:
        exercise(Scenario("cp -r s3 to s3", attempt, after_kill, after_rerun), kills=4)
        check_done(source, workdir, "tree/", files, "the source after every run")
    finally:
        _cli.drop_target(source)


def test_sync_s3_to_s3_delete_killed(s3: Any, tmp_path: Path) -> None:
    """``sync s3://.../src/ s3://.../dst/ --delete`` in one bucket killed anywhere: unchanged
    objects stay; a changed one is the old or the new version; a new one is whole or absent;
    a deleted one is whole or gone; the source is untouched; a re-run makes the destination
    the source, and the emptied deltaspace keeps no reference."""
    before, wanted, _unchanged = sync_up_states()
    seed_bucket(s3, "src/", wanted)
    workdir = tmp_path / "work"
    workdir.mkdir()

    def prefix(i: int) -> str:
        return f"s2sync/k{i}/"

    def attempt(i: int) -> Command:
        # Seeded after the source: an unchanged object is newer there, and not copied.
        seed_bucket(s3, prefix(i), before)
        return Command(s3, ["sync", s3.url("src/"), s3.url(prefix(i)), "--delete"], workdir)

    def after_kill(i: int, where: str) -> None:
        allowed: dict[str, set[bytes | None]] = {}
        for key in set(before) | set(wanted):
            allowed[key] = {before.get(key), wanted.get(key)}
        check_bucket(s3, workdir, prefix(i), allowed, where)
        check_bucket(s3, workdir, "src/", {k: {v} for k, v in wanted.items()}, where)

    def after_rerun(i: int, where: str) -> None:
        check_done(s3, workdir, prefix(i), wanted, where)

    exercise(Scenario("sync s3 to s3 --delete", attempt, after_kill, after_rerun), kills=4)


# --- a program using the library ------------------------------------------------------------

#: A boto3-style program on ``create_client()``: uploads every file under a folder with
#: ``upload_file``, in order, then removes the keys listed in a file with ``delete_objects``
#: (in batches of 3). Its requests are logged as ``--debug`` logs them.
_LIBRARY = """
import logging, sys
from pathlib import Path
handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(logging.Formatter("deltaglider: %(levelname)s: %(message)s"))
logger = logging.getLogger("deltaglider")
logger.addHandler(handler)
logger.setLevel(logging.DEBUG)
from deltaglider import create_client
root, bucket, prefix, gone = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
client = create_client()
for path in sorted(p for p in root.rglob("*") if p.is_file()):
    client.upload_file(str(path), bucket, prefix + path.relative_to(root).as_posix())
keys = Path(gone).read_text().split()
for i in range(0, len(keys), 3):
    batch = [{"Key": prefix + k} for k in keys[i : i + 3]]
    answer = client.delete_objects(Bucket=bucket, Delete={"Objects": batch})
    assert not answer.get("Errors"), answer
"""


def test_library_program_killed(s3: Any, tmp_path: Path) -> None:
    """A program using ``create_client()`` (``upload_file`` of a folder, then
    ``delete_objects`` of what it no longer has, one deltaspace emptied) killed anywhere, and
    killed among its deletes: the same guarantees as ``sync --delete``; run again, it completes
    the work, and the emptied deltaspace keeps no reference (a delete of a key deleted already
    removes a reference its deltaspace no longer needs)."""
    before, local, _unchanged = sync_up_states()
    workdir = tmp_path / "work"
    write_tree(workdir / "local", local)
    (workdir / "gone.txt").write_text("\n".join(sorted(set(before) - set(local))))

    def scenario(name: str) -> Scenario:
        def prefix(i: int) -> str:
            return f"lib/{name}/k{i}/"

        def attempt(i: int) -> Command:
            seed_bucket(s3, prefix(i), before)
            args = ["local", s3.bucket, prefix(i), "gone.txt"]
            return Command(s3, args, workdir, script=_LIBRARY)

        def after_kill(i: int, where: str) -> None:
            allowed: dict[str, set[bytes | None]] = {}
            for key in set(before) | set(local):
                allowed[key] = {before.get(key), local.get(key)}
            check_bucket(s3, workdir, prefix(i), allowed, where)

        def after_rerun(i: int, where: str) -> None:
            check_done(s3, workdir, prefix(i), local, where)

        return Scenario(f"library program ({name})", attempt, after_kill, after_rerun)

    exercise(scenario("anywhere"), kills=3)
    exercise(scenario("deleting"), kills=3, focus=(r"^deltaglider: DEBUG: delete s3://", None))
    # Between the delete of the emptied deltaspace's first delta and that of its reference.
    gone = (r"delete s3://\S+/gone/g-", r"delete s3://\S+/gone/reference\.bin")
    exercise(scenario("emptying"), kills=3, focus=gone)
