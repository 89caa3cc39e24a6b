"""Step 5 of `edge.proxy` on its fast path: a request without a body sent on an idle pooled connection,
its answer taken from that connection's callback.

A complete answer is written to the client from the callback itself (the common case: no task, no
coroutine); one whose body is still coming is streamed back from a coroutine; an attempt that failed
and may be retried goes on along the proxy's general path. The retry decision and the response headers
are `edge.forwarding`'s, which the general path shares.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from edge.call import Call
from edge.connection import Connection
from edge.forwarding import Forwarder

if TYPE_CHECKING:
    from edge.proxy import Proxy


class Streamer:
    """The fast path of one `Proxy`, which answers its errors, records its requests and retries them."""

    def __init__(self, proxy: Proxy, forward: Forwarder) -> None:
        self._proxy = proxy
        self._forward = forward

    def send_watching(self, call: Call, conn: Connection) -> None:
        """Send on an idle connection, answer when the service's answer is in."""
        forward = self._forward
        conn.send_head(
            forward.head(call, conn),
            head_only=call.ex.method == "HEAD",
            body_follows=False,
            timeout=forward.timeout(call),
        )
        conn.watch(lambda: self._on_answer(call, conn))

    def _on_answer(self, call: Call, conn: Connection) -> None:
        """The fast path's end, called back by the upstream connection: an exception raised here would
        reach no one and leave the client waiting, so whatever fails is answered here."""
        ex = call.ex
        proxy = self._proxy
        try:
            error = conn.error
            if error is None and conn.complete and ex.method != "HEAD" and conn.status not in (204, 304):
                conn.pool.succeeded()
                headers = Forwarder.response_headers(call, conn)
                ex.respond(conn.status, headers, conn.take_body())
                conn.release()
            elif error is None:
                # A body still coming (or none to send): streamed by the general path.
                conn.pool.succeeded()
                ex.continue_async(self._stream_rest(call, conn))
                return
            elif self._forward.may_retry(call, conn, error, reused=True):
                ex.continue_async(proxy.finish(call, None))
                return
            else:
                proxy.answer_error(ex, error, call.request_id, call.cors)
        except Exception as exc:
            if conn.busy:
                # Not handed back before the failure: in whatever state it was left, never reused.
                conn.close()
                conn.release()
            proxy.answer_exception(call, exc)
        proxy.end(call)

    async def _stream_rest(self, call: Call, conn: Connection) -> None:
        try:
            await Forwarder.stream_back(call.ex, conn, Forwarder.response_headers(call, conn))
        except (Exception, asyncio.CancelledError) as exc:
            self._proxy.answer_exception(call, exc)
        finally:
            conn.release()
            self._proxy.record(call)
