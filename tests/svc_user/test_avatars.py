"""Avatars: real images only (judged by their bytes), at most 2 MiB, served with ETag and caching headers."""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from svc_user.avatars import MAX_BYTES, Image, Malformed, sniff
from tests.support import identity
from tests.svc_user.conftest import NewUser
from tests.svc_user.support import User, UserService, announced, jpeg, png, webp


async def upload(
    svc: UserService, user: User, body: bytes, content_type: str = "image/png"
) -> dict[str, Any]:
    response = await svc.http.put(
        "/api/users/me/avatar", headers={**user.headers, "Content-Type": content_type}, content=body
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_an_uploaded_png_is_served_with_its_type_etag_and_caching_headers(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    image = png(3, 2)
    profile = await upload(svc, user, image)
    digest = hashlib.sha256(image).hexdigest()
    assert profile["avatarUrl"].endswith(f"/api/users/{user.id}/avatar?v={digest[:16]}")
    assert (await svc.http.get("/api/users/me", headers=user.headers)).json() == profile

    served = await svc.http.get(f"/api/users/{user.id}/avatar")  # public: no identity
    assert served.status_code == 200 and served.content == image
    assert served.headers["content-type"] == "image/png"
    assert served.headers["etag"] == f'"{digest}"'
    assert served.headers["cache-control"] == "public, no-cache"
    assert served.headers["x-content-type-options"] == "nosniff"

    versioned = await svc.http.get(f"/api/users/{user.id}/avatar", params={"v": digest[:16]})
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"

    revalidated = await svc.http.get(
        f"/api/users/{user.id}/avatar", headers={"If-None-Match": f'W/"{digest}"'}
    )
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert revalidated.headers["etag"] == f'"{digest}"'
    assert await announced(svc.deps.db, user.id) == [["avatarUrl"]]


async def test_replacing_an_avatar_replaces_it_and_the_old_etag_no_longer_matches(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    first = await upload(svc, user, png())
    old_etag = (await svc.http.get(f"/api/users/{user.id}/avatar")).headers["etag"]
    second = await upload(svc, user, jpeg(), "image/jpeg")
    assert second["avatarUrl"] != first["avatarUrl"] and second["updatedAt"] > first["updatedAt"]
    served = await svc.http.get(f"/api/users/{user.id}/avatar", headers={"If-None-Match": old_etag})
    assert served.status_code == 200 and served.content == jpeg()
    assert served.headers["content-type"] == "image/jpeg"
    assert await svc.deps.db.fetchval("SELECT count(*) FROM avatars WHERE user_id = $1", user.id) == 1


async def test_the_stored_type_comes_from_the_bytes_not_the_header(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    await upload(svc, user, webp(), "image/png")
    served = await svc.http.get(f"/api/users/{user.id}/avatar")
    assert served.headers["content-type"] == "image/webp" and served.content == webp()


async def test_uploading_the_same_image_again_changes_nothing(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    first = await upload(svc, user, png())
    assert await upload(svc, user, png()) == first
    assert await announced(svc.deps.db, user.id) == [["avatarUrl"]]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        pytest.param(b"<html><script>alert(1)</script></html>", "image/png", 415, id="html-disguised-as-png"),
        pytest.param(b"#!/bin/sh\nrm -rf /\n" * 10, "image/jpeg", 415, id="script-disguised-as-jpeg"),
        pytest.param(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/png", 415, id="gif"),
        pytest.param(png(), "text/plain", 415, id="png-sent-as-text"),
        pytest.param(png(), "image/svg+xml", 415, id="svg-type"),
        pytest.param(b"", "image/png", 400, id="empty"),
        pytest.param(png()[:20], "image/png", 400, id="truncated-png"),
        pytest.param(b"\xff\xd8\xff\xd9", "image/jpeg", 400, id="jpeg-without-frame"),
        pytest.param(png(5000, 1), "image/png", 400, id="too-wide"),
    ],
)
async def test_anything_but_a_sane_png_jpeg_or_webp_is_refused_and_nothing_stored(
    svc: UserService, new_user: NewUser, body: bytes, content_type: str, status: int
) -> None:
    user = await new_user()
    response = await svc.http.put(
        "/api/users/me/avatar", headers={**user.headers, "Content-Type": content_type}, content=body
    )
    assert response.status_code == status, response.text
    assert response.json()["error"] == ("UnsupportedMediaType" if status == 415 else "ValidationError")
    assert (await svc.http.get(f"/api/users/{user.id}/avatar")).status_code == 404
    assert await announced(svc.deps.db, user.id) == []


def _oversized() -> bytes:
    # A real PNG header followed by padding: too big, whatever it is.
    return png() + b"\x00" * (MAX_BYTES + 1 - len(png()))


async def test_a_body_over_2_mib_is_413_by_its_content_length(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    response = await svc.http.put(
        "/api/users/me/avatar", headers={**user.headers, "Content-Type": "image/png"}, content=_oversized()
    )
    assert response.status_code == 413 and response.json()["error"] == "PayloadTooLarge"


async def test_a_chunked_body_over_2_mib_is_413_while_reading(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()

    async def chunks() -> AsyncIterator[bytes]:
        data = _oversized()
        for at in range(0, len(data), 256 * 1024):
            yield data[at : at + 256 * 1024]

    response = await svc.http.put(
        "/api/users/me/avatar", headers={**user.headers, "Content-Type": "image/png"}, content=chunks()
    )
    assert response.status_code == 413
    assert (await svc.http.get(f"/api/users/{user.id}/avatar")).status_code == 404


async def test_exactly_2_mib_is_accepted(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    image = png(16, 16)
    # Bytes after IEND are ignored by decoders; they make the file exactly the limit.
    await upload(svc, user, image + b"\x00" * (MAX_BYTES - len(image)))
    served = await svc.http.get(f"/api/users/{user.id}/avatar")
    assert len(served.content) == MAX_BYTES


async def test_a_removed_avatar_is_gone(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    await upload(svc, user, png())
    assert (await svc.http.delete("/api/users/me/avatar", headers=user.headers)).status_code == 204
    assert (await svc.http.get(f"/api/users/{user.id}/avatar")).status_code == 404
    assert (await svc.http.get("/api/users/me", headers=user.headers)).json()["avatarUrl"] is None
    assert (await svc.http.delete("/api/users/me/avatar", headers=user.headers)).status_code == 204
    assert await announced(svc.deps.db, user.id) == [["avatarUrl"], ["avatarUrl"]]


async def test_avatars_of_unknown_users_are_404(svc: UserService) -> None:
    for user_id in (uuid.uuid4(), "me", "nobody"):
        assert (await svc.http.get(f"/api/users/{user_id}/avatar")).status_code == 404


async def test_uploading_needs_a_caller_with_a_profile(svc: UserService) -> None:
    headers = {"Content-Type": "image/png"}
    assert (await svc.http.put("/api/users/me/avatar", headers=headers, content=png())).status_code == 401
    stranger = {**identity(email="stranger@shop.test"), **headers}
    assert (await svc.http.put("/api/users/me/avatar", headers=stranger, content=png())).status_code == 404


def _riff_webp(chunk: bytes, frame: bytes) -> bytes:
    size = struct.pack("<I", len(frame))
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(frame)) + b"WEBP" + chunk + size + frame


def _vp8(width: int, height: int) -> bytes:
    """The header of a lossy WebP."""
    return _riff_webp(b"VP8 ", b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 8)


def _vp8l(width: int, height: int) -> bytes:
    """The header of a lossless WebP."""
    return _riff_webp(b"VP8L", b"\x2f" + struct.pack("<I", (width - 1) | ((height - 1) << 14)) + b"\x00" * 8)


@pytest.mark.parametrize(
    ("data", "image"),
    [
        (png(640, 480), Image("image/png", 640, 480)),
        (jpeg(), Image("image/jpeg", 16, 16)),
        (webp(), Image("image/webp", 16, 16)),
        (_vp8(320, 200), Image("image/webp", 320, 200)),
        (_vp8l(300, 100), Image("image/webp", 300, 100)),
        (b"plain text", None),
        (b"GIF89a", None),
    ],
)
def test_sniffing_reads_the_type_and_size_from_the_bytes(data: bytes, image: Image | None) -> None:
    assert sniff(data) == image


@pytest.mark.parametrize(
    "data",
    [
        png()[:20],
        b"\xff\xd8\xff\xe0\x00\x01",
        _vp8(1, 1)[:-10],
        b"RIFF\x04\x00\x00\x00WEBPVP8Z" + b"\x00" * 20,
    ],
)
def test_sniffing_refuses_a_broken_header_behind_a_good_signature(data: bytes) -> None:
    with pytest.raises(Malformed):
        sniff(data)
