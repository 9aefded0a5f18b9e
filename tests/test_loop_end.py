"""A connector's loop ends with no task left pending (nats-py leaves its subscription
readers waiting on their queues after a close; dropped with a closed loop, each printed
"Event loop is closed" when collected, at the end of test runs)."""

from __future__ import annotations

import asyncio

from connectors.loop_end import close_loop


def test_tasks_left_waiting_are_cancelled_and_ended_before_the_loop_closes() -> None:
    loop = asyncio.new_event_loop()
    queue: asyncio.Queue[int] = asyncio.Queue()
    ended: list[str] = []

    async def reader() -> None:  # as a subscription's reader waits for messages
        try:
            await queue.get()
        finally:
            ended.append("reader")

    async def run() -> asyncio.Task[None]:
        task = asyncio.ensure_future(reader())
        await asyncio.sleep(0)
        return task

    task = loop.run_until_complete(run())
    close_loop(loop)
    assert loop.is_closed() and task.cancelled() and ended == ["reader"]
