"""Properties of the storage format: metadata in every spelling, names, keys."""

from __future__ import annotations

import string
from datetime import datetime, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from deltaglider import format as fmt
from deltaglider.errors import InvalidKey

names = st.text(min_size=1, max_size=80)
printable = st.text(alphabet=string.printable.strip() + " ", min_size=1, max_size=40)
sha = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
keys = (
    st.lists(
        st.text(min_size=0, max_size=12).filter(lambda c: "/" not in c), min_size=1, max_size=4
    )
    .map("/".join)
    .filter(lambda k: k and not k.endswith("/"))
)


@given(names)
def test_name_encoding_round_trips_and_is_ascii(name: str) -> None:
    encoded = fmt.encode_name(name, limit=None)
    assert encoded.isascii() and all(32 <= ord(c) < 127 for c in encoded)
    assert fmt.decode_name(encoded) == name


@given(printable)
def test_printable_ascii_names_are_stored_as_they_are(name: str) -> None:
    assume(not name.startswith("utf-8''"))
    assert fmt.encode_name(name) == name


@given(
    st.sampled_from(fmt.FIELDS),
    st.text(min_size=1, max_size=20),
    st.lists(st.sampled_from([0, 1, 2, 3]), min_size=1, max_size=4, unique=True),
    st.data(),
)
def test_legacy_spellings_first_non_empty_wins(
    field: str, value: str, present: list[int], data: st.DataObject
) -> None:
    aliases = fmt.ALIASES[field]
    meta: dict[str, str] = {}
    for i in present:
        meta[aliases[i]] = data.draw(st.sampled_from(["", value + str(i)]))
    expected = next((meta[aliases[i]] for i in range(4) if meta.get(aliases[i])), None)
    assert fmt.read_field(meta, field) == expected


@given(sha, st.integers(0, 2**40), st.sampled_from(["dg-", "dg_", "", "-"]))
def test_a_delta_is_read_in_any_spelling(digest: str, size: int, style: str) -> None:
    def name(f: str) -> str:
        if style == "dg-":
            return "dg-" + f.replace("_", "-")
        if style == "dg_":
            return "dg_" + f
        return f if style == "" else f.replace("_", "-")

    meta = {
        name("file_sha256"): digest,
        name("file_size"): str(size),
        name("ref_key"): "r/reference.bin",
        name("ref_sha256"): digest,
        name("original_name"): "app.zip",
        "build": "1",
    }
    parsed = fmt.parse_metadata({k.upper(): v for k, v in meta.items()}, "r/app.zip.delta")
    assert parsed.kind == "delta"
    assert parsed.file_sha256 == digest and parsed.file_size == size
    assert parsed.ref_key == "r/reference.bin" and parsed.original_name == "app.zip"
    # The fields, in whichever spelling, are not the caller's metadata; the rest is.
    assert parsed.user == {"build": "1"}


@given(keys)
def test_physical_keys_map_back_to_the_logical_key(key: str) -> None:
    assume(not key.startswith(fmt.RESERVED_PREFIX))
    delta = fmt.physical(fmt.delta_key(key))
    assert (delta.logical, delta.kind) == (key, "delta")
    direct = fmt.physical(fmt.direct_key(key))
    assert (direct.logical, direct.kind) == (key, "direct")
    assert fmt.delta_key(key) != fmt.direct_key(key)
    assert fmt.physical(fmt.reference_key(fmt.deltaspace(key))).kind == "reference"


@given(keys, st.sampled_from(["", ".direct", ".delta", ".direct.direct", ".delta.direct"]))
def test_every_direct_physical_key_is_read_under_its_listed_name(key: str, tail: str) -> None:
    """A direct object under any name (another tool's ``build.direct`` included) is listed under
    a logical key whose direct form is that very physical key: it can be read back."""
    physical_key = key + tail
    assume(not physical_key.startswith(fmt.RESERVED_PREFIX))
    found = fmt.physical(physical_key)
    if found.kind == "direct":
        assert fmt.direct_key(found.logical) == physical_key


def test_reserved_names_examples() -> None:
    assert fmt.direct_key("a/build.direct") == "a/build.direct"
    assert fmt.physical("a/build.direct") == fmt.Physical("a/build.direct", "direct")
    assert fmt.direct_key("a/notes.delta") == "a/notes.delta.direct"
    assert fmt.direct_key("a/notes.delta.direct") == "a/notes.delta.direct.direct"
    assert fmt.direct_key("a/reference.bin") == "a/reference.bin.direct"
    assert fmt.physical("a/reference.bin.direct") == fmt.Physical("a/reference.bin", "direct")
    assert fmt.physical("a/notes.delta.direct").logical == "a/notes.delta"


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_timestamps_round_trip(when: datetime) -> None:
    assert fmt.parse_time(fmt.format_time(when)) == when


def test_every_timestamp_form_the_original_wrote() -> None:
    for text in (
        "2026-11-24T21:05:54.849137Z",
        "2026-11-24T21:05:54.849137",
        "2026-11-24T21:05:54Z",
        "2026-11-24T21:05:54+00:00",
    ):
        parsed = fmt.parse_time(text)
        assert parsed is not None and parsed.tzinfo is not None
    assert fmt.parse_time("yesterday") is None


def test_malformed_values_read_as_absent() -> None:
    parsed = fmt.parse_metadata(
        {"dg-file-sha256": "xyz", "dg-file-size": "-5", "dg-tool": "t"}, "a.txt"
    )
    assert parsed.kind == "direct"
    assert parsed.file_sha256 is None and parsed.file_size is None
    assert fmt.parse_metadata({"content": "x"}, "a.txt").kind == "foreign"


def test_a_final_newline_is_never_taken_for_printable() -> None:
    """Names and metadata values ending in a newline (a regular expression's ``$`` matches
    before one) are encoded and refused, as any other control character is."""
    assert fmt.encode_name("v1.zip\n").startswith("utf-8''")
    assert fmt.decode_name(fmt.encode_name("v1.zip\n")) == "v1.zip\n"
    with pytest.raises(InvalidKey):
        fmt.check_user_metadata({"note": "line\n"})
    assert fmt.check_user_metadata({"note": "line"}) == {"note": "line"}
