"""The live exchange sources: Bytewax plumbing, and the skeleton both venues' feeds share.

Each worker takes its share of the books (`venue:symbol`), so workers (and Kubernetes
pods) scale per symbol. Each book's feed runs an asyncio event loop in a background thread
(websockets and REST calls) and hands RawEvents over the worker's one thread-safe queue;
`next_batch` drains it without blocking.

What both venues do alike lives here, so `connectors.binance` and `connectors.okx` hold
only what differs: `LiveFeed` (the run lifecycle, and answering the control bus in a task
of its own: every `ResyncRequest` is logged with its reason and handed to the venue's
`act`), `RestClient` (GETs through a shared budget, with Retry-After, bans and back-off),
`connect_websocket` (the common options), `SilenceWatch` (a socket that sends nothing for
`silence_s` is closed) and `reconnect_forever`.

Unit of parallelism: one partition per worker, holding the books `keys[worker::workers]`.
Recovery snapshot: nothing (a dynamic source): a live feed cannot rewind; after a restart the book
resyncs from a fresh snapshot, and gaps while down are reported as gaps.
Delivery: at-most-once per received message into the dataflow.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, NamedTuple, Protocol, get_args

import orjson
import requests
import websockets
from bytewax.inputs import DynamicSource, StatelessSourcePartition
from websockets.asyncio.client import ClientConnection

from connectors.control import ControlBus
from connectors.limits import BackoffDelays, WindowBudget
from connectors.loop_end import close_loop
from connectors.metrics import CONNECTION_FAILURES, REST_FAILURES, RESYNC_REQUESTS, SILENT_SOCKETS
from schemas.events import ResyncRequest, SourceAction
from schemas.raw import ParsedRawEvent, RawEvent
from schemas.sliced_json import loads_yielding

log = logging.getLogger(__name__)

Emit = Callable[[RawEvent], None]
Prepare = Callable[[RawEvent], RawEvent]
# How long an idle partition lets Bytewax wait before polling the queue again.
IDLE_POLL = timedelta(milliseconds=1)
MAX_BATCH = 2000
CONTROL_POLL_S = 0.05
# A socket that sends nothing at all this long is taken for dead (OKX drops idle ones at 30 s).
SILENCE_S = 30.0
# The sockets of a book, as the connection counters label them.
PUBLIC, BUSINESS = "public", "business"
# A 418 without Retry-After: Binance's bans last 2 minutes to 3 days, so wait long.
BAN_DEFAULT_S = 300.0
ACTIONS: tuple[SourceAction, ...] = get_args(SourceAction)  # gentlest first


class Feed(Protocol):
    """Everything one book needs from its exchange: sockets, snapshots, pings, reconnects."""

    key: str

    async def run(self, emit: Emit, stop: asyncio.Event) -> None: ...


def connect_websocket(url: str) -> websockets.asyncio.client.connect:
    """A connection with the options every feed uses: frames up to 16 MiB; no pings of our own
    (the library answers Binance's; OKX wants the text `ping`, sent by its feed); 10 s to
    open, 2 s to close (a dead peer must not hold a reconnect up)."""
    return websockets.connect(url, max_size=2**24, ping_interval=None, open_timeout=10, close_timeout=2)


class SilentSocket(Exception):
    """A connection sent nothing for `silence_s`; it was closed, and a new one is opened."""


class SilenceWatch:
    """Closes `ws` once no message has come for `silence_s` (protocol pings do not count);
    the `async with` block then ends in `SilentSocket`. Call `heard()` on every message."""

    def __init__(self, ws: ClientConnection, silence_s: float) -> None:
        self._ws, self.silence_s = ws, silence_s
        self._last = time.monotonic()
        self._fired = False
        self._task: asyncio.Task[None] | None = None

    def heard(self) -> None:
        self._last = time.monotonic()

    async def _watch(self) -> None:
        while (wait := self._last + self.silence_s - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        self._fired = True
        await self._ws.close(1000, "silent")

    async def __aenter__(self) -> SilenceWatch:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        if self._fired and (exc is None or isinstance(exc, websockets.WebSocketException)):
            raise SilentSocket(f"nothing received for {self.silence_s:g} s") from exc


async def reconnect_forever(
    key: str,
    endpoint: str,
    serve: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    before_attempt: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run one connection after another until `stop`: a failure is logged with its book,
    counted, and followed by a capped, jittered back-off; `before_attempt` paces attempts."""
    backoff = BackoffDelays()
    while not stop.is_set():
        if before_attempt is not None:
            await before_attempt()
        try:
            await serve()
            backoff.reset()
            continue
        except SilentSocket as exc:
            SILENT_SOCKETS.labels(key, endpoint).inc()
            reason = str(exc)
        except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as exc:
            reason = f"failed ({exc})"
        delay = backoff.next()
        log.warning("%s: %s websocket %s; reconnecting in %.1f s", key, endpoint, reason, delay)
        CONNECTION_FAILURES.labels(key, endpoint).inc()
        await asyncio.sleep(delay)


class RestAnswer(NamedTuple):
    recv_ns: int
    text: str
    document: object  # the text parsed as JSON; None when it is not JSON


class _Attempt(NamedTuple):
    status: int
    headers: Mapping[str, str]
    answer: RestAnswer
    is_json: bool


class RestClient:
    """GETs for one book through its venue's shared request budget, retried until they succeed.

    Every attempt reserves its cost first, so books asking at once are spread out. A 429
    blocks the whole budget (every book of the venue) for `Retry-After` (default: the
    budget's window), a 418 ban for `Retry-After` (default `BAN_DEFAULT_S`). Every failure —
    those, any other status, a network error, a 200 whose body is not JSON — is logged with
    the book, counted in `REST_FAILURES` and retried after a capped, jittered back-off; a
    failed answer is never emitted. `on_headers` reads a venue's own headers (Binance's
    used weight).
    """

    def __init__(
        self,
        key: str,
        budget: WindowBudget,
        on_headers: Callable[[Mapping[str, str]], None] | None = None,
    ) -> None:
        self.key, self.budget, self._on_headers = key, budget, on_headers
        self._session = requests.Session()

    async def get(self, url: str, *, cost: float) -> RestAnswer:
        backoff = BackoffDelays(first_s=1.0, cap_s=60.0)
        while (answer := await self._try(url, cost)) is None:
            await asyncio.sleep(backoff.next())
        return answer

    async def _try(self, url: str, cost: float) -> RestAnswer | None:
        await self.budget.acquire(cost)
        try:
            attempt = await asyncio.to_thread(self._request, url)
        except requests.RequestException as exc:
            log.warning("%s: request failed: %s", self.key, exc)
            REST_FAILURES.labels(self.key, "error").inc()
            return None
        if self._on_headers is not None:
            self._on_headers(attempt.headers)
        status = attempt.status
        if status in (418, 429):
            default = BAN_DEFAULT_S if status == 418 else self.budget.window_s
            retry_after = _seconds(attempt.headers.get("Retry-After"), default)
            log.warning("%s: request refused with %d; every request of the venue waits %.0f s", self.key, status,
                        retry_after)
            self.budget.block_for(retry_after)
        elif status != 200:
            log.warning("%s: request answered HTTP %d", self.key, status)
        elif not attempt.is_json:
            log.warning("%s: HTTP 200 with a body that is not JSON (%d bytes); asking again", self.key,
                        len(attempt.answer.text))
            REST_FAILURES.labels(self.key, "bad_body").inc()
            return None
        else:
            return attempt.answer
        REST_FAILURES.labels(self.key, str(status)).inc()
        return None

    def _request(self, url: str) -> _Attempt:
        response = self._session.get(url, timeout=10)
        recv_ns = time.time_ns()
        try:  # JSON is UTF-8; parsed whole, in slices: 5000-level answers held the GIL for ms
            text = response.content.decode()
            document = loads_yielding(text)
            is_json = True
        except (UnicodeDecodeError, orjson.JSONDecodeError):
            text, document, is_json = response.text, None, False
        return _Attempt(response.status_code, response.headers, RestAnswer(recv_ns, text, document), is_json)

    def close(self) -> None:
        self._session.close()


def _seconds(header: str | None, default: float) -> float:
    try:
        return float(header) if header is not None else default
    except ValueError:
        return default


def most_thorough(waiting: list[ResyncRequest]) -> ResyncRequest:
    """Of requests waiting together, the one whose action also does what the others ask."""
    return max(reversed(waiting), key=lambda request: ACTIONS.index(request.action))


class LiveFeed(ABC):
    """One book's exchange I/O: the venue's tasks, a task answering the control bus, and REST.

    A venue gives `tasks` (its sockets and REST loops) and `act` (what a `ResyncRequest`'s
    action means there). Requests that wait together are answered once, by the most
    thorough of them (a reconnect includes a new subscription and a snapshot); each is
    logged with its reason.
    """

    def __init__(self, *, venue: str, symbol: str, control: ControlBus, rest: RestClient) -> None:
        self.venue, self.symbol = venue, symbol
        self.key = f"{venue}:{symbol}"
        self.control, self.rest = control, rest

    @abstractmethod
    def tasks(self, emit: Emit, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        """The venue's long-running work for this book."""

    @abstractmethod
    async def act(self, request: ResyncRequest) -> None:
        """Do what `request.action` asks of this venue."""

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(work) for work in self.tasks(emit, stop)]
        tasks.append(asyncio.create_task(self._answer_requests()))
        for task in tasks:
            task.add_done_callback(self._report_crash)
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.rest.close()

    async def fetch(self, url: str, *, cost: float, emit: Emit) -> None:
        """GET `url` until it succeeds and emit the answer as this book's REST event."""
        answer = await self.rest.get(url, cost=cost)
        emit(ParsedRawEvent(answer.recv_ns, self.venue, f"{self.key}#rest", "rest", self.symbol, url, answer.text,
                            answer.document))
        log.debug("%s: REST answer received (%d bytes)", self.key, len(answer.text))

    async def _answer_requests(self) -> None:
        while True:
            waiting = []
            for request in self.control.take(self.key):
                if request.action in ACTIONS:
                    log.info("%s: %s requested: %s", self.key, request.action, request.reason)
                    waiting.append(request)
                else:
                    log.warning("%s: ignored a request for an unknown action %r (%s)", self.key, request.action,
                                request.reason)
            if waiting:
                RESYNC_REQUESTS.labels(self.key).inc(len(waiting))
                try:
                    await self.act(most_thorough(waiting))
                except (OSError, websockets.WebSocketException) as exc:
                    log.warning("%s: could not act on the request (%s); the next connection starts afresh", self.key,
                                exc)
            await asyncio.sleep(CONTROL_POLL_S)

    def _report_crash(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: a feed task stopped with an error", self.key, exc_info=task.exception())


class _FeedRun:
    """One book's feed on an event loop in a thread of its own, and the thread that prepares
    its REST answers; both hand what they have to the partition's queue, in order."""

    def __init__(self, feed: Feed, out: queue.SimpleQueue[RawEvent], prepare: Prepare | None) -> None:
        self._out = out
        self._prepare = prepare
        self._preparing: queue.SimpleQueue[RawEvent | None] = queue.SimpleQueue()
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, args=(feed,), name=f"feed {feed.key}", daemon=True)
        self._preparer = threading.Thread(target=self._prepare_rest, name=f"prepare {feed.key}", daemon=True)
        if prepare is not None:
            self._preparer.start()
        self._thread.start()

    def _run(self, feed: Feed) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(feed.run(self._emit, self._stop))
        except Exception:
            log.exception("feed %s stopped with an error", feed.key)
        finally:
            close_loop(self._loop)

    def _emit(self, raw: RawEvent) -> None:
        if self._prepare is not None and raw.kind == "rest":
            self._preparing.put(raw)  # the socket's messages do not wait for it
        else:
            self._out.put(raw)

    def _prepare_rest(self) -> None:
        """REST answers, one after another, through `prepare`; a failure hands the answer
        over as it came (the flow decodes it then), so nothing is lost."""
        assert self._prepare is not None
        while (raw := self._preparing.get()) is not None:
            try:
                self._out.put(self._prepare(raw))
            except Exception:
                book = raw.conn.partition("#")[0]
                log.exception("%s: preparing a REST answer failed; the flow decodes it", book)
                REST_FAILURES.labels(book, "prepare").inc()
                self._out.put(raw)

    def ask_to_stop(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._preparer.is_alive():
            self._preparing.put(None)

    def join(self) -> None:
        self._thread.join(timeout=10)
        if self._preparer.is_alive():
            self._preparer.join(timeout=10)


class _FeedPartition(StatelessSourcePartition[RawEvent]):
    """The books of one worker: every feed hands its messages to one queue, so Bytewax polls
    one partition per worker (each poll is a call into Python, a thousand a second when idle)
    rather than one per book."""

    def __init__(
        self, feeds: list[Feed], deadline: float | None, prepare: Prepare | None = None,
        end: threading.Event | None = None,
    ) -> None:
        self._queue: queue.SimpleQueue[RawEvent] = queue.SimpleQueue()
        self._deadline = deadline
        self._end = end
        self._runs = [_FeedRun(feed, self._queue, prepare) for feed in feeds]

    def next_batch(self) -> list[RawEvent]:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise StopIteration()
        if self._end is not None and self._end.is_set():
            raise StopIteration()
        batch: list[RawEvent] = []
        try:
            while len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return batch

    def next_awake(self) -> datetime | None:
        return datetime.now(timezone.utc) + IDLE_POLL if self._queue.empty() else None

    def close(self) -> None:
        for run in self._runs:  # all asked first, so the books stop together
            run.ask_to_stop()
        for run in self._runs:
            run.join()


class LiveSource(DynamicSource[RawEvent]):
    """Live RawEvents for the given books; `make_feed(key)` builds each book's feed, and
    worker i of n takes the books `keys[i::n]`.

    `prepare`, if given, runs on every REST answer in a thread of the feed's own
    before the answer enters the flow (the collector decodes them there: a 5000-level
    snapshot takes milliseconds, which the flow's worker would otherwise spend while the
    sockets' messages wait). It must return the answer as a RawEvent (or a subclass).
    `end`, if given, ends the run once set, as `run_seconds` running out does (SIGTERM
    sets it under `bytewax.run`; tests end a run on a condition instead of a duration)."""

    def __init__(
        self,
        keys: list[str],
        make_feed: Callable[[str], Feed],
        run_seconds: float | None = None,
        prepare: Prepare | None = None,
        end: threading.Event | None = None,
    ) -> None:
        self.keys = keys
        self.make_feed = make_feed
        self.run_seconds = run_seconds
        self.prepare = prepare
        self.end = end

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _FeedPartition:
        deadline = None if self.run_seconds is None else time.monotonic() + self.run_seconds
        feeds = [self.make_feed(key) for key in self.keys[worker_index::worker_count]]
        return _FeedPartition(feeds, deadline, self.prepare, self.end)
