"""Type stub of the private native binding (see _xdelta3.pyx); use deltaglider.codec."""

import sys
from typing import Final

from typing_extensions import Buffer, Self, disjoint_base

HARD_MAX_WINDOW: Final[int]
MAX_APPHEADER: Final[int]
SECONDARY_NONE: Final[int]
SECONDARY_DJW: Final[int]
SECONDARY_LZMA: Final[int]
SECONDARY_FGK: Final[int]

def file_header_length(data: Buffer) -> tuple[int, int]: ...
def scan_window_header(
    data: Buffer, offset: int, has_secondary: bool
) -> tuple[int, int, int, int]: ...
def scan_windows(data: Buffer, offset: int, has_secondary: bool) -> list[tuple[int, int, int]]: ...
def literal_window(target: Buffer) -> bytes: ...
def entropy_bits(data: Buffer) -> float: ...
def adler32(data: Buffer) -> int: ...
def copy_window(target: Buffer, source_offset: int) -> bytes: ...
def compose_window(target: Buffer, copies: list[tuple[int, int, int]]) -> bytes: ...

@disjoint_base
class EncoderCore:
    header: Final[bytes]
    window_size: Final[int]
    secondary: Final[int]
    index_bytes: Final[int]
    def __init__(
        self,
        source: Buffer,
        *,
        matcher: int | tuple[int, int, int, int, int, int, int],
        window_size: int,
        secondary: int = 0,
        level: int = 9,
        sprevsz: int = ...,
        iopt_size: int = ...,
        compress_data: bool = True,
    ) -> None: ...
    @property
    def source_size(self) -> int: ...
    def session(self) -> EncodeSession: ...

@disjoint_base
class EncodeSession:
    # Built by __cinit__: the arguments go to __new__ (an EncoderCore's session() makes one).
    def __new__(cls, core: EncoderCore) -> Self: ...
    def encode_window(self, target: Buffer, hint: int = 0) -> bytes: ...

@disjoint_base
class LocalEncoder:
    header: Final[bytes]
    window_size: Final[int]
    def __init__(
        self,
        source: Buffer,
        *,
        matcher: int | tuple[int, int, int, int, int, int, int],
        window_size: int,
        secondary: int = 0,
        level: int = 9,
        sprevsz: int = ...,
        iopt_size: int = ...,
        compress_data: bool = True,
    ) -> None: ...
    def encode_window(self, target: Buffer, lo: int, hi: int, hint: int = 0) -> bytes: ...

@disjoint_base
class LzmaSections:
    def __new__(cls, data_preset: int = 6, other_preset: int = 1) -> Self: ...
    def recode(self, window: Buffer, data_max_entropy: float = 7.9) -> bytes: ...

@disjoint_base
class DecodeSession:
    def __init__(self, source: Buffer, header: Buffer) -> None: ...
    def decode_windows(
        self, delta: Buffer, start: int, end: int, out: Buffer, out_offset: int, out_length: int
    ) -> None: ...

@disjoint_base
class OutputBuffer:
    def __new__(cls, size: int) -> Self: ...
    # The buffer protocol (writable until take()); Python exposes it as __buffer__ from 3.12.
    if sys.version_info >= (3, 12):
        def __buffer__(self, flags: int, /) -> memoryview: ...
    def take(self) -> bytes: ...

@disjoint_base
class AnchorIndex:
    anchor_bits: Final[int]
    anchors: Final[int]
    table_bytes: Final[int]
    source_size: Final[int]
    def __init__(
        self, source: Buffer, anchor_bits: int = 6, max_table_bytes: int = ..., build: bool = True
    ) -> None: ...
    def index_part(self, source: Buffer, part: int, parts: int) -> int: ...
    def matches(
        self, source: Buffer, target: Buffer, min_length: int = 64, base: int = 0
    ) -> list[tuple[int, int, int]]: ...
    def segment(
        self, target: Buffer, margin: int, min_gap: int
    ) -> list[tuple[int, int, bool, int]]: ...
