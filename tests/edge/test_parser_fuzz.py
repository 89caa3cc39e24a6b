"""Property tests of the edge's request parsing path (`edge.protocol`), fed in-process.

Two properties a smuggling attack or a slow network must not break:

- however a byte stream is cut into reads, the edge makes the same requests of it and answers the same
  bytes (an attacker choosing segment boundaries cannot change where a request ends);
- well-formed pipelined requests, with bodies by length or in chunks, reach the handler exactly as
  sent, in order, and their answers go back in that order.

Nothing escapes `data_received`, whatever the bytes; errors are answered with a 4xx or 501, never 500.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from contextvars import Context
from dataclasses import dataclass, field
from typing import TypeVarTuple, Unpack

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import EdgeError
from edge.exchange import Exchange
from edge.limits import Limits
from edge.protocol import HttpProtocol

pytestmark = pytest.mark.offline

LIMITS = Limits(max_target=96, max_headers=512, max_body=1024)
# An upload bigger than one read and than the head limits, to catch limits that count the wrong bytes.
BIG_BODY = 2 * (LIMITS.max_target + LIMITS.max_headers)
# A request as the handler received it (method, target, headers, body), or the status it was refused with.
Received = tuple[str, bytes, list[tuple[bytes, bytes]], bytes]
Outcome = Received | int
# No example database in the tree; a failure prints the blob that replays it (`@reproduce_failure`).
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


class Wire:
    """The transport under one `HttpProtocol`: records what the edge writes and whether it reads."""

    def __init__(self) -> None:
        self.sent = bytearray()
        self.closing = False
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closing, "written after close"
        self.sent += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        # Lingering: our side is done, the client's bytes are still read and dropped.
        pass

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("192.0.2.1", 50000) if name == "peername" else default


@dataclass
class Seen:
    """What the handler was asked, one entry per exchange: a request as received, or the error status."""

    requests: list[Outcome] = field(default_factory=list)

    async def handle(self, ex: Exchange) -> None:
        if ex.error is None:
            body = b""
            try:
                while chunk := await ex.receive():
                    body += chunk
            except EdgeError:
                pass
        if ex.error is not None:
            self.requests.append(ex.error.status)
            ex.respond(ex.error.status, b"", b"")
            return
        self.requests.append((ex.method, ex.target, list(ex.headers), body))
        ex.respond(200, b"", b"%d" % len(self.requests))


Ts = TypeVarTuple("Ts")


class Loop(asyncio.SelectorEventLoop):
    """An event loop that counts the callbacks scheduled on it, so that a test knows when it settled."""

    scheduled = 0

    def call_soon(
        self, callback: Callable[[Unpack[Ts]], object], *args: *Ts, context: Context | None = None
    ) -> asyncio.Handle:
        self.scheduled += 1
        return super().call_soon(callback, *args, context=context)


async def settle() -> None:
    """Let the loop run until nothing is left to run: a turn in which nothing but this coroutine's own
    wake-up was scheduled (nothing here waits on a timer or on I/O: the transport is a `Wire`). A fixed
    number of turns would be a guess at how much work the edge has queued."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, Loop)
    for _ in range(1000):
        before = loop.scheduled
        await asyncio.sleep(0)
        if loop.scheduled == before + 1:
            return
    raise AssertionError("the loop never settled: something keeps scheduling itself")


async def serve(reads: list[bytes]) -> tuple[list[Outcome], bytes]:
    """Feed the reads to one connection as the loop would (not while it has paused reading)."""
    seen, wire = Seen(), Wire()
    protocol = HttpProtocol(seen.handle, LIMITS, set())
    protocol.connection_made(wire)  # type: ignore[arg-type]
    for data in reads:
        await settle()
        if wire.closing:
            break
        if not wire.reading:
            # Back-pressure with nothing left to drain it: the edge has stopped parsing this stream.
            break
        protocol.data_received(data)
    await settle()
    protocol.connection_lost(None)
    await settle()
    return seen.requests, bytes(wire.sent)


def run(reads: list[bytes]) -> tuple[list[Outcome], bytes]:
    loop = Loop()
    try:
        return loop.run_until_complete(serve(reads))
    finally:
        loop.close()


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def statuses(sent: bytes) -> list[int]:
    """The statuses of the answers on the wire, which must parse as HTTP/1.1 responses."""
    found: list[int] = []

    class Reader:
        def on_message_complete(self) -> None:
            found.append(parser.get_status_code())

    parser = httptools.HttpResponseParser(Reader())
    parser.feed_data(sent)
    return found


# -- well-formed requests --------------------------------------------------------------------------

TOKEN = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
VALUE = st.binary(min_size=0, max_size=24).map(lambda b: bytes(0x20 + x % 95 for x in b).strip())
PATH = st.text("abcdefghijklmnopqrstuvwxyz0123456789/-_.~%?=&", max_size=40).map(lambda s: "/api/" + s)
FRAMING = {b"host", b"content-length", b"transfer-encoding", b"expect", b"connection", b"upgrade"}


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, Received]:
    """One well-formed request on the wire, and what the handler must receive of it."""
    method = draw(st.sampled_from(["GET", "DELETE", "POST", "PUT", "PATCH", "OPTIONS"]))
    target = draw(PATH).encode()
    headers = [(b"host", b"shop")]
    headers += [
        (name.encode(), value)
        for name, value in draw(st.lists(st.tuples(TOKEN, VALUE), max_size=5))
        if name.encode() not in FRAMING
    ]
    body = b""
    framing: list[tuple[bytes, bytes]] = []
    wire_body = b""
    if method in ("POST", "PUT", "PATCH"):
        body = draw(st.one_of(st.binary(max_size=64), st.just(b"x" * LIMITS.max_body)))
        if draw(st.booleans()):
            framing = [(b"content-length", b"%d" % len(body))]
            wire_body = body
        else:
            framing = [(b"transfer-encoding", b"chunked")]
            pieces = cut(body, draw(st.lists(st.integers(0, 300), max_size=4)))
            wire_body = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    all_headers = headers + framing
    head = b"%s %s HTTP/1.1\r\n" % (method.encode(), target)
    head += b"".join(b"%s: %s\r\n" % pair for pair in all_headers) + b"\r\n"
    return head + wire_body, (method, target, all_headers, body)


@FUZZ
@given(st.lists(requests(), min_size=1, max_size=4), st.lists(st.integers(0, 10_000), max_size=12))
def test_pipelined_requests_arrive_whole_and_in_order_however_the_stream_is_cut(
    pipeline: list[tuple[bytes, Received]], cuts: list[int]
) -> None:
    stream = b"".join(wire for wire, _ in pipeline)
    seen, sent = run(cut(stream, cuts))
    assert seen == [expected for _, expected in pipeline]
    assert statuses(sent) == [200] * len(pipeline)
    assert sent.count(b"\r\n\r\n") == len(pipeline)


def test_an_upload_whose_head_spans_two_reads_is_not_refused_as_too_large() -> None:
    # The rest of the head arrives in the same read as a body bigger than any head limit: only the
    # head's bytes count against the head limits.
    head = b"POST /api/orders HTTP/1.1\r\nhost: shop\r\ncontent-length: %d\r\n\r\n" % LIMITS.max_body
    body = b"x" * LIMITS.max_body
    assert len(head[10:] + body) > LIMITS.max_target + LIMITS.max_headers
    seen, sent = run([head[:10], head[10:] + body])
    assert statuses(sent) == [200]
    length = (b"content-length", b"%d" % len(body))
    assert seen == [("POST", b"/api/orders", [(b"host", b"shop"), length], body)]


# -- anything at all -------------------------------------------------------------------------------


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Bytes that are mostly HTTP: well-formed requests, damaged ones, smuggling-shaped heads, noise."""
    parts: list[bytes] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["valid", "damaged", "crafted", "crafted", "noise"]))
        if kind == "valid":
            parts.append(draw(requests())[0])
        elif kind == "damaged":
            wire = bytearray(draw(requests())[0])
            for _ in range(draw(st.integers(1, 3))):
                at = draw(st.integers(0, len(wire) - 1))
                wire[at : at + draw(st.integers(0, 3))] = draw(
                    st.sampled_from([b"", b"\r\n", b"\n", b" ", b"\x00", b":", b",", b"0", b"-"])
                )
            parts.append(bytes(wire))
        elif kind == "crafted":
            lines = [b"Host: a"] if draw(st.booleans()) else []
            lines += draw(
                st.lists(
                    st.sampled_from(
                        [
                            b"Content-Length: 5",
                            b"Content-Length: 0",
                            b"Content-Length: 5, 5",
                            b"Transfer-Encoding: chunked",
                            b"Transfer-Encoding: gzip",
                            b"Transfer-Encoding: chunked, identity",
                            b"Transfer-Encoding: gzip, chunked",
                            b"Content-Length: 99999",
                            b"X-Big: " + b"v" * LIMITS.max_headers,
                            b"Host: a",
                            b"Host: b",
                            b"Expect: 100-continue",
                            b"Connection: close",
                            b"Upgrade: websocket",
                            b" folded",
                        ]
                    ),
                    max_size=4,
                )
            )
            method = draw(st.sampled_from([b"GET", b"POST", b"CONNECT", b"PRI"]))
            version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0"]))
            target = draw(st.sampled_from([b"/api/x", b"/api/" + b"x" * LIMITS.max_target, b"*", b"x"]))
            head = b"%s %s %s\r\n" % (method, target, version) + b"".join(x + b"\r\n" for x in lines)
            parts.append(head)
            parts.append(draw(st.sampled_from([b"\r\n", b"\r\nhello", b"\r\n5\r\nhello\r\n0\r\n\r\n", b""])))
        else:
            parts.append(draw(st.binary(max_size=BIG_BODY)))
    return b"".join(parts)


@FUZZ
@given(streams(), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_bytes_cut_anywhere_give_the_same_requests_and_the_same_answers(
    stream: bytes, cuts: list[int]
) -> None:
    whole = run([stream])
    assert run(cut(stream, cuts)) == whole
    seen, sent = whole
    codes = statuses(sent)
    assert codes == [entry if isinstance(entry, int) else 200 for entry in seen]
    assert all(code == 200 or 400 <= code < 500 or code == 501 for code in codes)
