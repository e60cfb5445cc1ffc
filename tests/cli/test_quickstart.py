"""The README's quick start (``python -m deltaglider.quickstart``), on local files: the test
suite contacts nothing but 127.0.0.1, so PyPI's wheels are replaced by two generated
releases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cli_conftest import base_env, write
from test_cp import release


def test_quickstart_uploads_lists_downloads_and_verifies(tmp_path: Path) -> None:
    a = write(tmp_path / "app-1.0.zip", release(1))
    b = write(tmp_path / "app-1.1.zip", release(2))
    store = tmp_path / "store"
    env = {**os.environ, **base_env(tmp_path)}
    env.pop("DG_ENDPOINT_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "deltaglider.quickstart", "--files", str(a), str(b),
         "--package", "app", "--store", str(store)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"$ deltaglider cp {a} s3://releases/app/" in out
    assert "(new reference, 195.3 KiB)" in out
    assert "(delta " in out and "% of 195.3 KiB)" in out
    assert "Saved: " in out and "Total Objects: 2" in out
    # verify: the original DeltaGlider's JSON document on stdout, our line on stderr.
    assert '"valid": true' in out and '"message": "Integrity verified"' in out
    assert "ok: s3://releases/app/app-1.1.zip (delta, 200000 bytes" in proc.stderr
    assert out.rstrip().endswith("# app-1.1.zip: downloaded byte-exact")
    # The store is a plain folder holding the deltaglider layout.
    names = {p.name for p in (store / "releases" / "app").iterdir() if p.is_file()}
    assert {"app-1.0.zip.delta", "app-1.1.zip.delta", "reference.bin"} <= names
    # A missing file: one error, no traceback.
    bad = subprocess.run(
        [sys.executable, "-m", "deltaglider.quickstart", "--files", str(a), str(tmp_path / "no")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.strip() == f"error: {tmp_path / 'no'}: no such file"
