"""A fault-injecting HTTP/1.1 proxy for tests, on 127.0.0.1 only.

It sits between a client (boto3) and a real S3 server and forwards requests one by one on
keep-alive connections, parsing just enough HTTP/1.1 to find where each message ends (request
bodies framed by Content-Length or chunked; responses by Content-Length, chunked, or the end of
the connection). A request that matches a :class:`Rule` gets that rule's fault instead of, or on
top of, the normal exchange:

- ``reset``: the client connection is reset (RST), before the request reaches the server
  (``after=False``) or after the server has handled it (``after=True``: the change is made, the
  answer lost);
- ``stall``: the answer is held for a while, then sent (a client with a shorter read timeout
  gives up first);
- ``delay``: the request is held for a while before it is forwarded;
- ``truncate``: the answer's headers and the first N bytes of its body, then FIN;
- ``cut_headers``: the answer up to a point inside its headers, then FIN (the point is a byte
  count or a header name to stop before). http.client treats the end of the connection as the
  end of the headers, so a client can see a complete-looking answer with some headers missing
  and an empty body;
- ``error``: an S3 XML error answer (500 InternalError, 503 SlowDown...) made by the proxy, the
  server never sees the request.

What botocore sends with deltaglider's S3Storage settings over http (checksums only when
required): bodies framed by Content-Length and signed (``x-amz-content-sha256`` is the body's
hash), with ``Expect: 100-continue`` on uploads, which the proxy answers itself before reading
the body; no aws-chunked or chunked encoding (chunked request bodies are still forwarded).

Rules fire on the ``nth`` matching request (counted per rule) and the ``times - 1`` after it.
Every request is recorded (method, target, status, fault) so tests can check that a fault fired.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Fault", "FaultProxy", "Record", "Rule"]

_MAX_LINE = 64 << 10


@dataclass(frozen=True)
class Fault:
    """What to do to a matching exchange (see the module docstring)."""

    kind: str
    after: bool = False  # reset: after the server handled the request
    seconds: float = 0.0  # stall, delay
    body_bytes: int = 0  # truncate: body bytes sent before the FIN
    cut: int | str = 0  # cut_headers: byte offset in the header block, or a header name
    status: int = 500  # error
    code: str = "InternalError"  # error

    def __str__(self) -> str:
        detail = {
            "reset": "after" if self.after else "before",
            "stall": f"{self.seconds:g}s",
            "delay": f"{self.seconds:g}s",
            "truncate": f"{self.body_bytes}B",
            "cut_headers": str(self.cut),
            "error": f"{self.status}-{self.code}",
        }.get(self.kind, "")
        return f"{self.kind}-{detail}" if detail else self.kind

    # Constructors, so a test reads like the fault it injects.
    @classmethod
    def reset(cls, *, after: bool = False) -> Fault:
        return cls("reset", after=after)

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        return cls("stall", seconds=seconds)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls("delay", seconds=seconds)

    @classmethod
    def truncate(cls, body_bytes: int) -> Fault:
        return cls("truncate", body_bytes=body_bytes)

    @classmethod
    def cut_headers(cls, cut: int | str) -> Fault:
        return cls("cut_headers", cut=cut)

    @classmethod
    def error(cls, status: int = 500, code: str = "InternalError") -> Fault:
        return cls("error", status=status, code=code)

    @classmethod
    def slowdown(cls) -> Fault:
        return cls("error", status=503, code="SlowDown")


@dataclass
class Rule:
    """Applies ``fault`` to requests with this method whose decoded path (``/bucket/key``,
    without the query) matches ``path`` (a regex searched in it, or a predicate), and whose
    query matches ``query`` (a regex searched in the raw query string)."""

    fault: Fault
    method: str | None = None
    path: str | Callable[[str], bool] | None = None
    query: str | None = None
    nth: int = 1
    times: int = 1
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str, query: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.query is not None and not re.search(self.query, query):
            return False
        if self.path is None:
            return True
        if callable(self.path):
            return self.path(path)
        return re.search(self.path, path) is not None


@dataclass
class Record:
    method: str
    path: str
    query: str
    status: int | None = None
    fault: str | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    response_head: bytes = b""


class _Closed(Exception):
    """The peer closed the connection between messages."""


class _Conn:
    """A socket with a read buffer, for line- and length-framed reads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        self.buf += data
        return True

    def readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > _MAX_LINE:
                raise ValueError("line too long")
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("connection closed inside a message")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_to_end(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data


def _read_head(conn: _Conn) -> tuple[bytes, list[tuple[str, str]]]:
    """A message's start line and header lines (raw), and its headers parsed."""
    first = conn.readline()
    while first in (b"\r\n", b"\n"):  # tolerated between messages
        first = conn.readline()
    if not first:
        raise _Closed
    raw = bytearray(first)
    headers: list[tuple[str, str]] = []
    while True:
        line = conn.readline()
        if not line:
            raise ConnectionError("connection closed inside headers")
        raw += line
        if line in (b"\r\n", b"\n"):
            return bytes(raw), headers
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip().lower(), value.strip()))


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k == name:
            return v
    return None


def _read_chunked(conn: _Conn) -> bytes:
    """A chunked body, raw (chunk sizes, data, trailers), as it came."""
    raw = bytearray()
    while True:
        line = conn.readline()
        if not line:
            raise ConnectionError("connection closed inside a chunked body")
        raw += line
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, up to the blank line
                trailer = conn.readline()
                raw += trailer
                if trailer in (b"\r\n", b"\n", b""):
                    return bytes(raw)
        raw += conn.read(size + 2)


def _read_body(conn: _Conn, headers: list[tuple[str, str]], *, to_end: bool) -> bytes:
    te = (_header(headers, "transfer-encoding") or "").lower()
    if "chunked" in te:
        return _read_chunked(conn)
    length = _header(headers, "content-length")
    if length is not None:
        return conn.read(int(length))
    return conn.read_to_end() if to_end else b""


def _reset(sock: socket.socket) -> None:
    """Closes with RST instead of FIN (SO_LINGER with a zero timeout)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _finish(sock: socket.socket) -> None:
    """Closes with FIN once everything sent has been sent."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    # Let the client read what was sent before the socket goes (a close with unread input
    # would turn into an RST).
    sock.settimeout(2)
    try:
        while sock.recv(1 << 16):
            pass
    except OSError:
        pass
    sock.close()


def error_response(status: int, code: str, message: str = "injected by the fault proxy") -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>faultproxy</RequestId></Error>"
    ).encode()
    reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    ).encode()
    return head + body


class FaultProxy:
    """A proxy on 127.0.0.1 in front of ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str) -> None:
        url = urllib.parse.urlsplit(upstream)
        if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError("the fault proxy forwards to a local http server only")
        self._upstream = (url.hostname, url.port or 80)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.rules: list[Rule] = []
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="faultproxy", daemon=True)
        self._thread.start()

    # --- control -----------------------------------------------------------------------------

    def add(
        self,
        fault: Fault,
        *,
        method: str | None = None,
        path: str | Callable[[str], bool] | None = None,
        query: str | None = None,
        nth: int = 1,
        times: int = 1,
    ) -> Rule:
        """Adds a rule (see :class:`Rule`)."""
        rule = Rule(fault, method=method, path=path, query=query, nth=nth, times=times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.records.clear()

    def faulted(self) -> list[Record]:
        with self._lock:
            return [r for r in self.records if r.fault]

    def close(self) -> None:
        self._stopped.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            socks = list(self._sockets)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- serving -----------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.add(client)
            threading.Thread(
                target=self._serve, args=(client,), name="faultproxy-conn", daemon=True
            ).start()

    def _choose(self, method: str, path: str, query: str) -> Fault | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, query):
                    rule.seen += 1
                    if rule.nth <= rule.seen < rule.nth + rule.times:
                        rule.fired += 1
                        return rule.fault
        return None

    def _connect(self) -> _Conn:
        sock = socket.create_connection(self._upstream, timeout=30)
        with self._lock:
            self._sockets.add(sock)
        return _Conn(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _serve(self, client_sock: socket.socket) -> None:
        client = _Conn(client_sock)
        upstream: _Conn | None = None
        try:
            while not self._stopped.is_set():
                try:
                    head, headers = _read_head(client)
                except (_Closed, OSError, ConnectionError, ValueError):
                    break
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                method, target, _ = request_line.split(" ", 2)
                split = urllib.parse.urlsplit(target)
                path = urllib.parse.unquote(split.path)
                record = Record(method, path, split.query, request_headers=dict(headers))
                with self._lock:
                    self.records.append(record)
                # Expect: 100-continue is answered here; the server gets the whole request.
                if (_header(headers, "expect") or "").lower() == "100-continue":
                    client_sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    lines = head.split(b"\r\n")
                    head = b"\r\n".join(ln for ln in lines if not ln.lower().startswith(b"expect:"))
                body = _read_body(client, headers, to_end=False)
                fault = self._choose(method, path, split.query)
                record.fault = str(fault) if fault else None
                if fault is not None and fault.kind == "error":
                    record.status = fault.status
                    client_sock.sendall(error_response(fault.status, fault.code))
                    continue
                if fault is not None and fault.kind == "reset" and not fault.after:
                    _reset(client_sock)
                    return
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.seconds)
                if upstream is None:
                    upstream = self._connect()
                try:
                    upstream.sock.sendall(head + body)
                    rhead, rheaders = _read_head(upstream)
                    while rhead.split(b" ", 2)[1].startswith(b"1"):  # interim answers
                        rhead, rheaders = _read_head(upstream)
                    status = int(rhead.split(b" ", 2)[1])
                    no_body = method == "HEAD" or status in (204, 304)
                    rbody = b"" if no_body else _read_body(upstream, rheaders, to_end=True)
                except (OSError, ConnectionError, _Closed):
                    _reset(client_sock)
                    return
                record.status = status
                record.response_head = rhead
                close_delimited = (
                    not no_body
                    and _header(rheaders, "content-length") is None
                    and "chunked" not in (_header(rheaders, "transfer-encoding") or "")
                )
                says_close = (_header(rheaders, "connection") or "").lower() == "close"
                upstream_closes = says_close or close_delimited
                if upstream_closes:
                    self._drop(upstream.sock)
                    upstream.sock.close()
                    upstream = None
                if fault is None or fault.kind == "delay":
                    client_sock.sendall(rhead + rbody)
                    if upstream_closes:
                        _finish(client_sock)
                        return
                    continue
                if fault.kind == "reset":  # after the server handled it
                    _reset(client_sock)
                    return
                if fault.kind == "stall":
                    time.sleep(fault.seconds)
                    try:
                        client_sock.sendall(rhead + rbody)
                    except OSError:
                        return
                    continue
                if fault.kind == "truncate":
                    client_sock.sendall(rhead + rbody[: fault.body_bytes])
                    _finish(client_sock)
                    return
                if fault.kind == "cut_headers":
                    client_sock.sendall(rhead[: _cut_at(rhead, fault.cut)])
                    _finish(client_sock)
                    return
                raise ValueError(f"unknown fault {fault.kind}")
        except OSError:
            pass
        finally:
            for conn in (client, upstream):
                if conn is not None:
                    self._drop(conn.sock)
                    try:
                        conn.sock.close()
                    except OSError:
                        pass


def _cut_at(head: bytes, cut: int | str) -> int:
    """Where to cut a response's header block: a byte offset (never its blank line), or the
    start of the first header whose name starts with ``cut`` (case-insensitive); if there is
    none, right before the blank line that ends the headers."""
    end = len(head) - 2  # the final CRLF stays unsent: the headers never end
    if isinstance(cut, int):
        return max(0, min(cut, end))
    at = head.lower().find(b"\r\n" + cut.lower().encode())
    return at + 2 if at >= 0 else end
