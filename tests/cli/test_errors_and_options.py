"""What users get wrong and what goes wrong: one clear line, the right exit code, nothing
left behind. And the global options, before or after the command."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
from pathlib import Path

import click
import pytest
from cli_conftest import Dg, Target, drop_target, executable, make_target, ok, write
from test_cp import release

from deltaglider import __version__
from deltaglider.errors import ObjectNotFound


def test_usage_errors_exit_2(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", b"a")
    for args in (
        ("cp", "a.zip", "s3://"),
        ("cp", "a.zip", "b.zip"),  # local to local
        ("ls", "not a bucket"),
        ("cp", "missing.zip", target.url()),
        ("cp", "-r", "a.zip", target.url()),
        ("sync", "a.zip", target.url()),
        ("rm", "s3:///key"),
        ("cp", "a.zip", target.url(), "--bogus-flag"),
    ):
        result = dg(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert result.stderr.strip(), args
        assert "Traceback" not in result.stderr


def test_missing_bucket_and_object(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", release(1))
    up = dg("cp", "a.zip", f"s3://{target.bucket}-missing/")
    assert up.exit_code == 1
    assert up.stderr.strip().endswith("does not exist")
    assert len(up.stderr.strip().splitlines()) == 1
    ls = dg("ls", f"s3://{target.bucket}-missing/")
    assert ls.exit_code == 1 and "does not exist" in ls.stderr
    down = dg("cp", target.url("nothing.zip"), "x.zip")
    assert down.exit_code == 1 and "does not exist" in down.stderr
    assert not (workdir / "x.zip").exists()


def test_wrong_credentials(s3_target: Target, workdir: Path) -> None:
    dg = Dg(s3_target, workdir)
    result = dg("ls", s3_target.url(), env={"AWS_SECRET_ACCESS_KEY": "wrong"})
    assert result.exit_code == 1
    assert "access denied" in result.stderr and "secret key is wrong" in result.stderr
    assert "wrong" not in result.stderr.replace("secret key is wrong", "")  # no secret echoed
    # The read-only principal can list and download, not upload.
    server = s3_target.server
    assert server is not None and server.reader_key and server.reader_secret
    write(workdir / "a.zip", release(1))
    ok(dg("cp", "a.zip", s3_target.url("r/")))
    reader = {"AWS_ACCESS_KEY_ID": server.reader_key, "AWS_SECRET_ACCESS_KEY": server.reader_secret}
    assert ok(dg("ls", s3_target.url("r/"), env=reader)).stdout.endswith("a.zip\n")
    ok(dg("cp", s3_target.url("r/a.zip"), "back.zip", env=reader))
    denied = dg("cp", "a.zip", s3_target.url("r/b.zip"), env=reader)
    assert denied.exit_code == 1 and "access denied" in denied.stderr


def _without_file_override() -> None:
    """In the child, before exec: drop the capabilities that let root read any file, so that
    permissions apply to it as to anyone (PR_CAPBSET_DROP of CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_local_file_fails_alone(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "d/good.zip", release(1))
    write(workdir / "d/bad.zip", release(2))
    os.chmod(workdir / "d/bad.zip", 0o000)
    env = {**os.environ, **target.env}
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run(
        [executable(), "cp", "-r", "d", target.url("u/")],
        cwd=workdir,
        env=env,
        capture_output=True,
        timeout=120,
        preexec_fn=_without_file_override if os.geteuid() == 0 else None,
    )
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.decode()
    assert "upload failed: d/bad.zip" in err and "permission denied" in err
    assert "Traceback" not in err
    assert target.read("u/good.zip") == release(1)
    assert target.logical_keys("u/") == ["u/good.zip"]


def _corrupt_delta(target: Target, key: str) -> None:
    storage = target.storage()
    info, body = storage.get(target.bucket, key + ".delta")
    data = bytearray(body.read())
    body.close()
    data[len(data) // 2] ^= 0xFF
    storage.put(
        target.bucket, key + ".delta", bytes(data), metadata=info.metadata,
        content_type=info.content_type,
    )  # fmt: skip


def test_corrupt_delta_fails_cleanly_and_leaves_nothing(
    dg: Dg, target: Target, workdir: Path
) -> None:
    for v in (1, 2, 3):
        write(workdir / f"c/app-{v}.zip", release(v))
    ok(dg("cp", "-r", "c", target.url("c/")))
    victim = next(k for k in target.logical_keys("c/") if not k.endswith("app-2.zip"))
    _corrupt_delta(target, victim)
    single = dg("cp", target.url(victim), "out.zip")
    assert single.exit_code == 1
    assert victim in single.stderr and len(single.stderr.strip().splitlines()) == 1
    assert list(workdir.glob("out.zip*")) == [] and list(workdir.glob(".out.zip*")) == []
    # Recursive: the others arrive, the bad one does not, exit 1.
    many = dg("cp", "-r", target.url("c/"), "all")
    assert many.exit_code == 1
    got = sorted(p.name for p in (workdir / "all").iterdir())
    assert (
        len(got) == 2 and Path(victim).name not in got and not any(n.startswith(".") for n in got)
    )
    checked = dg("verify", "-r", target.url("c/"))
    assert checked.exit_code == 1 and f"FAILED: {target.url(victim)}" in checked.stderr


def test_global_options_before_or_after_the_command(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", release(1))
    # The environment names a dead endpoint (on 127.0.0.1): only the option reaches the store.
    runner_env = {"DG_ENDPOINT_URL": "http://127.0.0.1:9", "DG_MAX_ATTEMPTS": "1"}
    after = dg(
        "cp", "a.zip", target.url("g/"), "--endpoint-url", target.endpoint_url, env=runner_env
    )
    ok(after)
    before = dg("--endpoint-url", target.endpoint_url, "ls", target.url("g/"), env=runner_env)
    assert ok(before).stdout.endswith("a.zip\n")
    quiet = ok(dg("cp", "a.zip", target.url("g/b.zip"), "--quiet"))
    assert quiet.stdout == ""
    assert ok(dg("--version")).stdout.strip() == f"deltaglider {__version__}"
    dead = dg("ls", target.url("g/"), env=runner_env)
    assert dead.exit_code == 1 and dead.stdout == ""


def test_debug_and_log_level(dg: Dg, target: Target, workdir: Path) -> None:
    with pytest.raises(ObjectNotFound):
        dg("--debug", "cp", target.url("missing.zip"), "x")
    bad = dg("ls", target.url(), env={"DG_LOG_LEVEL": "LOUD"})
    assert bad.exit_code == 2 and "DG_LOG_LEVEL" in bad.stderr
    proc = dg.exe("cp", target.url("missing.zip"), "x", "--debug")
    assert proc.returncode == 1 and b"Traceback" in proc.stderr
    proc = dg.exe("cp", target.url("missing.zip"), "x")
    assert proc.returncode == 1 and b"Traceback" not in proc.stderr
    assert proc.stderr.decode().count("\n") == 1


def _corrupt_release_folder(dg: Dg, target: Target, workdir: Path) -> str:
    """Three releases under c/, one of whose deltas no longer decodes: its key."""
    for v in (1, 2, 3):
        write(workdir / f"c/app-{v}.zip", release(v))
    ok(dg("cp", "-r", "c", target.url("c/")))
    victim = next(k for k in target.logical_keys("c/") if not k.endswith("app-2.zip"))
    _corrupt_delta(target, victim)
    return victim


def test_debug_shows_the_traceback_of_each_failed_file(
    dg: Dg, target: Target, workdir: Path
) -> None:
    victim = _corrupt_release_folder(dg, target, workdir)
    for debug in ((), ("--debug",)):
        for args in (("cp", target.url(victim), "one.zip"), ("cp", "-r", target.url("c/"), "all")):
            out = dg(*debug, *args)
            assert out.exit_code == 1, (debug, args)
            assert ("Traceback (most recent call last)" in out.stderr) == bool(debug), out.stderr
            assert f"download failed: {target.url(victim)}" in out.stderr
        checked = dg(*debug, "verify", "-r", target.url("c/"))
        assert checked.exit_code == 1
        assert ("Traceback (most recent call last)" in checked.stderr) == bool(debug)
    # DG_DEBUG is --debug.
    env = dg("cp", target.url(victim), "env.zip", env={"DG_DEBUG": "1"})
    assert env.exit_code == 1 and "Traceback (most recent call last)" in env.stderr


def test_error_lines_name_the_object_once(dg: Dg, target: Target, workdir: Path) -> None:
    victim = _corrupt_release_folder(dg, target, workdir)
    url = target.url(victim)
    checked = dg("verify", "-r", target.url("c/"))
    (failed,) = [line for line in checked.stderr.splitlines() if line.startswith("FAILED:")]
    assert failed.startswith(f"FAILED: {url}: ") and failed.count(url) == 1, failed
    assert len(failed) > len(f"FAILED: {url}: ") + 5  # and the cause
    single = dg("cp", url, "out.zip")
    line = single.stderr.strip()
    assert line.startswith(f"download failed: {url} to ./out.zip: "), line
    assert line.count(url) == 1 and len(single.stderr.strip().splitlines()) == 1
    many = dg("cp", "-r", target.url("c/"), "all", "--json")
    records = [json.loads(line) for line in many.stdout.splitlines()]
    (record,) = [r for r in records if r.get("status") == "failed"]
    assert record["source"] == url and url not in record["error"]


def test_a_prefix_where_an_object_is_expected(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "r/app-1.zip", release(1))
    ok(dg("cp", "-r", "r", target.url("rel/")))
    url = target.url("rel/")
    for args in (
        ("cp", url, "x/"),
        ("cp", url, target.url("other/")),
        ("verify", url),
        ("rm", url),
    ):
        out = dg(*args)
        assert out.exit_code == 2, args
        assert out.stderr == f"deltaglider: error: {url} is a prefix; use --recursive\n", args
    # Without the slash: no such object, and the error says it is a prefix.
    bare = target.url("rel")
    for args in (("cp", bare, "x/"), ("cp", bare, target.url("other/"))):
        out = dg(*args)
        assert out.exit_code == 1, args
        assert out.stderr == (
            f"deltaglider: error: {bare} does not exist; it is a prefix: use --recursive\n"
        ), (args, out.stderr)
    missing = dg("cp", target.url("nothing"), "x/")
    assert missing.exit_code == 1 and "prefix" not in missing.stderr
    assert target.logical_keys("rel/") == ["rel/app-1.zip"]


@pytest.mark.slow
def test_a_missing_bucket_reads_the_same_everywhere(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", release(1))
    missing = f"{target.bucket}-missing"
    said = f"bucket {missing} does not exist"
    for args in (
        ("ls", f"s3://{missing}/"),
        ("ls", f"s3://{missing}/some/prefix"),
        ("cp", "-r", f"s3://{missing}/", "down"),
        ("stats", missing),
        ("sync", f"s3://{missing}/", "down"),
        ("sync", "down", f"s3://{missing}/"),
        ("analyze", f"s3://{missing}/"),
        ("migrate", f"s3://{missing}/", target.url("m/"), "--yes"),
        ("verify", "-r", f"s3://{missing}/"),
        ("rm", "-r", f"s3://{missing}/"),
        ("rb", f"s3://{missing}"),
    ):
        (workdir / "down").mkdir(exist_ok=True)
        out = dg(*args)
        assert out.exit_code == 1, args
        assert out.stderr == f"deltaglider: error: {said}\n", (args, out.stderr)
    up = dg("cp", "a.zip", f"s3://{missing}/")
    assert up.exit_code == 1
    assert up.stderr == f"upload failed: ./a.zip to s3://{missing}/a.zip: {said}\n"
    into = dg("migrate", target.url(), f"s3://{missing}/", "--yes")
    assert into.exit_code == 1 and into.stderr.startswith(f"deltaglider: error: {said} (")


def test_an_unwritable_destination_is_named_not_the_partial_file(
    dg: Dg, target: Target, workdir: Path
) -> None:
    write(workdir / "r/app-1.zip", release(1))
    ok(dg("cp", "-r", "r", target.url("r/")))
    (workdir / "ro").mkdir()
    os.chmod(workdir / "ro", 0o555)
    env = {**os.environ, **target.env}
    env.pop("AWS_PROFILE", None)
    for args in (("cp", target.url("r/app-1.zip"), "ro/"), ("cp", "-r", target.url("r/"), "ro")):
        proc = subprocess.run(
            [executable(), *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            timeout=120,
            preexec_fn=_without_file_override if os.geteuid() == 0 else None,
        )
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.decode() == (
            f"download failed: {target.url('r/app-1.zip')} to ro/app-1.zip: permission denied\n"
        )
    assert list((workdir / "ro").iterdir()) == []


def test_a_missing_local_store_is_an_error(
    tmp_path: Path, workdir: Path, request: pytest.FixtureRequest
) -> None:
    """A mistyped file:// endpoint is not a new store: one line, exit 1, nothing created;
    only mb creates the folder."""
    target = make_target("local", tmp_path, request)
    try:
        write(workdir / "a.zip", release(1))
        root = tmp_path / "typo" / "store"
        dg = Dg(target, workdir)
        env = {"DG_ENDPOINT_URL": root.as_uri()}
        said = f"deltaglider: error: the local store {root} does not exist"
        for args in (
            ("ls",),
            ("ls", target.url()),
            ("cp", "a.zip", target.url()),
            ("cp", target.url("a.zip"), "b.zip"),
            ("sync", ".", target.url()),
            ("rm", "-r", target.url()),
            ("stats", target.bucket),
            ("verify", target.url("a.zip")),
            ("analyze", target.url()),
            ("migrate", target.url("a/"), target.url("b/"), "--yes"),
            ("rb", target.url()),
        ):
            out = dg(*args, env=env)
            assert out.exit_code == 1, args
            assert out.stderr.startswith(said) and out.stderr.count("\n") == 1, out.stderr
            assert not (tmp_path / "typo").exists(), args
        # As --endpoint-url, the same.
        out = dg("--endpoint-url", root.as_uri(), "ls")
        assert out.exit_code == 1 and out.stderr.startswith(said)
        assert ok(dg("mb", "s3://first", env=env)).stdout == "make_bucket: first\n"
        assert (root / "first").is_dir()
        assert ok(dg("ls", env=env)).stdout.endswith(" first\n")
    finally:
        drop_target(target)


def test_bad_endpoint_urls_are_usage_errors(dg: Dg, target: Target) -> None:
    for url in ("ftp://example.com", "http://", "example.com:9000", "file://host/path"):
        for where in ("option", "environment"):
            if where == "option":
                out = dg("--endpoint-url", url, "ls")
            else:
                out = dg("ls", env={"DG_ENDPOINT_URL": url})
            assert out.exit_code == 2, (url, where, out.stderr)
            assert out.stderr.count("\n") == 1 and url in out.stderr, out.stderr
            assert out.stdout == ""


def test_aws_endpoint_url_selects_the_store(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", release(1))
    ok(dg("cp", "a.zip", target.url("e/")))
    dead = "http://127.0.0.1:9"
    for env in (
        {"AWS_ENDPOINT_URL": target.endpoint_url},
        # The S3-specific variable wins over the general one, as in the AWS CLI.
        {"AWS_ENDPOINT_URL_S3": target.endpoint_url, "AWS_ENDPOINT_URL": dead},
    ):
        listed = ok(dg("ls", target.url("e/"), env={"DG_ENDPOINT_URL": "", **env}))
        assert listed.stdout.endswith(" 200000 a.zip\n"), env
    gone = dg("ls", target.url("e/"), env={"DG_ENDPOINT_URL": "", "AWS_ENDPOINT_URL": dead,
                                           "DG_MAX_ATTEMPTS": "1"})  # fmt: skip
    assert gone.exit_code == 1 and gone.stdout == ""


def test_flags_from_the_environment(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "a.zip", release(1))
    for value, quiet in (("1", True), ("true", True), ("yes", True), ("0", False), ("", False)):
        out = ok(dg("cp", "a.zip", target.url("q/"), env={"DG_QUIET": value}))
        assert (out.stdout == "") == quiet, value
    # --debug: the error comes through with its traceback (here: raised out of CliRunner).
    with pytest.raises(ObjectNotFound):
        dg("cp", target.url("missing.zip"), "x", env={"DG_DEBUG": "1"})
    assert dg("cp", target.url("missing.zip"), "x", env={"DG_DEBUG": "0"}).exit_code == 1
    for name in ("DG_NO_VERIFY_SSL", "DG_DEBUG", "DG_QUIET", "DG_NO_PROGRESS"):
        bad = dg("ls", target.url(), env={name: "maybe"})
        assert bad.exit_code == 2 and name in bad.stderr, (name, bad.stderr)
    help_text = ok(dg("--help")).stdout
    for name in ("DG_NO_VERIFY_SSL", "DG_DEBUG", "DG_QUIET", "DG_NO_PROGRESS"):
        assert name in help_text


def test_settings_from_the_environment() -> None:
    """Each flag's variable reaches the settings (DG_NO_PROGRESS has no other visible effect
    off a terminal; test_progress checks it on one)."""
    from click.testing import CliRunner

    from deltaglider.cli import cli
    from deltaglider.cli._app import App

    seen: list[App] = []

    @cli.command("_settings_probe", hidden=True)
    @click.pass_obj
    def probe(app: App) -> None:
        seen.append(app)

    try:
        names = {
            "DG_NO_VERIFY_SSL": "no_verify_ssl",
            "DG_DEBUG": "debug",
            "DG_QUIET": "quiet",
            "DG_NO_PROGRESS": "no_progress",
        }
        for var, field in names.items():
            for value, expected in (("1", True), ("off", False)):
                result = CliRunner().invoke(cli, ["_settings_probe"], env={var: value})
                assert result.exit_code == 0, result.output
                assert getattr(seen[-1].settings, field) is expected, (var, value)
        # The option given wins over the variable.
        CliRunner().invoke(cli, ["--quiet", "_settings_probe"], env={"DG_QUIET": "0"})
        assert seen[-1].settings.quiet is True
    finally:
        cli.commands.pop("_settings_probe", None)


def test_log_level_from_the_environment(s3_target: Target, workdir: Path) -> None:
    dg = Dg(s3_target, workdir)
    for level, shown in (("debug", True), ("DEBUG", True), ("info", False), ("warning", False)):
        proc = dg.exe("ls", s3_target.url(), env={"DG_LOG_LEVEL": level})
        assert proc.returncode == 0, proc.stderr
        assert (b"deltaglider: DEBUG: " in proc.stderr) == shown, (level, proc.stderr)


def test_local_store_key_and_prefix_of_one_name(
    tmp_path: Path, workdir: Path, request: pytest.FixtureRequest
) -> None:
    """docs/cli.md's limitation of the file:// store: an object rel and objects under rel/
    cannot coexist; the second write fails with one line naming it once, the first stays."""
    target = make_target("local", tmp_path, request)
    try:
        dg = Dg(target, workdir)
        write(workdir / "rel", b"a")
        write(workdir / "x", b"b")
        ok(dg("cp", "rel", target.url("k/rel")))
        under = dg("cp", "x", target.url("k/rel/x"))
        assert under.exit_code == 1
        assert under.stderr == (
            f"upload failed: ./x to {target.url('k/rel/x')}: k/rel is an object, so it cannot "
            "also be a prefix in a local store\n"
        )
        ok(dg("cp", "x", target.url("p/rel/x")))
        over = dg("cp", "rel", target.url("p/rel"))
        assert over.exit_code == 1
        assert over.stderr == (
            f"upload failed: ./rel to {target.url('p/rel')}: p/rel is a prefix of other objects "
            "in this local store\n"
        )
        assert target.logical_keys() == ["k/rel", "p/rel/x"]
    finally:
        drop_target(target)
