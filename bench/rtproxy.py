#!/usr/bin/python3
"""rtproxy: a TCP proxy on 127.0.0.1 that adds latency and counts round trips.

    /usr/bin/python3 bench/rtproxy.py --target PORT [--delay MS] [--port 0]
        [--port-file FILE] [--log FILE] [--trace FILE] [--no-connect-delay]

Standard library only (Debian's /usr/bin/python3; call it by that path, a
pyenv python3 may shadow it on PATH).

Latency.  Every chunk read from one side is written to the other side D ms
(--delay, default 25, one way) after the proxy read it, in order, in both
directions; a half-close (EOF) is forwarded the same way.  One round trip is
therefore RTT = 2*D.  The kernel answers the client's SYN at once, so the
TCP handshake itself cannot be delayed; instead the proxy opens its own
connection to the server only 3*D after it accepted the client (unless
--no-connect-delay), and nothing reaches the server before that.  On a real
link with one-way delay D the server accepts at 3*D (SYN, SYN-ACK, ACK) and
its first byte reaches the client at 4*D; here too.  So a client that waits
W times spends about W * RTT waiting, handshake included.

Counting.  For each connection the proxy records the direction of every
chunk in the order it reads them (the proxy sits in the middle of the
path; with D much larger than the time either end takes to answer, that is
the order both ends see).  waits starts at 1 for the TCP handshake and the
direction starts as client->server (the SYN).  Each time a chunk from the
server is read while the last direction was client->server, waits goes up
by one and the direction becomes server->client; a chunk from the client
sets it back to client->server.  So the server's greeting (or, with
implicit TLS, its ServerHello) counts as one, and so does every later
reply that the client had to wait for after it last sent something.  Server
data read after the client closed its side (EOF) is not counted: the client
no longer waits for it.

Think times.  client_ms adds up, for every turn of the client (a client
chunk after server data), the time from when the client got the server's
data (D after the proxy read it) to when the proxy read the client's next
chunk, plus the time from accept to the client's first chunk; server_ms
does the same for the server's turns (each wait).  Both are measured at the
proxy, so each includes up to a millisecond of the proxy's own scheduling.

Output.  When both directions are closed, one line per connection is
appended to --log (default: stdout):

    conn=1 waits=8 c2s_chunks=9 s2c_chunks=12 c2s_bytes=3210 s2c_bytes=6543 \
        ms=412.3 client_ms=9.1 server_ms=17.4 delay_ms=25

--trace FILE writes one line per chunk: connection, time since accept (ms),
direction, size, the wait number it started (if any), the think time of
the side that sent it (when it starts a turn) and what it looks like: the
first line of plaintext SMTP, or the TLS record types.
--port 0 (the default) picks a free port; it is written to --port-file.
The proxy runs until it is killed (SIGTERM or SIGINT).
"""

import argparse
import asyncio
import os
import signal
import sys
import time

TLS_TYPES = {20: "ccs", 21: "alert", 22: "hs", 23: "data"}


def describe(data):
    """A short description of a chunk for the trace."""
    if len(data) >= 5 and data[0] in TLS_TYPES and data[1] == 3:
        recs = []
        i = 0
        while i + 5 <= len(data):
            t = data[i]
            n = int.from_bytes(data[i + 3:i + 5], "big")
            name = TLS_TYPES.get(t, str(t))
            if t == 22 and i + 5 < len(data) and data[i + 5] in (1, 2):
                name = {1: "ClientHello", 2: "ServerHello"}[data[i + 5]]
            recs.append("%s(%d)" % (name, n))
            i += 5 + n
        return "TLS " + " ".join(recs)
    text = data.decode("latin-1")
    lines = [l for l in text.split("\r\n") if l]
    if all(32 <= ord(c) < 127 or c in "\r\n" for c in text[:200]):
        first = lines[0][:60] if lines else ""
        more = " (+%d lines)" % (len(lines) - 1) if len(lines) > 1 else ""
        return repr(first) + more
    return "binary"


class Conn:
    seq = 0

    def __init__(self, proxy):
        Conn.seq += 1
        self.id = Conn.seq
        self.proxy = proxy
        self.t0 = time.monotonic()
        self.waits = 1          # the TCP handshake
        self.last = "c"         # the SYN went client->server
        self.client_eof = False
        self.chunks = {"c": 0, "s": 0}
        self.bytes = {"c": 0, "s": 0}
        self.last_t = {"c": self.t0, "s": self.t0}
        self.upstream_t = None
        self.client_think = 0.0
        self.server_think = 0.0

    def ms(self):
        return (time.monotonic() - self.t0) * 1000.0

    def saw(self, side, data):
        started = None
        think = None
        now = time.monotonic()
        if side == "s" and self.last == "c" and not self.client_eof:
            self.waits += 1
            started = self.waits
            # The server got the client's last chunk D after we read it
            # (and not before the proxy connected to it).
            think = max(0.0, now - max(self.last_t["c"] + self.proxy.delay,
                                       self.upstream_t or now))
            self.server_think += think
        elif side == "c" and self.last == "s":
            # The client got the server's last chunk D after we read it.
            think = max(0.0, now - (self.last_t["s"] + self.proxy.delay))
            self.client_think += think
        elif side == "c" and self.chunks["c"] == 0:
            # The first bytes after connect (implicit TLS: ClientHello).
            think = now - self.t0
            self.client_think += think
        if side == "s" and not self.client_eof:
            self.last = "s"
        elif side == "c":
            self.last = "c"
        self.last_t[side] = now
        self.chunks[side] += 1
        self.bytes[side] += len(data)
        if self.proxy.trace:
            self.proxy.trace.write("conn=%d t=%9.3f %s %6d %-7s %-13s %s\n" % (
                self.id, self.ms(), "C->S" if side == "c" else "S->C",
                len(data), ("wait=%d" % started) if started else "",
                ("%s %.1fms" % ("client" if side == "c" else "server",
                                think * 1000)) if think is not None else "",
                describe(data)))
            self.proxy.trace.flush()


async def pump(conn, side, reader, queue):
    """Read chunks from one side and queue them with their due time."""
    delay = conn.proxy.delay
    while True:
        try:
            data = await reader.read(65536)
        except (ConnectionError, OSError):
            data = b""
        now = time.monotonic()
        if not data:
            if side == "c":
                conn.client_eof = True
            await queue.put((now + delay, None))
            return
        conn.saw(side, data)
        await queue.put((now + delay, data))


async def deliver(queue, writer_fut):
    """Write queued chunks when they are due; EOF when it is due."""
    writer = None
    while True:
        due, data = await queue.get()
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if writer is None:
            writer = await writer_fut
            if writer is None:
                return
        try:
            if data is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
        except (ConnectionError, OSError):
            # The other side is gone: drain the queue, nothing to deliver.
            while data is not None:
                due, data = await queue.get()
            return


class Proxy:
    def __init__(self, args):
        self.target = args.target
        self.delay = args.delay / 1000.0
        self.connect_delay = 0.0 if args.no_connect_delay else 3 * self.delay
        self.log = open(args.log, "a", buffering=1) if args.log else sys.stdout
        self.trace = open(args.trace, "a", buffering=1) if args.trace else None

    async def handle(self, creader, cwriter):
        conn = Conn(self)
        loop = asyncio.get_running_loop()
        server_writer = loop.create_future()
        to_server = asyncio.Queue()
        to_client = asyncio.Queue()
        client_writer = loop.create_future()
        client_writer.set_result(cwriter)
        tasks = [
            asyncio.create_task(pump(conn, "c", creader, to_server)),
            asyncio.create_task(deliver(to_server, server_writer)),
            asyncio.create_task(deliver(to_client, client_writer)),
        ]
        swriter = None
        try:
            if self.connect_delay:
                await asyncio.sleep(self.connect_delay)
            try:
                sreader, swriter = await asyncio.open_connection(
                    "127.0.0.1", self.target)
            except OSError as e:
                print("rtproxy: cannot connect to 127.0.0.1:%d: %s" %
                      (self.target, e), file=sys.stderr)
                server_writer.set_result(None)
                cwriter.close()
                for t in tasks:
                    t.cancel()
                return
            conn.upstream_t = time.monotonic()
            server_writer.set_result(swriter)
            tasks.append(asyncio.create_task(
                pump(conn, "s", sreader, to_client)))
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for w in (cwriter, swriter):
                if w is not None:
                    w.close()
            self.log.write(
                "conn=%d waits=%d c2s_chunks=%d s2c_chunks=%d c2s_bytes=%d "
                "s2c_bytes=%d ms=%.1f client_ms=%.1f server_ms=%.1f "
                "delay_ms=%g\n" % (
                    conn.id, conn.waits, conn.chunks["c"], conn.chunks["s"],
                    conn.bytes["c"], conn.bytes["s"], conn.ms(),
                    conn.client_think * 1000, conn.server_think * 1000,
                    self.delay * 1000))


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", type=int, required=True,
                    help="server port on 127.0.0.1")
    ap.add_argument("--delay", type=float, default=25.0,
                    help="one-way delay in ms (default 25)")
    ap.add_argument("--port", type=int, default=0,
                    help="port to listen on, 127.0.0.1 (default: any free)")
    ap.add_argument("--port-file", help="write the listening port here")
    ap.add_argument("--log", help="append one line per connection here")
    ap.add_argument("--trace", help="append one line per chunk here")
    ap.add_argument("--no-connect-delay", action="store_true",
                    help="connect to the server at once (no 3*D wait)")
    args = ap.parse_args()
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    else:
        print("rtproxy: listening on 127.0.0.1:%d" % port, file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
