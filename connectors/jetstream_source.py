"""Bytewax source reading the collector's JetStream streams through durable pull consumers.

JetStreamSource — unit of parallelism: one partition per stream (ORDERBOOK_FULL,
ORDERBOOK_DELTA, MARKET_TRADES, MARKET_DATA, FEATURES), each with its own connection and its
own durable consumer `{durable_prefix}-{stream}`. One consumer per stream rather than one over
all of them because a JetStream consumer belongs to one stream, and because sequence numbers
are per stream: a batch's dedup token and the detection of a lost stretch both need one
stream's sequence. The consumer has no subject filter, so every sequence is seen and a
jump in them is a loss, not a filter; messages whose content another subject stores
(`orderbook.snapshot`, `orderbook.delta`) are acked at once without being emitted.

Recovery snapshot: the highest stream sequence handed downstream (a plain int); the
durable consumer's ack state on the server decides what is delivered again, the snapshot
only gives the gap check its starting point.

Delivery: at-least-once from JetStream, exactly-once into storage together with the
ClickHouse sink: a message is acked only after the batch holding it was inserted (the
sink reports it to the shared `AckLedger`), batches are made durable before they are
inserted and keep their dedup token, which is built from the sequences they hold, and a
redelivered message already in an earlier run's durable batch is not emitted again, nor is
a copy JetStream sent again (ack_wait passed) before the ack of the first one reached it.
When a stream discarded messages before the store read them (the store was down longer
than the stream keeps them), the stretch is emitted as a `gap` QualityEvent naming the
stream and the sequences, never skipped silently.

Memory, bounded whatever the lag or a slow ClickHouse: a message handed downstream is held
only as its sequence and ack subject until its batch is committed (at most max_ack_pending
per stream), and at most `inbox_fetches` fetches of about `fetch_bytes` wait for the worker.
The payloads live in the sink's batches, which the store keeps on disk.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from connectors.acks import AckLedger, AckTicket, Stored
from connectors.jetstream import connect, ensure_streams, redact
from connectors.loop_end import close_loop
from schemas.decoding import event_from_message, stored_kind
from schemas.events import QualityEvent
from schemas.streams import NatsAuth, StreamSettings

log = logging.getLogger(__name__)

GAP_VENUE = "nats"  # quality events about a stream rather than a venue's book
POLL_S = 0.05
ACK_WARNING_EVERY_S = 5.0
REDELIVERY_MARGIN_S = 5.0  # fetch and hand-over time on top of ack_wait


@dataclass(frozen=True, slots=True)
class _Fetched:
    """One fetch, and the stream's first sequence then (what the gap check compares with)."""

    msgs: list[Msg]
    first_available: int


@dataclass(slots=True)
class ConsumerLimits:
    fetch_batch: int = 500
    # What one fetch may bring, roughly: a full book is ~0.6 MB of JSON, so 500 of them would
    # be 300 MB; the next fetch asks for as many messages as fit, at the last ones' size.
    fetch_bytes: int = 8 * 1024 * 1024
    inbox_fetches: int = 2  # fetched batches the worker has not taken yet: then the loop waits
    max_ack_pending: int = 20_000  # what the store holds unacked: the stream keeps the rest
    # Unacked messages of a killed store come back after this; one held longer (a ClickHouse
    # outage) is redelivered too, and the copy is recognised and only replaces the reply.
    ack_wait_s: float = 30.0
    retry_cap_s: float = 5.0


@dataclass(slots=True)
class SourceStats:
    """Per stream: stretches found discarded before the store read them, and their messages."""

    gaps: dict[str, int] = field(default_factory=dict)
    lost_messages: dict[str, int] = field(default_factory=dict)

    def gap(self, stream: str, messages: int) -> None:
        self.gaps[stream] = self.gaps.get(stream, 0) + 1
        self.lost_messages[stream] = self.lost_messages.get(stream, 0) + messages


class _StreamPartition(StatefulSourcePartition[Stored, int | None]):
    def __init__(
        self,
        *,
        url: str,
        auth: NatsAuth,
        streams: StreamSettings,
        stream: str,
        durable: str,
        ledger: AckLedger,
        limits: ConsumerLimits,
        resume_seq: int | None,
        drain_and_stop: threading.Event,
        stats: SourceStats,
    ) -> None:
        self._stats = stats
        self._url, self._auth, self._streams = url, auth, streams
        self._stream, self._durable, self._ledger, self._limits = stream, durable, ledger, limits
        self._last_seq = resume_seq  # highest sequence handed downstream (or acked before this run)
        self._drain_and_stop = drain_and_stop
        # Worker thread only: emitted or held and not acked yet, by sequence, each with the ack
        # subject of its latest delivery (not the message: its payload is in the batch, and a
        # held full book would keep ~0.6 MB); from an earlier run's batch, committed, waiting for
        # its redelivery to ack.
        self._in_flight: dict[int, str] = {}
        # sequence -> its ticket and since when; oldest first
        self._awaiting: dict[int, tuple[AckTicket, float]] = {}
        self._ack_floor = 0  # every sequence up to it is acked on the server
        self._consuming_since: float | None = None  # this connection's consumer is bound
        # Sequences whose ack is sent and not confirmed yet (the loop retries it until it is),
        # and the latest confirmed ones: a redelivery of either is not new, it was sent before
        # the server had our ack (and may wait in the inbox while the worker is busy). Worker
        # adds, loop moves them on, under _acking_lock; at most max_ack_pending confirmed kept.
        self._acking: set[int] = set()
        self._confirmed: dict[int, None] = {}
        self._acking_lock = threading.Lock()
        self._nc: NATS | None = None  # the loop's current connection: acks go through it
        self._next_ack_warning = 0.0  # loop thread
        self._idle = threading.Event()  # the stream has nothing this store has not acked
        self._inbox: queue.SimpleQueue[_Fetched | int] = queue.SimpleQueue()  # fetches, or the ack floor when bound
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=f"store-{stream}", daemon=True)
        self._thread.start()

    # ---- the Bytewax worker's side ----

    def next_batch(self) -> list[Stored]:
        for ticket, seqs in self._ledger.take_ready(self._stream):
            self._ack(seqs, ticket)
        self._settle_awaiting()
        out: list[Stored] = []
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                if not out and self._drained():
                    self._stop.set()  # wind the consumer down now, not one partition at a time in close()
                    raise StopIteration
                return out
            if isinstance(item, int):
                self._consuming_since = time.monotonic()
                if item > self._ack_floor:
                    self._ack_floor = item
                    self._settle_awaiting(below_floor=True)
                if item:
                    self._last_seq = max(self._last_seq or 0, item)
                continue
            for msg in item.msgs:
                out.extend(self._accept(msg, item.first_available))

    def next_awake(self) -> datetime | None:
        return datetime.now(timezone.utc) + timedelta(seconds=POLL_S) if self._inbox.empty() else None

    def _drained(self) -> bool:
        """Asked to stop, and everything the stream held is stored and acked."""
        with self._acking_lock:
            acking = bool(self._acking)
        return (self._drain_and_stop.is_set() and self._idle.is_set() and self._inbox.empty()
                and not self._in_flight and not self._awaiting and not acking)

    def snapshot(self) -> int | None:
        return self._last_seq

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _accept(self, msg: Msg, first_available: int) -> list[Stored]:
        """What one delivered message adds downstream: nothing, itself, or a gap and itself."""
        seq = msg.metadata.sequence.stream
        with self._acking_lock:
            acked = seq in self._acking or seq in self._confirmed
        if acked:  # its batch is inserted and its ack on the way or done (JetStream acks by stream sequence)
            return []
        if seq in self._in_flight:  # redelivered while its batch is still on the way: keep the newest reply
            self._in_flight[seq] = msg.reply
            return []
        awaited = self._awaiting.pop(seq, None)
        if awaited is not None:  # its batch is inserted; this redelivery is what we can ack
            self._confirm(seq, msg.reply, awaited[0])
            return []
        held = self._ledger.journaled(self._stream, seq)
        if held is False:  # in an earlier run's batch, inserted: a copy sent before its ack reached JetStream
            self._reply(msg)
            return []
        if held:  # an earlier run already batched it durably, not inserted yet
            self._in_flight[seq] = msg.reply
            return []
        # Anything else is new to storage, even below sequences seen already: a killed store's
        # unacked messages come back after ack_wait, behind newer ones. (A confirmed ack is
        # never redelivered, so nothing stored comes back this way.)
        out: list[Stored] = []
        if self._last_seq is not None and seq > self._last_seq + 1:
            gap = self._gap(self._last_seq + 1, seq - 1, first_available)
            if gap is not None:
                out.append(gap)
        self._last_seq = max(seq, self._last_seq or 0)
        if stored_kind(msg.subject) is None:
            self._reply(msg)
            return out
        self._in_flight[seq] = msg.reply
        out.append(Stored(self._stream, seq, f"{self._stream}:{seq}", event_from_message(msg.subject, msg.data)))
        return out

    def _gap(self, first: int, last: int, first_available: int) -> Stored | None:
        """Sequences skipped by the consumer were either acked already (after a restart) or
        discarded by the stream's limits; only the latter are lost. The stream's first
        sequence, read when the batch was fetched, tells them apart (discard is oldest first)."""
        lost_last = min(last, first_available - 1)
        if lost_last < first:
            return None
        detail = (f"stream {self._stream}: sequences {first}-{lost_last} ({lost_last - first + 1} messages) "
                  f"were discarded by the stream before the store read them")
        log.error("store: %s", detail)
        self._stats.gap(self._stream, lost_last - first + 1)
        event = QualityEvent(GAP_VENUE, None, "gap", detail, lost_last, time.time_ns())
        return Stored(self._stream, None, f"gap:{self._stream}:{first}-{lost_last}", event)

    def _ack(self, seqs: list[int], ticket: AckTicket) -> None:
        for seq in seqs:
            reply = self._in_flight.pop(seq, None)
            if reply is None:  # from an earlier run's batch; acked when redelivered
                self._await(seq, ticket)
            else:
                self._confirm(seq, reply, ticket)

    def _await(self, seq: int, ticket: AckTicket) -> None:
        if seq <= self._ack_floor:  # acked already (a run killed before it forgot the batch)
            ticket.acked(self._stream, 1)
            return
        self._awaiting.pop(seq, None)
        self._awaiting[seq] = (ticket, time.monotonic())

    def _settle_awaiting(self, *, below_floor: bool = False) -> None:
        """Stop waiting for redeliveries that will never come: a run killed after JetStream
        confirmed a batch's acks and before it forgot the batch leaves it on disk. Up to the
        ack floor the server says so; above it, a sequence not redelivered within twice
        ack_wait of binding the consumer was acked (JetStream sends every unacked message
        again after ack_wait)."""
        settled = 0
        if below_floor:
            for seq in [seq for seq in self._awaiting if seq <= self._ack_floor]:
                self._awaiting.pop(seq)[0].acked(self._stream, 1)
                settled += 1
        if self._consuming_since is not None:
            horizon = time.monotonic() - (2 * self._limits.ack_wait_s + REDELIVERY_MARGIN_S)
            while self._awaiting:
                seq, (ticket, since) = next(iter(self._awaiting.items()))
                if max(since, self._consuming_since) > horizon:
                    break
                del self._awaiting[seq]
                ticket.acked(self._stream, 1)
                settled += 1
        if settled:
            log.info("store: %s: %d messages of stored batches were acked already; not waiting for them",
                     self._stream, settled)

    def _confirm(self, seq: int, reply: str, ticket: AckTicket) -> None:
        """Ack and wait for JetStream to confirm it: only then may the sink forget the batch.

        Through the current connection, and again until confirmed: an ack whose reply was lost
        (a reconnect, a timeout) may have been applied, and then no redelivery would ever come
        to ack instead, so waiting for one would hold the sink's writer, and with it every
        later batch, forever. Acking an acked message again is harmless: the server answers."""
        with self._acking_lock:
            self._acking.add(seq)

        async def ack() -> None:
            delay = 0.1
            while True:
                nc = self._nc
                try:
                    if nc is None or not nc.is_connected:
                        raise ConnectionError("not connected")
                    await nc.request(reply, b"", timeout=5.0)
                except Exception as exc:
                    if self._stop.is_set():
                        return  # unconfirmed: the sink keeps the batch on disk for the next run
                    now = time.monotonic()
                    if now >= self._next_ack_warning:  # a reconnect fails thousands at once: one line
                        self._next_ack_warning = now + ACK_WARNING_EVERY_S
                        log.warning("store: %s ack of sequence %d not confirmed (%s); sending it again (and any "
                                    "other unconfirmed ack)", self._stream, seq, type(exc).__name__)
                    await asyncio.sleep(delay)
                    delay = min(self._limits.retry_cap_s, delay * 2)
                    continue
                with self._acking_lock:
                    self._acking.discard(seq)
                    self._confirmed[seq] = None
                    if len(self._confirmed) > self._limits.max_ack_pending:
                        del self._confirmed[next(iter(self._confirmed))]
                ticket.acked(self._stream, 1)
                return

        if not self._loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(ack(), self._loop)
            except RuntimeError:  # closing
                pass

    def _reply(self, msg: Msg) -> None:
        if not self._loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(msg.ack(), self._loop)
            except RuntimeError:  # closing
                pass

    # ---- the event loop's side ----

    def _run_loop(self) -> None:
        try:
            self._loop.run_until_complete(self._run())
        except Exception:
            log.exception("store: %s consumer stopped by an unexpected error", self._stream)
        finally:
            close_loop(self._loop)

    async def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                nc = await connect(self._url, auth=self._auth, name=f"marketprism-store-{self._stream}")
            except Exception as exc:
                attempt += 1
                log.warning("store: cannot connect to %s (%s); retry %d", redact(self._url), type(exc).__name__, attempt)
                await asyncio.sleep(min(self._limits.retry_cap_s, 0.1 * 2**attempt))
                continue
            self._nc = nc
            try:
                js = nc.jetstream()
                await ensure_streams(js, self._streams)
                await self._consume(js)
            except Exception as exc:
                attempt += 1
                log.warning("store: %s consumer lost (%s: %s); reconnecting", self._stream, type(exc).__name__, exc)
                await asyncio.sleep(min(self._limits.retry_cap_s, 0.1 * 2**attempt))
            finally:
                await asyncio.sleep(0.2)  # let pending acks go out
                self._nc = None
                await nc.close()
            self._idle.clear()

    async def _consume(self, js: JetStreamContext) -> None:
        config = ConsumerConfig(
            durable_name=self._durable, deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._limits.ack_wait_s, max_ack_pending=self._limits.max_ack_pending, max_deliver=-1,
        )
        await js.add_consumer(self._stream, config=config)
        info = await js.consumer_info(self._stream, self._durable)
        # Bound: what was acked is settled, and the gap check starts after it.
        self._inbox.put(info.ack_floor.stream_seq if info.ack_floor is not None else 0)
        sub = await js.pull_subscribe_bind(self._durable, self._stream)
        log.info("store: consuming %s as %s (%d pending)", self._stream, self._durable, info.num_pending or 0)
        batch = self._limits.fetch_batch
        while not self._stop.is_set():
            # Memory: fetched messages wait here only until the worker takes them; the worker's
            # own state keeps no payloads (see _in_flight).
            if self._inbox.qsize() >= self._limits.inbox_fetches:
                await asyncio.sleep(POLL_S)
                continue
            try:
                msgs = await sub.fetch(batch, timeout=1.0)
            except asyncio.TimeoutError:  # nats' own, or the bare one nats-py raises when a busy loop
                # spent the whole timeout on its no-wait probe: nothing is lost (what arrives late
                # waits in the subscription for the next fetch), so no reason to reconnect
                if await self._nothing_outstanding(js):
                    self._idle.set()
                continue
            self._idle.clear()
            size = sum(len(m.data) for m in msgs) // max(1, len(msgs)) + 1
            batch = max(1, min(self._limits.fetch_batch, self._limits.fetch_bytes // size))
            self._inbox.put(_Fetched(msgs, await self._first_available(js)))

    async def _nothing_outstanding(self, js: JetStreamContext) -> bool:
        """No message waiting, and none delivered and unacked: not even to a killed earlier
        store, whose messages JetStream redelivers only after ack_wait."""
        try:
            info = await js.consumer_info(self._stream, self._durable)
        except asyncio.TimeoutError:  # a busy server or a starved loop: ask again after the next fetch
            return False
        return not info.num_pending and not info.num_ack_pending

    async def _first_available(self, js: JetStreamContext) -> int:
        for attempt in range(5):
            try:
                return (await js.stream_info(self._stream)).state.first_seq
            except Exception as exc:  # a busy server: ask again rather than drop the fetched batch
                log.debug("store: stream_info %s failed (%s), attempt %d", self._stream, exc, attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
        raise ConnectionError(f"no stream info for {self._stream}")


class JetStreamSource(FixedPartitionedSource[Stored, int | None]):
    """The streams (`StreamSettings.streams()`) as `Stored` items, through durable consumers `{durable_prefix}-{stream}`.

    `ledger` is shared with the ClickHouse sink, which reports committed batches to it;
    `auth` defaults to the environment, as for the publisher. Once `drain_and_stop` is set,
    each partition ends when its stream has nothing more and all it delivered is acked.
    `stats` counts the lost stretches marked as gaps.
    """

    def __init__(
        self,
        url: str,
        *,
        ledger: AckLedger,
        streams: StreamSettings | None = None,
        auth: NatsAuth | None = None,
        durable_prefix: str = "marketprism-store",
        limits: ConsumerLimits | None = None,
        drain_and_stop: threading.Event | None = None,
    ) -> None:
        self.url = url
        self.drain_and_stop = drain_and_stop if drain_and_stop is not None else threading.Event()
        self.ledger = ledger
        self.streams = streams if streams is not None else StreamSettings()
        self.auth = auth if auth is not None else NatsAuth()
        self.durable_prefix = durable_prefix
        self.limits = limits if limits is not None else ConsumerLimits()
        self.stats = SourceStats()

    def list_parts(self) -> list[str]:
        return list(self.streams.streams())

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _StreamPartition:
        return _StreamPartition(
            url=self.url, auth=self.auth, streams=self.streams, stream=for_part,
            durable=f"{self.durable_prefix}-{for_part}", ledger=self.ledger, limits=self.limits,
            resume_seq=resume_state, drain_and_stop=self.drain_and_stop, stats=self.stats,
        )
