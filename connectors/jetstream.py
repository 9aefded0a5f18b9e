"""Everything a MarketPrism client of NATS shares: how to connect (credentials, TLS) and
the JetStream streams it expects, created or brought to our settings.

Used by the publisher (`connectors.nats`), the store's consumer (`connectors.jetstream_source`),
the control bus and the benches, so they all log in the same way. Credentials come from
`NatsAuth` (the environment by default) and never reach a log line, a metric or an error
message: URLs are logged without their user info, and options are passed, never printed.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StoreCompression, StreamConfig
from nats.js.errors import BadRequestError

from schemas.streams import NatsAuth, StreamSettings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2


def redact(url: str) -> str:
    """`nats://user:secret@host:4222` -> `nats://host:4222`: a URL fit for a log line."""
    return re.sub(r"//[^@/]*@", "//", url)


def tls_context(auth: NatsAuth) -> ssl.SSLContext | None:
    """A client TLS context trusting `tls_ca_file` (and presenting a client certificate if
    given), or None when no TLS file is set (a `tls://` URL then uses the system's CAs)."""
    if auth.tls_ca_file is None and auth.tls_cert_file is None:
        return None
    context = ssl.create_default_context(cafile=str(auth.tls_ca_file) if auth.tls_ca_file else None)
    if auth.tls_cert_file is not None and auth.tls_key_file is not None:
        context.load_cert_chain(str(auth.tls_cert_file), str(auth.tls_key_file))
    return context


def connect_options(auth: NatsAuth) -> dict[str, Any]:
    """nats-py keyword arguments for `auth`: one login method, and TLS if configured."""
    options: dict[str, Any] = {}
    if auth.user is not None:
        options.update(user=auth.user, password=auth.secret_password())
    elif (token := auth.secret_token()) is not None:
        options.update(token=token)
    elif auth.creds_file is not None:
        options.update(user_credentials=str(auth.creds_file))
    context = tls_context(auth)
    if context is not None:
        options.update(tls=context)
    return options


async def connect(url: str, *, auth: NatsAuth, name: str, **options: Any) -> Client:
    """A nats-py connection to `url`, logged in as `auth` says; `options` go to `nats.connect`.
    Unless `options` say otherwise, the client's errors (a failed reconnect while NATS is
    away, say) are one warning line each, not nats-py's traceback."""
    options.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    options.setdefault("error_cb", _warning_line(name))
    return await nats.connect(url, name=name, **options, **connect_options(auth))


def _warning_line(name: str) -> Callable[[Exception], Awaitable[None]]:
    async def warn(exc: Exception) -> None:
        log.warning("NATS client %s: %s: %s", name, type(exc).__name__, exc)

    return warn


async def _add_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if config.compression in (None, StoreCompression.NONE) or "compression" not in (exc.description or "").lower():
            raise
        log.warning("stream %s: the server cannot compress streams (%s); storing it uncompressed", config.name, exc.description)
        config.compression = None
        await js.add_stream(config)


def stream_config(name: str, streams: StreamSettings) -> StreamConfig:
    limits = streams.streams()[name]
    return StreamConfig(
        name=name,
        subjects=limits.subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_msgs=limits.max_msgs,
        max_bytes=limits.max_bytes,
        max_age=float(limits.max_age_s),
        max_consumers=limits.max_consumers,
        num_replicas=limits.replicas,
        duplicate_window=float(streams.duplicate_window_s),
        compression=StoreCompression.S2 if streams.compression == "s2" else StoreCompression.NONE,
    )


async def ensure_streams(js: JetStreamContext, streams: StreamSettings) -> None:
    """Create the streams, or bring an existing one to our settings (add_stream is idempotent).
    A server older than 2.10 knows no stream compression: the streams are then made without it."""
    for name in streams.streams():
        config = stream_config(name, streams)
        try:
            await _add_stream(js, config)
        except BadRequestError:  # exists with another configuration
            try:
                await js.update_stream(config)
            except BadRequestError as exc:
                log.error("stream %s: kept its existing configuration, the server refused ours: %s", name, exc.description)
            else:
                log.info("stream %s: configuration updated", name)
