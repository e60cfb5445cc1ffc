"""Bulk HEAD requests for listings that show logical sizes.

A logical listing needs one HEAD per delta (S3 listings carry no metadata). Through boto3 a
HEAD costs about a millisecond of CPU (its request pipeline, not the network), so 5,000 deltas
take five seconds where ``aws s3 ls`` lists them in under one. Here a HEAD is a SigV4-signed
request written on a plain keep-alive ``http.client`` connection (one per thread): a fifth of the
cost.

It is only an accelerator. It is used where its assumptions hold (SigV4, no proxy, credentials
from a boto3 session) and only once a first HEAD per bucket has given the same answer as boto3's.
Anything but a 200 or a 404 (a redirect, an error, a broken connection) is answered by the
regular boto3 request, with its retries and its error translation.

:class:`FastPath` is that choice for one store: it builds the fast path on first use and
remembers, per bucket, whether its first HEAD agreed with boto3's.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from .._io import http_date
from .base import ObjectInfo

__all__ = ["FALLBACK", "FastHead", "FastPath"]

#: Returned when the fast path cannot answer: ask boto3.
FALLBACK: Final = object()

_EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
_MAX_HEADER_BYTES: Final = 64 << 10
_SIGNED: Final = "host;x-amz-content-sha256;x-amz-date"
_SIGNED_TOKEN: Final = "host;x-amz-content-sha256;x-amz-date;x-amz-security-token"


class FastHead:
    """HEADs of one store's objects, signed here and sent on thread-local connections."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: Any,
        *,
        verify: bool | str,
        timeout: float,
    ) -> None:
        url = urllib.parse.urlsplit(endpoint_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"unsupported endpoint {endpoint_url!r}")
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port
        self._netloc = url.netloc
        self._base = url.path.rstrip("/")
        self._region = region
        self._credentials = credentials
        self._timeout = timeout
        self._context: ssl.SSLContext | None = None
        if self._https:
            if verify is False:
                self._context = ssl._create_unverified_context()
            else:
                from botocore.httpsession import get_cert_path

                cafile = verify if isinstance(verify, str) else get_cert_path(True)
                self._context = ssl.create_default_context(cafile=cafile)
        self._local = threading.local()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._keys: tuple[str, bytes] | None = None
        self._creds: tuple[float, Any] | None = None

    @classmethod
    def for_client(cls, client: Any, session: Any, verify: bool | str) -> FastHead | None:
        """The fast path for a boto3 client made from ``session``, or None if it does not
        apply (another signature version, a proxy, no credentials)."""
        config = client.meta.config
        if config.signature_version not in (None, "s3v4", "v4") or config.proxies:
            return None
        endpoint = client.meta.endpoint_url
        host = urllib.parse.urlsplit(endpoint).hostname or ""
        if urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
            return None
        credentials = session.get_credentials() if session is not None else None
        if credentials is None:
            return None
        try:
            return cls(
                endpoint,
                client.meta.region_name or "us-east-1",
                credentials,
                verify=verify,
                timeout=float(config.read_timeout or 60),
            )
        except (ValueError, OSError, ssl.SSLError):
            return None

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            sock.close()

    def _signing_key(self, day: str, secret: str) -> bytes:
        keys = self._keys
        tag = day + "\0" + secret
        if keys is not None and keys[0] == tag:
            return keys[1]
        k = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
        for part in (self._region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        self._keys = (tag, k)
        return k

    def _frozen(self) -> Any:
        """The credentials, looked at most once a second (refreshable ones refresh minutes
        ahead of expiry)."""
        now = time.monotonic()
        cached = self._creds
        if cached is None or now - cached[0] > 1.0:
            cached = self._creds = (now, self._credentials.get_frozen_credentials())
        return cached[1]

    def _headers(self, path: str) -> dict[str, str]:
        creds = self._frozen()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        day = amz_date[:8]
        headers = {
            "host": self._netloc,
            "x-amz-content-sha256": _EMPTY_SHA256,
            "x-amz-date": amz_date,
        }
        signed = _SIGNED
        if creds.token:
            headers["x-amz-security-token"] = creds.token
            signed = _SIGNED_TOKEN
        canonical_headers = "".join(f"{name}:{headers[name]}\n" for name in signed.split(";"))
        canonical = f"HEAD\n{path}\n\n{canonical_headers}\n{signed}\n{_EMPTY_SHA256}"
        scope = f"{day}/{self._region}/s3/aws4_request"
        to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
            + hashlib.sha256(canonical.encode()).hexdigest()
        )
        signature = hmac.new(
            self._signing_key(day, creds.secret_key), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return headers

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        with self._lock:
            self._conns.append(sock)
        return sock

    def forget_connection(self) -> None:
        """Closes this thread's connection, if it has one."""
        self._drop_connection()

    def _drop_connection(self) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            sock.close()
            self._local.sock = None
            with self._lock:  # not kept for close(): a long run would pile them up
                if sock in self._conns:
                    self._conns.remove(sock)

    def _exchange(self, request: bytes) -> tuple[int, dict[str, str]] | None:
        """Sends a HEAD request and reads the response headers; None if the connection
        failed. A kept-alive connection that the server closed meanwhile is retried once on
        a new one."""
        for _ in range(2):
            sock: socket.socket | None = getattr(self._local, "sock", None)
            reused = sock is not None
            raw = b""
            try:
                if sock is None:
                    sock = self._local.sock = self._connect()
                sock.sendall(request)
                while b"\r\n\r\n" not in raw:
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionResetError("closed by the server")
                    raw += data
                    if len(raw) > _MAX_HEADER_BYTES:
                        raise ValueError("response headers too large")
            except (OSError, ValueError):
                self._drop_connection()
                if reused and not raw:
                    continue  # a stale kept-alive connection: once more on a new one
                return None
            head, _, rest = raw.partition(b"\r\n\r\n")
            parsed = _parse_head(head)
            if parsed is None or rest:  # a HEAD response has no body: anything more is wrong
                self._drop_connection()
                return None
            status, headers, keep = parsed
            if not keep:
                self._drop_connection()
            return status, headers
        return None

    def head(self, bucket: str, key: str) -> ObjectInfo | object | None:
        """The object's info, None if there is no such object, or FALLBACK."""
        try:
            path = (
                self._base
                + "/"
                + urllib.parse.quote(bucket, safe="")
                + "/"
                + urllib.parse.quote(key, safe="/~")
            )
            headers = self._headers(path)
            request = (
                f"HEAD {path} HTTP/1.1\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                + "\r\n"
            ).encode("ascii")
        except (UnicodeError, ValueError):
            return FALLBACK
        answer = self._exchange(request)
        if answer is None:
            return FALLBACK
        status, response = answer
        if status == 404:
            return None
        if status != 200:
            return FALLBACK
        return _info(key, response)


def _parse_head(head: bytes) -> tuple[int, dict[str, str], bool] | None:
    """Status, headers (lower-case names) and whether the connection stays open; None if
    this is not an HTTP/1.x response."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or not code.isdigit():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name[0] in " \t":
            return None  # folded or malformed
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    return int(code), headers, keep


def _info(key: str, headers: dict[str, str]) -> ObjectInfo | object:
    try:
        size = int(headers.get("content-length", ""))
    except ValueError:
        return FALLBACK
    modified = _http_date(headers.get("last-modified", ""))
    metadata = {
        name[len("x-amz-meta-") :]: value
        for name, value in headers.items()
        if name.startswith("x-amz-meta-")
    }
    return ObjectInfo(
        key=key,
        size=size,
        etag=headers.get("etag", ""),
        last_modified=modified,
        metadata=metadata,
        content_type=headers.get("content-type"),
    )


@functools.lru_cache(maxsize=256)
def _http_date(raw: str) -> datetime | None:
    """Objects listed together share their dates' seconds: parsed once each."""
    return http_date(raw)


#: No answer was asked for the probe key (the fast path was decided before).
_UNASKED = object()


class FastPath:
    """Where one store's HEADs may take the fast path: built on first use (never where it
    does not apply), and trusted in a bucket once its first HEAD there agreed with boto3's."""

    def __init__(self, client: Any, session: Any, verify: bool | str) -> None:
        self._client = client
        self._session = session
        self._verify = verify
        self._fast: FastHead | bool | None = None  # False: does not apply to this store
        #: Per bucket: whether the fast path agreed with boto3 there.
        self.buckets: dict[str, bool] = {}
        self._lock = threading.Lock()

    def heads(
        self, bucket: str, probe_key: str, fallback: Callable[[str, str], ObjectInfo | None]
    ) -> Callable[[str], ObjectInfo | None]:
        """A HEAD of keys of ``bucket`` (None for a missing one): the fast path's answer where
        it gives one, else ``fallback(bucket, key)``'s (boto3's). The first call in a bucket
        compares the two on ``probe_key`` (boto3's answer is then the one for that key: it is
        not asked again)."""
        fast, probed = self._for(bucket, probe_key, fallback)

        def head(key: str) -> ObjectInfo | None:
            if key == probe_key and probed is not _UNASKED:
                return probed  # type: ignore[return-value]
            if fast is not None:
                answer = fast.head(bucket, key)
                if answer is None or isinstance(answer, ObjectInfo):
                    return answer
            return fallback(bucket, key)

        return head

    def _for(
        self, bucket: str, probe_key: str, fallback: Callable[[str, str], ObjectInfo | None]
    ) -> tuple[FastHead | None, object]:
        """The fast path if it applies in ``bucket``, and boto3's answer for ``probe_key`` when
        it was asked to decide that now (else ``_UNASKED``)."""
        with self._lock:
            if self._fast is None:
                self._fast = FastHead.for_client(self._client, self._session, self._verify) or False
            fast = self._fast
            known = self.buckets.get(bucket)
        if not isinstance(fast, FastHead) or known is False:
            return None, _UNASKED
        if known:
            return fast, _UNASKED
        answer = fast.head(bucket, probe_key)
        fast.forget_connection()  # the caller's thread may be short-lived: keep no socket for it
        expected = fallback(bucket, probe_key)
        agrees = answer is not FALLBACK and (
            (answer is None and expected is None)
            or (
                isinstance(answer, ObjectInfo)
                and expected is not None
                and (answer.size, answer.etag, answer.metadata)
                == (expected.size, expected.etag, expected.metadata)
            )
        )
        with self._lock:
            self.buckets[bucket] = agrees
        return (fast if agrees else None), expected

    def close(self) -> None:
        if isinstance(self._fast, FastHead):
            self._fast.close()
