"""Avatar uploads: the size limit enforced while reading, and the real image type read from the bytes.

Storage: the bytes live in PostgreSQL (`avatars.data`, bytea), keyed by user, with the SHA-256 of the
bytes as ETag. For a small deployment that is what one expects: no extra volume to mount, back up or
keep in step with the database, every replica of svc_user serves every avatar, and a replacement is
atomic with the profile's `updatedAt` and its event. Responses carry the ETag (revalidation is a 304
that never reads the bytes) and the profile's `avatarUrl` carries the version, so browsers and CDNs
cache each image for good.

Past one machine the bytes belong in object storage (S3, MinIO, GCS) under their SHA-256: `avatars` keeps
only user, type and digest, the upload writes the object before committing the row, and
`GET /api/users/{id}/avatar` answers with a redirect to the CDN URL of the digest; old objects are
collected by a periodic sweep of digests no row refers to. Clients see no change: they follow `avatarUrl`.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from starlette.requests import Request

from kit.errors import PayloadTooLarge, UnsupportedMediaType, invalid

MAX_BYTES = 2 * 1024 * 1024
# How much of a refused body is read and dropped so that the refusal reaches the caller (see `_read`).
DRAIN_LIMIT = 16 * 1024 * 1024
# Wider images buy nothing for an avatar and cost every client that decodes them.
MAX_SIDE = 4096
TYPES = ("image/png", "image/jpeg", "image/webp")
_DECLARED = frozenset({*TYPES, "image/jpg"})
NOT_AN_IMAGE = "The body is not a PNG, JPEG or WebP image"

_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (they carry the size); C4, C8 and CC share the range but are not frames.
_JPEG_FRAMES = frozenset({*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC})
# JPEG markers that stand alone, without a length: TEM and RST0..RST7.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


class Image(NamedTuple):
    content_type: str
    width: int
    height: int


class Malformed(ValueError):
    """The bytes start like a supported image but its header is broken."""


def _png(data: bytes) -> Image:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise Malformed("the PNG has no image header")
    width, height = struct.unpack(">II", data[16:24])
    return Image("image/png", width, height)


def _jpeg(data: bytes) -> Image:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _JPEG_STANDALONE:
            at += 2
            continue
        if marker in _JPEG_FRAMES and at + 9 <= len(data):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return Image("image/jpeg", width, height)
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            break
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if length < 2:
            break
        at += 2 + length
    raise Malformed("the JPEG has no frame header")


def _webp(data: bytes) -> Image:
    if len(data) < 30 or int.from_bytes(data[4:8], "little") + 8 > len(data):
        raise Malformed("the WebP file is truncated")
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return Image("image/webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return Image("image/webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        return Image("image/webp", width, int.from_bytes(data[27:30], "little") + 1)
    raise Malformed("the WebP file has no image header")


def sniff(data: bytes) -> Image | None:
    """The image `data` holds, judged by its bytes; None when it is no PNG, JPEG or WebP at all.

    Raises `Malformed` when the bytes start like one of them but the header that follows is broken.
    """
    if data.startswith(_PNG):
        return _png(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp(data)
    return None


async def _read(request: Request, limit: int) -> bytes | None:
    """The body when it is at most `limit` bytes, else None, without ever holding more than `limit`.

    An oversized body is still read to its end (and dropped), up to DRAIN_LIMIT: answering while the
    client is still sending makes the server close with unread data, the reset can destroy the answer
    in flight, and the caller (or the edge, as a 502) would never see the 413. nginx's lingering close
    does the same.
    """
    length = request.headers.get("content-length", "")
    declared = int(length) if length.isdigit() else None
    if declared is not None and declared > DRAIN_LIMIT:
        return None
    keep = declared is None or declared <= limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        # Counted while reading too: a chunked upload has no Content-Length to check up front.
        keep = keep and size <= limit
        if keep:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT:
            break
    return b"".join(chunks) if keep else None


async def read_image(request: Request) -> tuple[Image, bytes]:
    """The uploaded image and its bytes: 415 for another type, 413 above 2 MiB, 400 for a broken one."""
    data = await _read(request, MAX_BYTES)
    declared = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if declared not in _DECLARED:
        raise UnsupportedMediaType(f"Send the image as {', '.join(TYPES)}; got {declared or 'no type'}")
    if data is None:
        raise PayloadTooLarge(f"An avatar is at most {MAX_BYTES} bytes")
    if not data:
        raise invalid("body", "The image is empty")
    try:
        image = sniff(data)
    except Malformed as exc:
        raise invalid("body", f"Broken image: {exc}") from None
    if image is None:
        raise UnsupportedMediaType(f"{NOT_AN_IMAGE} (its bytes were checked, not its Content-Type)")
    if not (0 < image.width <= MAX_SIDE and 0 < image.height <= MAX_SIDE):
        raise invalid(
            "body", f"The image is {image.width}x{image.height}; each side must be 1 to {MAX_SIDE} pixels"
        )
    return image, data
