"""A TCP proxy that forwards to a server or fails the network in chosen ways, switchable at run time:
the sync fault tests and `scripts/simulate-stations --chaos` cut central off with it.

``TcpProxy`` listens on 127.0.0.1:<free port> and forwards every connection to the target
(PostgreSQL at 127.0.0.1:5432 by default). Its mode can change while connections are open:

``pass``
    forward both ways.
``drop``
    reset every open connection now (RST, as a crashed router or a firewall that starts rejecting
    does), and reset each new one as soon as it arrives: a client fails at once.
``stall``
    a black-holed network behind a middlebox that still ACKs: connections stay open and the
    kernel keeps accepting bytes, but nothing is forwarded either way. New connections are
    accepted and then hear nothing, so a client waits for its connect timeout; a query on an open
    connection waits forever (psycopg has no read timeout — see ``db.watchdog``). Back to ``pass``
    and whatever was held up flows again, as after a healed partition.

One selector thread owns every socket; mode changes and ``close_all`` are carried out by that
thread and return once done, so a test can rely on their effect. ``stop`` closes every socket
and joins the thread.
"""
from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MODES = ("pass", "drop", "stall")
_CHUNK = 65536
_MAX_BUFFERED = 1 << 20  # per direction: stop reading a side while the other is this far behind
_CONNECT_TIMEOUT = 3.0


class _Conn:
    """One proxied connection: the client's socket and, once connected, the upstream one."""

    __slots__ = ("client", "upstream", "to_upstream", "to_client", "client_eof", "upstream_eof")

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.to_upstream = bytearray()
        self.to_client = bytearray()
        self.client_eof = False
        self.upstream_eof = False


class TcpProxy:
    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432, *,
                 host: str = "127.0.0.1", mode: str = "pass") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self._mode = mode
        self._conns: list[_Conn] = []
        self._commands: list[tuple[Callable[[], None], threading.Event]] = []
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._sel: selectors.BaseSelector | None = None
        self._interest: dict[socket.socket, int] = {}
        self.accepted = 0  # connections accepted so far, whatever the mode
        self.forwarded_bytes = 0
        self.loop_error: BaseException | None = None

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        if self._thread is not None:
            raise RuntimeError("proxy already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, 0))
            listener.listen(64)
            listener.setblocking(False)
            self._wake_r, self._wake_w = socket.socketpair()
        except BaseException:
            listener.close()
            raise
        self._wake_r.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._sel = selectors.DefaultSelector()
        self._sel.register(listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listener, and join the thread. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        if thread.is_alive():
            self._call(self._halt)
            thread.join(timeout=10)
            if thread.is_alive():
                raise RuntimeError("proxy thread did not stop")
        self._thread = None
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None
        if self.loop_error is not None:
            raise RuntimeError(f"proxy loop failed: {self.loop_error!r}") from self.loop_error

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- controls (any thread) ----------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        """Switch mode; returns once the proxy thread has carried it out (``drop``: every open
        connection is already reset)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self._call(lambda: self._switch(mode))

    def close_all(self) -> None:
        """Reset every open connection now, whatever the mode; new ones are served as the mode says."""
        self._call(self._reset_all)

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def url(self, url: str, **params: Any) -> str:
        """``url`` (``postgresql://user@host:port/db?...``) pointed at this proxy, with ``params``
        added to (or replacing those in) its query, e.g. ``connect_timeout=2``."""
        if not self.port:
            raise RuntimeError("start the proxy first")
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{self.host}:{self.port}" if userinfo else f"{self.host}:{self.port}"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.update({k: str(v) for k, v in params.items()})
        return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), parts.fragment))

    def _call(self, fn: Callable[[], None]) -> None:
        if not self.alive:
            raise RuntimeError("proxy is not running")
        done = threading.Event()
        with self._lock:
            self._commands.append((fn, done))
        assert self._wake_w is not None
        self._wake_w.send(b"x")
        if not done.wait(timeout=10):
            raise RuntimeError("proxy thread did not answer")
        if self.loop_error is not None:
            raise RuntimeError(f"proxy loop failed: {self.loop_error!r}") from self.loop_error

    # --- the proxy thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        assert self._sel is not None
        try:
            while self._running:
                for key, events in self._sel.select(timeout=1.0):
                    if key.data == "wake":
                        self._run_commands()
                    elif key.data == "accept":
                        self._accept()
                    else:
                        self._service(key.data, key.fileobj, events)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - reported by stop() / the next control call
            self.loop_error = exc
        finally:
            self._shutdown_sockets()
            self._release_waiters()

    def _run_commands(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            commands, self._commands = self._commands, []
        for fn, done in commands:
            try:
                fn()
            finally:
                done.set()

    def _release_waiters(self) -> None:
        with self._lock:
            commands, self._commands = self._commands, []
        for _, done in commands:
            done.set()

    def _halt(self) -> None:
        self._running = False

    def _switch(self, mode: str) -> None:
        self._mode = mode
        if mode == "drop":
            self._reset_all()
            return
        for conn in list(self._conns):
            if mode == "pass" and conn.upstream is None and not self._connect_upstream(conn):
                continue
            self._update(conn)

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            self.accepted += 1
            if self._mode == "drop":
                _reset(client)
                continue
            client.setblocking(False)
            conn = _Conn(client)
            self._conns.append(conn)
            if self._mode == "pass" and not self._connect_upstream(conn):
                continue
            self._update(conn)

    def _connect_upstream(self, conn: _Conn) -> bool:
        try:
            upstream = socket.create_connection(self.target, timeout=_CONNECT_TIMEOUT)
        except OSError:
            self._close(conn, reset=True)  # the server refuses: so does the proxy
            return False
        upstream.setblocking(False)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.upstream = upstream
        return True

    def _service(self, conn: _Conn, sock: socket.socket, events: int) -> None:
        if conn not in self._conns or self._mode != "pass":
            return
        upstream = conn.upstream
        assert upstream is not None
        from_client = sock is conn.client
        try:
            if events & selectors.EVENT_READ:
                data = sock.recv(_CHUNK)
                if not data:
                    if from_client:
                        conn.client_eof = True
                    else:
                        conn.upstream_eof = True
                else:
                    (conn.to_upstream if from_client else conn.to_client).extend(data)
            if events & selectors.EVENT_WRITE:
                buf = conn.to_client if from_client else conn.to_upstream
                if buf:
                    sent = sock.send(buf)
                    self.forwarded_bytes += sent
                    del buf[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(conn, reset=True)
            return
        # A side that hung up: pass on what it said before it went, then close both.
        if (conn.client_eof and not conn.to_upstream) or (conn.upstream_eof and not conn.to_client):
            self._close(conn, reset=False)
            return
        self._update(conn)

    def _update(self, conn: _Conn) -> None:
        """Register each socket for what it can do now in this mode (nothing, when stalled)."""
        moving = self._mode == "pass" and conn.upstream is not None
        client_mask = upstream_mask = 0
        if moving:
            if not conn.client_eof and len(conn.to_upstream) < _MAX_BUFFERED:
                client_mask |= selectors.EVENT_READ
            if conn.to_client:
                client_mask |= selectors.EVENT_WRITE
            if not conn.upstream_eof and len(conn.to_client) < _MAX_BUFFERED:
                upstream_mask |= selectors.EVENT_READ
            if conn.to_upstream:
                upstream_mask |= selectors.EVENT_WRITE
        self._register(conn.client, client_mask, conn)
        if conn.upstream is not None:
            self._register(conn.upstream, upstream_mask, conn)

    def _register(self, sock: socket.socket, mask: int, conn: _Conn) -> None:
        assert self._sel is not None
        current = self._interest.get(sock, 0)
        if mask == current:
            return
        if current and mask:
            self._sel.modify(sock, mask, conn)
        elif mask:
            self._sel.register(sock, mask, conn)
        else:
            self._sel.unregister(sock)
        if mask:
            self._interest[sock] = mask
        else:
            self._interest.pop(sock, None)

    def _close(self, conn: _Conn, *, reset: bool) -> None:
        if conn in self._conns:
            self._conns.remove(conn)
        for sock in (conn.client, conn.upstream):
            if sock is None:
                continue
            if self._interest.pop(sock, 0):
                assert self._sel is not None
                self._sel.unregister(sock)
            if reset:
                _reset(sock)
            else:
                sock.close()

    def _reset_all(self) -> None:
        for conn in list(self._conns):
            self._close(conn, reset=True)

    def _shutdown_sockets(self) -> None:
        for conn in list(self._conns):
            self._close(conn, reset=True)
        if self._sel is not None:
            self._sel.close()
            self._sel = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0) rather than FIN: the peer's next read or write fails at once."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
