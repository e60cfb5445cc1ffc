"""The options not covered elsewhere: --profile and --region (seen through the region the
client ends up in), --no-verify-ssl (a TLS endpoint with a self-signed certificate in front
of SeaweedFS), --max-workers, --no-follow-symlinks, sync's --no-delta/--max-ratio, rm's
filters."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_conftest import Dg, Target, ok, write
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_cp import release

from deltaglider.cli import cli
from deltaglider.cli._app import App, settings_from


def _profile_files(tmp_path: Path, target: Target, region: str) -> dict[str, str | None]:
    """An AWS config with the profile ``dgp``; None unsets a variable."""
    assert target.server is not None
    (tmp_path / "aws-config").write_text(f"[profile dgp]\nregion = {region}\n")
    (tmp_path / "aws-credentials").write_text(
        f"[dgp]\naws_access_key_id = {target.server.access_key}\n"
        f"aws_secret_access_key = {target.server.secret_key}\n"
    )
    return {
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_DEFAULT_REGION": None,
    }


def _keys(target: Target) -> dict[str, str | None]:
    assert target.server is not None
    return {
        "AWS_ACCESS_KEY_ID": target.server.access_key,
        "AWS_SECRET_ACCESS_KEY": target.server.secret_key,
    }


def test_profile_and_region(s3_target: Target, tmp_path: Path, workdir: Path) -> None:
    dg = Dg(s3_target, workdir)
    env = _profile_files(tmp_path, s3_target, "eu-west-3")
    write(workdir / "a.zip", release(1))
    # Credentials come from the profile alone.
    ok(dg("--profile", "dgp", "cp", "a.zip", s3_target.url("p/"), env=env))
    assert s3_target.read("p/a.zip") == release(1)
    ok(dg("ls", s3_target.url("p/"), "--profile", "dgp", env=env))
    missing = dg("--profile", "nope", "ls", s3_target.url(), env=env)
    assert missing.exit_code in (1, 2) and "nope" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    # The region: the profile's, unless --region (or AWS_REGION) says otherwise.
    cases: list[tuple[list[str], dict[str, str | None], str]] = [
        (["--profile", "dgp"], env, "eu-west-3"),
        (["--profile", "dgp", "--region", "ap-south-1"], env, "ap-south-1"),
        ([], {**env, **_keys(s3_target), "AWS_REGION": "sa-east-1"}, "sa-east-1"),
    ]
    for args, environ, expected in cases:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in {**s3_target.env, **environ}.items():
                if value is None:
                    mp.delenv(name, raising=False)
                else:
                    mp.setenv(name, value)
            mp.delenv("AWS_PROFILE", raising=False)
            # The group parses the options and their environment variables as a run would.
            ctx = cli.make_context("deltaglider", [*args, "ls"])
            app = App(settings_from(ctx.params))
            try:
                client = app.storage.client  # type: ignore[attr-defined]
                assert client.meta.region_name == expected, args
                app.storage.head_bucket(s3_target.bucket)  # and it works
            finally:
                app.close()


# --- TLS -------------------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def tls_endpoint(s3_target: Target, tmp_path: Path) -> Iterator[str]:
    """https://127.0.0.1:<port> in front of the SeaweedFS server, self-signed."""
    assert s3_target.server is not None
    host, port = s3_target.server.endpoint_url.removeprefix("http://").split(":")
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                conn = context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()  # a client that refused the certificate
                continue
            upstream = socket.create_connection((host, int(port)))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


@pytest.mark.slow
def test_no_verify_ssl(s3_target: Target, tls_endpoint: str, workdir: Path) -> None:
    dg = Dg(s3_target, workdir)
    write(workdir / "a.zip", release(1))
    env = {"DG_ENDPOINT_URL": tls_endpoint, "DG_MAX_ATTEMPTS": "1"}
    refused = dg("cp", "a.zip", s3_target.url("t/"), env=env)
    assert refused.exit_code == 1 and "certificate" in refused.stderr.lower()
    assert s3_target.logical_keys("t/") == []
    ok(dg("cp", "a.zip", s3_target.url("t/"), "--no-verify-ssl", env=env))
    ok(dg("--no-verify-ssl", "cp", "a.zip", s3_target.url("t/b.zip"), env=env))
    # From the environment: DG_NO_VERIFY_SSL=1 is the flag, =0 is not.
    ok(dg("cp", "a.zip", s3_target.url("t/c.zip"), env={**env, "DG_NO_VERIFY_SSL": "1"}))
    off = dg("cp", "a.zip", s3_target.url("t/d.zip"), env={**env, "DG_NO_VERIFY_SSL": "0"})
    assert off.exit_code == 1 and "certificate" in off.stderr.lower()
    listed = ok(dg("ls", s3_target.url("t/"), "--no-verify-ssl", env=env)).stdout
    assert listed.splitlines()[0].split()[-2:] == ["200000", "a.zip"]  # logical size via TLS
    assert s3_target.read("t/b.zip") == release(1)
    assert s3_target.logical_keys("t/") == ["t/a.zip", "t/b.zip", "t/c.zip"]
    # The executable: no warning on every request once the user asked for it.
    proc = dg.exe("ls", s3_target.url("t/"), "--no-verify-ssl", env=env)  # type: ignore[arg-type]
    assert proc.returncode == 0 and proc.stderr == b""


# --- the rest -------------------------------------------------------------------------------


def test_max_workers(dg: Dg, target: Target, workdir: Path) -> None:
    for v in range(6):
        write(workdir / f"w/app-{v}.zip", release(v))
    for n in ("1", "3"):
        out = ok(dg("cp", "-r", "w", target.url(f"w{n}/"), "--max-workers", n, "--json"))
        assert out.stdout.count('"status": "ok"') == 6
    ok(dg("sync", "w", target.url("w4/"), env={"DG_MAX_WORKERS": "2"}))
    assert len(target.logical_keys("w4/")) == 6
    for bad in ("0", "x", "1000"):
        assert dg("cp", "-r", "w", target.url("w5/"), "--max-workers", bad).exit_code == 2
    assert dg("ls", target.url(), env={"DG_MAX_WORKERS": "zero"}).exit_code == 2


def test_no_follow_symlinks(dg: Dg, target: Target, workdir: Path) -> None:
    write(workdir / "real/a.zip", release(1))
    write(workdir / "elsewhere/b.zip", release(2))
    (workdir / "real/link.zip").symlink_to(workdir / "elsewhere/b.zip")
    (workdir / "real/linkdir").symlink_to(workdir / "elsewhere", target_is_directory=True)
    ok(dg("cp", "-r", "real", target.url("f/")))
    assert target.logical_keys("f/") == ["f/a.zip", "f/link.zip", "f/linkdir/b.zip"]
    ok(dg("cp", "-r", "real", target.url("n/"), "--no-follow-symlinks"))
    assert target.logical_keys("n/") == ["n/a.zip"]
    ok(dg("sync", "real", target.url("s/"), "--no-follow-symlinks"))
    assert target.logical_keys("s/") == ["s/a.zip"]


def test_sync_storage_options_and_rm_filters(dg: Dg, target: Target, workdir: Path) -> None:
    for v in range(3):
        write(workdir / f"s/app-{v}.zip", release(v))
    write(workdir / "s/notes.txt", b"notes")
    ok(dg("sync", "s", target.url("whole/"), "--no-delta"))
    assert not any(k.endswith(".delta") for k in target.physical_keys("whole/"))
    # A max ratio no delta can meet: every file but the reference stored whole.
    out = ok(dg("sync", "s", target.url("tight/"), "--max-ratio", "0.000001")).stdout
    # (the first file's zero-diff delta too: no reference is made)
    assert out.count("stored whole: its delta was over the max ratio") == 3
    assert "tight/reference.bin" not in target.physical_keys("tight/")
    ok(dg("sync", "s", target.url("d/")))
    assert sum(k.endswith(".delta") for k in target.physical_keys("d/")) == 3
    # rm with filters, in order; --dryrun first.
    dry = ok(dg("rm", "-r", target.url("d/"), "--exclude", "*", "--include", "app-1*", "--dryrun"))
    assert dry.stdout.splitlines() == [
        f"(dryrun) delete: {target.url('d/app-1.zip')}",
        "Would delete 1 object(s)",  # the original DeltaGlider's line
    ]
    done = ok(dg("rm", "-r", target.url("d/"), "--exclude", "*", "--include", "app-1*"))
    assert done.stdout.splitlines()[-1] == "Deleted 1 object(s)"
    assert target.logical_keys("d/") == ["d/app-0.zip", "d/app-2.zip", "d/notes.txt"]
    ok(dg("rm", "--recursive", target.url("d/"), "--exclude", "*.txt"))
    assert target.logical_keys("d/") == ["d/notes.txt"]
    assert "d/reference.bin" not in target.physical_keys("d/")  # gone with its last delta
    for v in range(3):
        assert target.read(f"tight/app-{v}.zip") == release(v)
