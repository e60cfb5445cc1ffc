"""The vendored xdelta3 is the pinned release, byte for byte as VENDORED.md records it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from deltaglider import codec

VENDOR = Path(__file__).resolve().parents[2] / "vendor" / "xdelta3"


def _recorded() -> dict[str, str]:
    text = (VENDOR / "VENDORED.md").read_text()
    return {name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M)}


def test_every_vendored_file_matches_its_recorded_sha256() -> None:
    recorded = _recorded()
    sources = sorted(p.name for p in VENDOR.iterdir() if p.name.startswith("xdelta3"))
    assert sorted(recorded) == sources
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_vendored_release_is_3_1_1() -> None:
    main = (VENDOR / "xdelta3-main.h").read_text()
    assert "Xdelta version 3.1.1," in main
    assert codec.XDELTA3_VERSION == "3.1.1"
    assert "3.1.1" in (VENDOR / "VENDORED.md").read_text().splitlines()[0]


def test_license_is_apache_2() -> None:
    text = (VENDOR / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
