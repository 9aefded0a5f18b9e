"""Ending the event loop a connector runs in a thread of its own."""

from __future__ import annotations

import asyncio


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks a run left behind (the readers of a closed NATS client's
    subscriptions, say), let them end, then close the loop: a task dropped with its loop
    already closed prints "Event loop is closed" whenever it is collected."""
    left = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in left:
        task.cancel()
    if left:
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
