"""Cached JSON answers that revalidate and compress for free on a hit.

A cache entry (`pack`) holds, besides the JSON body, what a conditional or compressed answer needs, all
computed once when the entry is built: a validator (a digest of the body, answered as a weak `ETag`) and
the body deflated (when it is at least `MIN_GZIP` bytes). A hit then answers `If-None-Match` with a 304
and `Accept-Encoding: gzip` with stored bytes, without compressing or hashing anything.

The last byte of the body (its closing `}` or `]`) is kept out of the deflated part, which ends on a
byte boundary (a sync flush): the answer is completed per request by a *tail* written as an uncompressed
deflate block. The tail is the closing byte itself, or a longer ending such as a product's current stock
(`,"stock":{...}}`), which is how a detail whose stock changes every few seconds is still served from
its compressed cache entry. The gzip trailer's CRC continues from the stored CRC of the head.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

from starlette.requests import Request
from starlette.responses import Response

# Below this, gzip saves too little to be worth a client's decompression.
MIN_GZIP = 1024
_MAGIC = b"\x00R"
# magic, validator (16 hex digits), CRC-32 of the head, length of the body
_HEADER = struct.Struct(">2s16sII")
# Deflate, no name, no time, unknown OS (RFC 1952).
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def _deflated(body: bytes) -> bytes:
    """The body's head deflated, ending on a byte boundary; nothing for a body too small to gzip."""
    if len(body) < MIN_GZIP:
        return b""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(body[:-1]) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _validator(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=8).hexdigest().encode()


def pack(body: bytes) -> bytes:
    """The cache entry of a JSON `body`: its validator, the body, and its head deflated."""
    header = _HEADER.pack(_MAGIC, _validator(body), zlib.crc32(body[:-1]), len(body))
    return header + body + _deflated(body)


def accepts_gzip(header: str) -> bool:
    """Whether an `Accept-Encoding` header admits gzip (RFC 9110 12.5.3: `gzip`, or `*`, with q > 0)."""
    for part in header.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() not in ("gzip", "x-gzip", "*"):
            continue
        weight = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
        try:
            return float(weight) > 0
        except ValueError:
            return False
    return False


def matches(if_none_match: str, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 13.1.2 asks for GETs)."""
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))


class Representation:
    """A cache entry opened for answering."""

    __slots__ = ("_deflated", "body", "crc", "validator")

    def __init__(self, entry: bytes) -> None:
        self._deflated: bytes | None
        if entry.startswith(_MAGIC):
            _, validator, self.crc, length = _HEADER.unpack_from(entry)
            start = _HEADER.size
            self.body = entry[start : start + length]
            self._deflated = entry[start + length :]
        else:
            # A plain body (answered once, not from the cache): deflated only if a client asks for gzip.
            self.body, validator, self.crc = entry, _validator(entry), zlib.crc32(entry[:-1])
            self._deflated = None
        self.validator = validator.decode()

    @property
    def deflated(self) -> bytes:
        if self._deflated is None:
            self._deflated = _deflated(self.body)
        return self._deflated

    def etag(self, tail: bytes | None = None) -> str:
        """The answer's weak ETag: the body's validator, and the tail's CRC when it has its own tail."""
        if tail is None:
            return f'W/"{self.validator}"'
        return f'W/"{self.validator}-{zlib.crc32(tail):08x}"'

    def identity(self, tail: bytes | None = None) -> bytes:
        return self.body if tail is None else self.body[:-1] + tail

    def gzip(self, tail: bytes | None = None) -> bytes:
        """The answer gzipped: the stored deflated head, the tail as a final stored block, the trailer."""
        tail = self.body[-1:] if tail is None else tail
        assert len(tail) <= 0xFFFF, "a stored block holds at most 64 KiB"
        size = len(self.body) - 1 + len(tail)
        return b"".join(
            (
                _GZIP_HEADER,
                self.deflated,
                b"\x01",  # final block, stored (byte-aligned after the sync flush)
                struct.pack("<HH", len(tail), len(tail) ^ 0xFFFF),
                tail,
                struct.pack("<II", zlib.crc32(tail, self.crc), size & 0xFFFFFFFF),
            )
        )


class Prepared(Response):
    """A response whose header lines are built already: nothing to convert from a dict per request."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.status_code = status
        self.raw_headers = headers
        self.body = body
        self.background = None


_VARY = (b"vary", b"Accept-Encoding")
_GZIPPED = (b"content-encoding", b"gzip")
_JSON = (b"content-type", b"application/json")


def respond(
    method: str,
    if_none_match: str,
    accept_encoding: str,
    found: Representation,
    tail: bytes | None = None,
    status: int = 200,
) -> Prepared:
    """`found` (with `tail` in place of its last byte) as a request with these headers accepts it: 304
    when `if_none_match` is current, gzipped when it accepts gzip and the body is large enough."""
    etag = found.etag(tail)
    headers = [(b"etag", etag.encode()), _VARY]
    if method in ("GET", "HEAD") and matches(if_none_match, etag):
        return Prepared(304, headers)
    # Asked first: a plain body is deflated only for a client that takes gzip.
    if len(found.body) >= MIN_GZIP and accepts_gzip(accept_encoding):
        body = found.gzip(tail)
        headers.append(_GZIPPED)
    else:
        body = found.identity(tail)
    headers += ((b"content-length", b"%d" % len(body)), _JSON)
    return Prepared(status, headers, body)


def answer(request: Request, found: Representation, tail: bytes | None = None, status: int = 200) -> Response:
    """`respond` to `request`."""
    get = request.headers.get
    return respond(request.method, get("if-none-match", ""), get("accept-encoding", ""), found, tail, status)
