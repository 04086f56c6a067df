"""A fake Zebra network label printer: a real TCP server on 127.0.0.1, for tests, demos and
training mode.

It records what each connection sent and answers ``~HS`` the way a Zebra does (three strings,
each ``<STX>…<ETX><CR><LF>``, ZPL II Programming Guide, ``~HS``). :meth:`set_state` makes it
misbehave as real printers do:

=============  ===============================================================================
``ok``         answers ``~HS`` with no flag set; listens again if it was offline (same port)
``paper_out``  ``~HS`` string 1, field 2 (paper out) = 1
``head_open``  ``~HS`` string 2, field 3 (head up) = 1
``paused``     ``~HS`` string 1, field 3 (pause) = 1
``silent``     accepts connections but never reads nor answers (a hung printer)
``offline``    closes the listening socket (connection refused) and every open connection
=============  ===============================================================================

One thread runs a selector over the listener and every connection; every socket is opened and
closed on that thread (set_state hands it a command and waits), so :meth:`stop` leaves no
thread or socket behind.

    with FakeLabelPrinter() as fake:
        RawTcpPrinter(fake.host, fake.port).send(PrintPayload(zpl, "zpl", "label"))
        assert fake.wait_jobs(1) and fake.jobs == [zpl]
"""
from __future__ import annotations

import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["STATES", "FakeLabelPrinter", "host_status_reply"]

STATES: tuple[str, ...] = ("ok", "paper_out", "head_open", "paused", "silent", "offline")

STX, ETX, CRLF = b"\x02", b"\x03", b"\r\n"
HS = b"~HS"
_COMMAND_TIMEOUT_S = 5.0


def host_status_reply(*, paper_out: bool = False, paused: bool = False, head_open: bool = False,
                      ribbon_out: bool = False, formats_in_buffer: int = 0,
                      label_length_dots: int = 1218) -> bytes:
    """The three ``~HS`` strings, written out from the ZPL II guide's field lists.

    String 1 ``aaa,b,c,dddd,eee,f,g,h,iii,j,k,l``: communication settings (030: 9600 baud,
    8 data bits, 1 stop bit), paper out, pause, label length in dots, formats in the receive
    buffer, buffer full, diagnostic mode, partial format, unused 000, corrupt RAM, under and
    over temperature. String 2 ``mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www``: function settings, unused,
    head up, ribbon out, thermal transfer, print mode (2 tear-off), print width mode, label
    waiting, labels remaining in batch, format while printing (always 1), graphics stored.
    String 3 ``xxxx,y``: password, static RAM installed.
    """
    b = lambda flag: "1" if flag else "0"  # noqa: E731
    line1 = f"030,{b(paper_out)},{b(paused)},{label_length_dots:04d},{formats_in_buffer:03d},0,0,0,000,0,0,0"
    line2 = f"001,0,{b(head_open)},{b(ribbon_out)},1,2,6,0,00000000,1,000"
    line3 = "1234,0"
    return b"".join(STX + line.encode("ascii") + ETX + CRLF for line in (line1, line2, line3))


@dataclass
class _Connection:
    sock: socket.socket
    received: bytearray = field(default_factory=bytearray)
    answered: int = 0  # ~HS queries already answered on this connection


class FakeLabelPrinter:
    """A label printer on ``(host, port)``; port 0 picks a free one (see :attr:`port`).

    ``jobs``: the bytes each connection sent, in the order the connections ended, with the
    ``~HS`` queries taken out; a connection that sent only queries adds no job.
    ``received``: everything each connection sent, queries included. ``status_queries``: how
    many ``~HS`` were answered (a silent printer reads none). ``connections``: how many
    connections were accepted.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._want_port = port
        self.port = 0
        self.jobs: list[bytes] = []
        self.received: list[bytes] = []
        self.status_queries = 0
        self.connections = 0
        self._state = "ok"
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._commands: queue.Queue[tuple[Callable[[], None], threading.Event, list[BaseException]]] = queue.Queue()
        self._selector: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._open: dict[socket.socket, _Connection] = {}
        self._held: list[socket.socket] = []  # accepted while silent: never read
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle --

    def start(self) -> FakeLabelPrinter:
        if self._thread is not None:
            raise RuntimeError("fake printer already started")
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            self._listen()
        except OSError:
            self._close_all()
            raise
        self._thread = threading.Thread(target=self._run, name=f"fake-label-printer-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listener and end the thread. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake()
        thread.join(_COMMAND_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError("fake printer thread did not end")
        self._thread = None
        self._close_all()

    def __enter__(self) -> FakeLabelPrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state --

    @property
    def state(self) -> str:
        return self._state

    def set_state(self, state: str) -> None:
        """Change the state; when this returns, it is in force (e.g. the port refuses)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        self._call(lambda: self._apply(state))

    def wait_jobs(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` jobs have been recorded (their connections ended)."""
        return self._wait(lambda: len(self.jobs) >= count, timeout)

    def wait_received(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` connections have ended (jobs or not)."""
        return self._wait(lambda: len(self.received) >= count, timeout)

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    # -- the server thread --

    def _run(self) -> None:
        assert self._selector is not None
        while not self._stopping:
            for key, _events in self._selector.select(timeout=1.0):
                # A command earlier in this batch may have closed the socket of a later event.
                if key.data == "wake":
                    self._drain_wake()
                elif key.data == "listen":
                    if key.fileobj is self._listener:
                        self._accept()
                elif key.fileobj in self._open:
                    self._read(key.fileobj)  # type: ignore[arg-type]
        # Connections still open at stop have ended: record what they sent.
        for sock in list(self._open):
            self._finish(sock)

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                fn, done, errors = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                errors.append(exc)
            done.set()

    def _accept(self) -> None:
        assert self._listener is not None and self._selector is not None
        try:
            sock, _addr = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self.connections += 1
        if self._state == "silent":
            self._held.append(sock)
            return
        sock.setblocking(False)
        self._open[sock] = _Connection(sock)
        self._selector.register(sock, selectors.EVENT_READ, "conn")

    def _read(self, sock: socket.socket) -> None:
        conn = self._open[sock]
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._finish(sock)
            return
        conn.received += chunk
        # Count queries over the whole stream so that a "~HS" split across reads is answered.
        queries = bytes(conn.received).count(HS)
        while conn.answered < queries:
            conn.answered += 1
            self.status_queries += 1
            self._answer(sock)

    def _answer(self, sock: socket.socket) -> None:
        reply = host_status_reply(
            paper_out=self._state == "paper_out",
            paused=self._state == "paused",
            head_open=self._state == "head_open",
        )
        sock.setblocking(True)
        sock.settimeout(1.0)
        try:
            sock.sendall(reply)
        except OSError:
            pass  # the client went away; its recv side ends the connection
        finally:
            sock.setblocking(False)

    def _finish(self, sock: socket.socket) -> None:
        assert self._selector is not None
        conn = self._open.pop(sock)
        self._selector.unregister(sock)
        sock.close()
        raw = bytes(conn.received)
        job = raw.replace(HS, b"")
        with self._changed:
            self.received.append(raw)
            if job:
                self.jobs.append(job)
            self._changed.notify_all()

    def _apply(self, state: str) -> None:
        assert self._selector is not None
        previous, self._state = self._state, state
        if state == "offline":
            if self._listener is not None:
                self._selector.unregister(self._listener)
                self._listener.close()
                self._listener = None
            for sock in list(self._open):
                self._finish(sock)
            self._close_held()
        elif state == "silent":
            # A hung printer stops reading what is already connected too.
            for sock in list(self._open):
                self._selector.unregister(sock)
                conn = self._open.pop(sock)
                with self._changed:
                    self.received.append(bytes(conn.received))
                    self._changed.notify_all()
                self._held.append(sock)
        elif previous == "silent":
            self._close_held()  # the hung printer was switched off and on again
        if state != "offline" and self._listener is None:
            self._listen()

    # -- sockets --

    def _listen(self) -> None:
        assert self._selector is not None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Coming back "ok" on the same port while closed connections sit in TIME_WAIT.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port or self._want_port))
            listener.listen(16)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, "listen")

    def _close_held(self) -> None:
        for sock in self._held:
            sock.close()
        self._held.clear()

    def _close_all(self) -> None:
        """After the thread has ended (or before it started): close whatever is left."""
        for sock in list(self._open):
            self._open.pop(sock).sock.close()
        self._close_held()
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._listener = self._wake_r = self._wake_w = None
        if self._selector is not None:
            self._selector.close()
            self._selector = None

    def _wake(self) -> None:
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"\0")
            except OSError:
                pass

    def _call(self, fn: Callable[[], None]) -> None:
        if self._thread is None:
            raise RuntimeError("fake printer not started")
        done = threading.Event()
        errors: list[BaseException] = []
        self._commands.put((fn, done, errors))
        self._wake()
        if not done.wait(_COMMAND_TIMEOUT_S):
            raise RuntimeError("fake printer thread did not answer")
        if errors:
            raise errors[0]
