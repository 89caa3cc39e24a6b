"""How fast one svc_notify process drains its delivery queue: N queued mails through the email worker to
the dev mail sink (in this process), at a channel concurrency, with the rate limit out of the way; and
the CPU time of this process (worker and sink together) per mail.

    .venv/bin/python -m perf.notify_dispatch --mails 1000 --concurrency 8

It uses a database of its own (`notify_bench` on POSTGRES_URL, dropped afterwards) and the mail sink's
SMTP port (SMTP_PORT), so no running stack is disturbed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path

from devsinks import mail
from kit import db, settings
from svc_notify.channels.email import EmailSender
from svc_notify.config import ChannelPolicy
from svc_notify.dispatch import ChannelWorker

MIGRATIONS = Path(__file__).resolve().parents[1] / "svc_notify" / "migrations"
_QUEUE = """
INSERT INTO notifications (id, event_id, user_id, channel, recipient, template, subject, body, status)
VALUES ($1, $2, $3, 'email', $4, 'order-confirmed', 'Your order', 'Hello', 'QUEUED')
"""


async def main(mails: int, concurrency: int) -> None:
    url = f"{os.environ.get('POSTGRES_URL', settings.POSTGRES_URL).rstrip('/')}/notify_bench"
    await db.drop_database(url)
    await db.ensure_database(url)
    pool = await db.create_pool(url, 1, concurrency + 4)
    try:
        await db.migrate(pool, MIGRATIONS)
        sink = mail.make_app(settings.load("mailsink"))
        async with sink.router.lifespan_context(sink):
            rows = [(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), f"{n}@bench.test") for n in range(mails)]
            await pool.executemany(_QUEUE, rows)
            policy = ChannelPolicy(concurrency, 1e9, 6, 1.0, 10.0)
            worker = ChannelWorker(pool, EmailSender(settings.load("notify")), policy)
            began, cpu = time.perf_counter(), time.process_time()
            task = asyncio.create_task(worker.run())
            while True:  # polled: the measure is the queue's, from outside the worker
                if not await pool.fetchval("SELECT count(*) FROM notifications WHERE status <> 'SENT'"):
                    break
                await asyncio.sleep(0.05)
            took, cpu = time.perf_counter() - began, time.process_time() - cpu
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        print(
            f"{mails} mails, concurrency {concurrency}: {took:.2f} s, {mails / took:.0f} mails/s,"
            f" {cpu / mails * 1e6:.0f} µs of CPU per mail (worker and sink)"
        )
    finally:
        await pool.close()
        await db.drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.mails, args.concurrency))
