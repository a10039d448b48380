#!/usr/bin/python3
"""faultsmtp: a scriptable, hostile SMTP server for fault-injection tests.

Usage: faultsmtp.py --script FILE --port-file PF --log FILE [--cert PEM --key PEM]
                    [--implicit-tls] [--connections N] [--max-seconds S]
                    [--tls-max 1.2|1.3] [--cb-corrupt] [--scram-final ok|wrong|skip]
                    [--scram-iter N] [--listen-port N]

Binds 127.0.0.1 on a free port, writes the port to PF (atomically), then serves
N connections one after another, running the whole script for each.  Every
byte received from the client (decrypted, once TLS is up) is appended to the
log FILE; a human-readable trace goes to FILE.trace.

Exit status: 0 all steps passed, 1 a step's expectation failed (reason on
stderr), 2 bad usage or script, 124 hard timeout (--max-seconds, default 30).

Script: one step per line; blank lines and lines starting with '#' are
ignored; leading whitespace is ignored.  The verb is separated from its
argument by ONE space or tab; the rest of the line is the argument, verbatim
(trailing spaces included).  TEXT takes C escapes: \\r \\n \\t \\0 \\xHH \\\\.
  send TEXT            queue TEXT CRLF (queued replies go out in one write,
                       flushed before any read, sleep, trickle, TLS or close)
  sendraw TEXT         queue exactly TEXT, no CRLF appended
  flush                write queued output now
  cork / uncork        flush, then hold TCP output until uncork (TCP_CORK):
                       several writes (TLS records) then leave in one segment
  expect REGEX         read one line, require re.match(REGEX, line, re.I)
  recv                 read one line, any content
  data                 read a DATA body up to and including the "." line
  bdat                 read "BDAT n [LAST]" and then exactly n octets
  starttls             server-side TLS handshake now (needs --cert/--key)
  starttls_inject TEXT queue TEXT CRLF right behind the queued reply (same
                       segment), then do the handshake
  sleep SECONDS        flush, then sleep
  trickle SECONDS TEXT send TEXT CRLF one byte at a time, SECONDS apart
  close                close the connection now
  wait_close           read (and log) until the client closes
  ehlo [CAP...]        expect EHLO/HELO; EHLO gets a multi-line 250 listing
                       each CAP, its first '=' and every '_' made spaces
                       (AUTH=PLAIN_LOGIN -> AUTH PLAIN LOGIN; write \\x3d for a
                       literal '='); HELO gets '250 ok'
  auth_plain USER PASS expect AUTH PLAIN [b64] (334 if no initial response),
                       require \\0USER\\0PASS: 235, else 535 and fail
  auth_scram MECH USER PASS
                       server-side SCRAM (RFC 5802/7677), MECH one of
                       SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS forms:
                       expect AUTH MECH [b64 client-first] (334 if none),
                       send the server-first (i=4096), check the client-final
                       (c= channel binding, nonce, proof), send v= in a 334,
                       expect the empty line, 235.  -PLUS requires p=tls-unique
                       on TLS 1.2 and p=tls-exporter on TLS 1.3 (the latter
                       read through ctypes; if that is impossible, 535 and
                       fail: use --tls-max 1.2); a non-PLUS MECH requires n or
                       y (y is refused if the last EHLO offered a -PLUS).  Any
                       mismatch: 535 5.7.8 REASON and fail.  The trace names
                       the channel binding type used.
  mail_ok / rcpt_ok / data_ok   expect MAIL FROM / RCPT TO / DATA; 250/250/354
  loop_until_quit      MAIL/RCPT/RSET/NOOP 250, DATA 354+body+250, BDAT
                       chunk+250, EHLO/HELO 250, others 502, QUIT 221+close
When the script ends (and after QUIT in loop_until_quit) the close is
graceful: plaintext sends FIN and logs what arrives until the client's EOF
(at most 1 s), so the log is complete; TLS sends close_notify and waits (at
most 1 s) for the client's.  The `close` step is abrupt: no close_notify.

--tls-max 1.2 caps the server's TLS version (a client then has only tls-unique
for channel binding).  --cb-corrupt makes auth_scram check the client's channel
binding against altered data, as a man in the middle (who has a different TLS
session with each side) would see it: a binding client must then be refused.
--scram-final wrong sends a false server signature (v=) and then requires the
client to abort ("*"; the step passes without replying to it, so the script
goes on, e.g. with wait_close); --scram-final skip sends 235 at once instead of
v=, as an impostor that does not know the password would (the step passes).
--scram-iter N is the iteration count auth_scram asks for (default 4096).
--listen-port N listens on that port instead of a free one the kernel picks
(e.g. 465, to test what a port number implies).
"""
import argparse
import base64
import binascii
import ctypes
import hashlib
import hmac
import os
import re
import socket
import ssl
import sys
import threading
import time

LINE_MAX = 64 * 1024
HOSTNAME = b"faultsmtp.test"
LINGER = 1.0  # seconds to wait for the client's EOF after a graceful close


class ScriptError(Exception):
    """The script itself is malformed (exit 2)."""


class Fail(Exception):
    """A step's expectation failed (exit 1)."""


ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}


def unescape(text):
    out, i = bytearray(), 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
        elif i + 1 < len(text) and text[i + 1] in ESCAPES:
            out += ESCAPES[text[i + 1]]
            i += 2
        elif text[i + 1:i + 2] == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            raise ScriptError(f"bad escape at {text[i:i + 4]!r}")
    return bytes(out)


def show(data, limit=1000):
    """Printable form of bytes for the trace: \\r, \\n, \\xHH escapes; long data cut."""
    text = bytes(data[:limit]).decode("latin-1").encode("unicode_escape").decode("ascii")
    return text + (f"...[{len(data)} bytes in all]" if len(data) > limit else "")


NOARG = {"recv", "data", "bdat", "starttls", "close", "wait_close", "flush", "cork", "uncork",
         "mail_ok", "rcpt_ok", "data_ok", "loop_until_quit"}


def seconds(text):
    value = float(text)
    if not 0 <= value < 3600:
        raise ValueError(f"bad number of seconds {text!r}")
    return value


def parse_arg(verb, rest):
    if verb in NOARG:
        if rest.strip():
            raise ScriptError(f"{verb} takes no argument")
        return None
    if verb in ("send", "sendraw", "starttls_inject"):
        return unescape(rest)
    if verb == "expect":
        return re.compile(rest.encode("utf-8"), re.I)
    if verb == "sleep":
        return seconds(rest)
    if verb == "trickle":
        secs, _, text = rest.partition(" ")
        return seconds(secs), unescape(text)
    if verb == "ehlo":
        # KEYWORD=A_B -> "KEYWORD A B"; escapes are decoded last, so \x3d / \x5f stay literal
        return [unescape(cap.replace("=", " ", 1).replace("_", " ")) for cap in rest.split()]
    if verb == "auth_plain":
        words = rest.split()
        if len(words) != 2:
            raise ScriptError("auth_plain takes USER PASS")
        return b"\0" + unescape(words[0]) + b"\0" + unescape(words[1])
    if verb == "auth_scram":
        words = rest.split()
        if len(words) != 3:
            raise ScriptError("auth_scram takes MECH USER PASS")
        mech = words[0].upper()
        if mech.removesuffix("-PLUS") not in SCRAM_HASHES:
            raise ScriptError(f"auth_scram: unknown mechanism {words[0]!r} (one of "
                              "SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS forms)")
        return mech, unescape(words[1]), unescape(words[2])
    raise ScriptError(f"unknown step {verb!r}")


SCRAM_HASHES = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}
SCRAM_ITER = 4096


def tls_exporter(sslsock):
    """RFC 9266 tls-exporter channel binding (32 octets) of a TLS 1.3 SSLSocket, or None.

    Python's ssl module has no keying-material exporter, so this calls OpenSSL's
    SSL_export_keying_material on the SSL* inside the _ssl._SSLSocket object (CPython
    3.x: PyObject_HEAD, then PyObject *Socket, then SSL *ssl).  The pointer is
    checked against the socket's fd before it is used for the export."""
    try:
        if sys.implementation.name != "cpython" or hasattr(sys, "gettotalrefcount"):
            return None
        obj = sslsock._sslobj
        if type(obj).__name__ != "_SSLSocket":
            return None
        libssl = ctypes.CDLL("libssl.so.3")
        libssl.SSL_get_fd.argtypes = [ctypes.c_void_p]
        libssl.SSL_export_keying_material.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
            ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
        offset = object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)
        ptr = ctypes.c_void_p.from_address(id(obj) + offset).value
        if not ptr or libssl.SSL_get_fd(ptr) != sslsock.fileno():
            return None
        out = ctypes.create_string_buffer(32)
        label = b"EXPORTER-Channel-Binding"
        if libssl.SSL_export_keying_material(ptr, out, 32, label, len(label), None, 0, 0) != 1:
            return None
        return out.raw
    except (OSError, AttributeError, ValueError):
        return None


def saslname(text):
    """Decode a SCRAM saslname (=2C is ',', =3D is '='); None if malformed."""
    if re.search(r"=(?!2C|3D)", text):
        return None
    return text.replace("=2C", ",").replace("=3D", "=")


def parse_script(path):
    steps = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n").lstrip()
            if not line or line.startswith("#"):
                continue
            verb, rest = re.match(r"(\S+)(?:[ \t](.*))?$", line).group(1, 2)
            try:
                steps.append((lineno, line, verb, parse_arg(verb, rest or "")))
            except (ValueError, re.error, ScriptError) as e:
                raise ScriptError(f"{path}:{lineno}: {line!r}: {e}") from None
    return steps


class Server:
    def __init__(self, args):
        self.args = args
        self.log = open(args.log, "ab", buffering=0)
        self.trace_f = open(args.log + ".trace", "a", encoding="utf-8")
        self.lock = threading.Lock()
        self.where = "startup"  # current step, for the hard-timeout message
        self.ctx = None
        if args.cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(args.cert, args.key)
            if args.tls_max:
                self.ctx.maximum_version = {"1.2": ssl.TLSVersion.TLSv1_2,
                                            "1.3": ssl.TLSVersion.TLSv1_3}[args.tls_max]

    def trace(self, line):
        with self.lock:
            self.trace_f.write(line + "\n")
            self.trace_f.flush()


class Conn:
    def __init__(self, srv, sock):
        self.srv, self.sock = srv, sock
        self.buf, self.out = bytearray(), bytearray()
        self.eof = self.closed = self.tls = False
        self.caps = []  # what the last ehlo step offered (auth_scram's downgrade check)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---- output: queued, written in one go before anything that waits ----
    def write(self, data, raw=False):
        self.out += data
        if raw:
            self.srv.trace("S: " + show(data))
        else:
            for line in data.split(b"\r\n")[:-1]:
                self.srv.trace("S: " + show(line))

    def reply(self, *lines):
        """Queue a (multi-line) reply: reply(b'250', b'a', b'b')."""
        code, texts = lines[0], lines[1:] or (b"",)
        for i, text in enumerate(texts):
            sep = b" " if i == len(texts) - 1 else b"-"
            self.write(code + sep + text + b"\r\n")

    def flush(self):
        if self.out and not self.closed:
            # send a copy: a failed SSL sendall leaves the buffer exported (the
            # traceback holds it), and clearing an exported bytearray raises BufferError
            data = bytes(self.out)
            self.out.clear()
            try:
                self.sock.sendall(data)
            except OSError as e:
                raise Fail(f"send failed: {e}") from None

    # ---- input: every received byte goes to the log, lines come from buf ----
    def fill(self, timeout=None):
        """One recv into buf; False on EOF (or timeout, if one is given)."""
        self.flush()
        try:
            self.sock.settimeout(timeout)
            data = self.sock.recv(65536)
        except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError as e:
            self.srv.trace(f"EOF ({e})")
            data, self.eof = b"", True
        if not data:
            if not self.eof:
                self.srv.trace("EOF")
            self.eof = True
            return False
        self.srv.log.write(data)
        self.buf += data
        return True

    def readline(self, what):
        while True:
            i = self.buf.find(b"\r\n")
            if i > LINE_MAX or (i < 0 and len(self.buf) > LINE_MAX):
                raise Fail(f"line longer than {LINE_MAX} bytes while expecting {what}")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                self.srv.trace("C: " + show(line))
                return line
            if self.eof or not self.fill():
                raise Fail(f"client closed the connection while expecting {what}")

    def readexact(self, n, what):
        while len(self.buf) < n:
            if self.eof or not self.fill():
                raise Fail(f"client closed the connection during {what} "
                           f"({len(self.buf)} of {n} octets)")
        chunk = bytes(self.buf[:n])
        del self.buf[:n]
        self.srv.trace(f"C: [{n} octets of {what}]")
        return chunk

    def expect(self, regex, what=None):
        line = self.readline(what or f"/{regex.pattern.decode()}/")
        if not regex.match(line):
            raise Fail(f"expected /{regex.pattern.decode()}/, got '{show(line)}'")
        return line

    def read_data(self):
        while self.readline("DATA body ending in '.'") != b".":
            pass

    def read_bdat(self, line):
        m = re.fullmatch(rb"BDAT +(\d+)( +LAST)? *", line, re.I)
        if not m:
            raise Fail(f"expected 'BDAT n [LAST]', got '{show(line)}'")
        self.readexact(int(m.group(1)), "BDAT chunk")

    # ---- TLS and closing ----
    def handshake(self):
        if not self.srv.ctx:
            raise Fail("TLS requested but no --cert/--key given")
        self.sock.settimeout(None)
        try:
            self.sock = self.srv.ctx.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.closed = True  # wrap_socket has closed the socket
            self.srv.trace("close")
            raise Fail(f"TLS handshake failed: {e}") from None
        self.tls = True
        self.srv.trace(f"TLS start ({self.sock.version()}, {self.sock.cipher()[0]})")

    def starttls(self):
        self.flush()
        if self.tls:
            raise Fail("starttls: TLS is already active")
        # Plaintext that arrived after the STARTTLS line is a client bug (CVE-2011-0411
        # style injection).  Count what is buffered plus whatever sits in the kernel
        # before the ClientHello (which starts with 0x16); discard it, like a fixed server.
        self.sock.setblocking(False)
        try:
            peek = self.sock.recv(65536, socket.MSG_PEEK)
            plain = peek.split(b"\x16", 1)[0]
            if plain:
                self.srv.log.write(self.sock.recv(len(plain)))
                self.buf += plain
        except OSError:
            pass
        if self.buf:
            msg = f"plaintext after STARTTLS: {len(self.buf)} bytes: {show(self.buf)}"
            self.srv.trace(msg)
            print("faultsmtp: warning: " + msg, file=sys.stderr)
            self.buf.clear()
        self.handshake()

    def close(self, graceful):
        """Graceful: plaintext sends FIN and logs what arrives until the client's EOF;
        TLS exchanges close_notify.  Both bounded by LINGER.  Abrupt: just close."""
        if self.closed:
            return
        try:
            self.flush()
        except Fail:
            pass
        if graceful and not self.eof and self.tls:
            # send close_notify and wait (bounded) for the client's; OpenSSL 3 peers
            # report a TLS close without close_notify as an error
            self.sock.settimeout(LINGER)
            try:
                self.sock = self.sock.unwrap()
            except (OSError, ValueError):
                pass
            self.eof = True
        elif graceful and not self.eof:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        end = time.monotonic() + (LINGER if graceful else 0)
        while not self.eof and self.fill(max(0.0, end - time.monotonic())):
            pass
        if self.buf:
            self.srv.trace(f"unread: {len(self.buf)} bytes: {show(self.buf)}")
            self.buf.clear()
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.closed = True
        self.srv.trace("close")

    # ---- the steps ----
    def run(self, verb, arg):
        if self.closed and verb not in ("close", "sleep"):
            raise Fail("the connection is already closed")
        if verb == "send":
            self.write(arg + b"\r\n")
        elif verb == "sendraw":
            self.write(arg, raw=True)
        elif verb == "flush":
            self.flush()
        elif verb in ("cork", "uncork"):
            self.flush()
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, verb == "cork")
            self.srv.trace(verb)
        elif verb == "expect":
            self.expect(arg)
        elif verb == "recv":
            self.readline("any line")
        elif verb == "data":
            self.read_data()
        elif verb == "bdat":
            self.read_bdat(self.readline("BDAT"))
        elif verb == "starttls":
            self.starttls()
        elif verb == "starttls_inject":  # queued behind the pending reply: one segment
            self.write(arg + b"\r\n")
            self.starttls()
        elif verb == "sleep":
            self.flush()
            time.sleep(arg)
        elif verb == "trickle":
            self.flush()
            secs, text = arg
            self.srv.trace(f"S: {show(text)} (trickled, {secs}s/byte)")
            for i, byte in enumerate(text + b"\r\n"):
                if i:
                    time.sleep(secs)
                try:
                    self.sock.sendall(bytes([byte]))
                except OSError as e:
                    raise Fail(f"send failed: {e}") from None
        elif verb == "close":
            self.close(graceful=False)
        elif verb == "wait_close":
            while self.fill():
                pass
            for line in self.buf.split(b"\r\n"):
                if line:
                    self.srv.trace("C: " + show(line))
            self.buf.clear()
            self.close(graceful=False)
        elif verb == "ehlo":
            line = self.expect(re.compile(rb"(EHLO|HELO)\b", re.I), "EHLO or HELO")
            if line[:4].upper() == b"EHLO":
                self.reply(b"250", HOSTNAME, *arg)
                self.caps = arg
            else:
                self.reply(b"250", b"ok")
        elif verb == "auth_plain":
            self.auth_plain(arg)
        elif verb == "auth_scram":
            self.auth_scram(*arg)
        elif verb == "mail_ok":
            self.expect(re.compile(rb"MAIL FROM:", re.I))
            self.reply(b"250", b"2.1.0 Ok")
        elif verb == "rcpt_ok":
            self.expect(re.compile(rb"RCPT TO:", re.I))
            self.reply(b"250", b"2.1.5 Ok")
        elif verb == "data_ok":
            self.expect(re.compile(rb"DATA$", re.I))
            self.reply(b"354", b"End data with <CR><LF>.<CR><LF>")
        elif verb == "loop_until_quit":
            self.loop_until_quit()

    def auth_plain(self, want):
        line = self.expect(re.compile(rb"AUTH PLAIN( \S+)? *$", re.I), "AUTH PLAIN")
        resp = line.split()[2] if len(line.split()) > 2 else None
        if resp is None:
            self.write(b"334 \r\n")
            resp = self.readline("AUTH PLAIN response")
        if resp == b"*":
            self.reply(b"501", b"5.7.0 Authentication cancelled")
            raise Fail("client cancelled AUTH PLAIN")
        try:
            got = base64.b64decode(resp, validate=True)
        except binascii.Error:
            self.reply(b"501", b"5.5.2 Bad base64")
            raise Fail(f"AUTH PLAIN response is not base64: '{show(resp)}'") from None
        if got != want:
            self.reply(b"535", b"5.7.8 Authentication credentials invalid")
            raise Fail(f"AUTH PLAIN credentials '{show(got)}', wanted '{show(want)}'")
        self.reply(b"235", b"2.7.0 Authentication successful")

    def auth_scram(self, mech, user, password):
        plus = mech.endswith("-PLUS")
        hname = SCRAM_HASHES[mech.removesuffix("-PLUS")]

        def refuse(reason):
            self.reply(b"535", b"5.7.8 " + reason.encode("utf-8", "replace"))
            raise Fail(f"{mech}: {reason}")

        def b64in(resp, what):
            if resp == b"*":
                self.reply(b"501", b"5.7.0 Authentication cancelled")
                raise Fail(f"{mech}: client cancelled the exchange at the {what}")
            try:
                return base64.b64decode(resp, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                self.reply(b"501", b"5.5.2 Bad base64")
                raise Fail(f"{mech}: {what} is not base64 of UTF-8: '{show(resp)}'") from None

        line = self.expect(re.compile(rb"AUTH " + re.escape(mech.encode()) + rb"( \S+)? *$", re.I),
                           f"AUTH {mech}")
        words = line.split()
        if len(words) > 2:
            resp = b"" if words[2] == b"=" else words[2]
        else:
            self.write(b"334 \r\n")
            resp = self.readline(f"{mech} client-first message")
        first = b64in(resp, "client-first message")
        self.srv.trace(f"SCRAM client-first: {first}")

        # gs2-header: cbind-flag "," [ "a=" authzid ] ","
        m = re.fullmatch(r"(n|y|p=([A-Za-z0-9.-]+)),(?:a=([^,]*))?,(.*)", first, re.S)
        if not m:
            refuse("bad GS2 header")
        flag, cbname, authzid, bare = m.group(1)[0], m.group(2), m.group(3), m.group(4)
        gs2 = first[:len(first) - len(bare)]
        if authzid is not None and saslname(authzid) != user.decode("utf-8", "replace"):
            refuse(f"authorization identity {authzid!r} not allowed")

        cbdata = b""
        if plus:
            if flag != "p":
                refuse(f"{mech} needs channel binding, the client sent GS2 flag '{flag}'")
            if not self.tls:
                refuse("channel binding without TLS")
            version = self.sock.version()
            can = "tls-exporter" if version == "TLSv1.3" else "tls-unique"
            if cbname != can:
                refuse(f"channel binding type {cbname} does not fit this {version} "
                       f"connection (it gives {can})")
            if can == "tls-unique":
                data = self.sock.get_channel_binding("tls-unique")
            else:
                data = tls_exporter(self.sock)
            if not data:
                refuse(f"faultsmtp cannot get {can} data here (run it with --tls-max 1.2)")
            cbdata = data
            if self.srv.args.cb_corrupt:
                cbdata = bytes([data[0] ^ 0x01]) + data[1:]
            self.srv.trace(f"SCRAM channel binding: {can} ({version}, {len(data)} octets"
                           f"{', corrupted by --cb-corrupt' if self.srv.args.cb_corrupt else ''})")
        else:
            if flag == "p":
                refuse(f"channel binding ({cbname}) requested with non-PLUS {mech}")
            offers_plus = any(cap.upper().startswith(b"AUTH ") and b"-PLUS" in cap.upper()
                              for cap in self.caps)
            if flag == "y" and offers_plus:
                refuse("the client says the server cannot bind (y), but it offers -PLUS "
                       "(a downgrade?)")
            self.srv.trace(f"SCRAM channel binding: none (GS2 flag {flag})")

        attrs = bare.split(",")
        if attrs[0].startswith("m="):
            refuse("mandatory extension m= not supported")
        if len(attrs) < 2 or not attrs[0].startswith("n=") or not attrs[1].startswith("r=") \
                or len(attrs[1]) < 3:
            refuse("bad client-first-message-bare (want n=USER,r=NONCE)")
        name = saslname(attrs[0][2:])
        if name is None or name.encode("utf-8") != user:
            refuse(f"unknown user {attrs[0][2:]!r}")
        nonce = attrs[1][2:] + base64.b64encode(os.urandom(18)).decode()
        salt = os.urandom(16)
        iters = self.srv.args.scram_iter
        server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={iters}"
        self.srv.trace(f"SCRAM server-first: {server_first}")
        self.write(b"334 " + base64.b64encode(server_first.encode()) + b"\r\n")

        final = b64in(self.readline(f"{mech} client-final message"), "client-final message")
        self.srv.trace(f"SCRAM client-final: {final}")
        without_proof, sep, proof_b64 = final.rpartition(",p=")
        attrs = without_proof.split(",")
        if not sep or len(attrs) < 2 or not attrs[0].startswith("c=") \
                or not attrs[1].startswith("r="):
            refuse("bad client-final message (want c=...,r=...,p=...)")
        try:
            cbind = base64.b64decode(attrs[0][2:], validate=True)
            proof = base64.b64decode(proof_b64, validate=True)
        except binascii.Error:
            refuse("bad base64 in c= or p=")
        want = gs2.encode("utf-8") + cbdata
        if cbind[:len(gs2)] != gs2.encode("utf-8"):
            refuse(f"c= does not repeat the GS2 header {gs2!r}")
        if cbind != want:
            refuse("channel binding data mismatch: c= does not carry this TLS "
                   "connection's binding")
        if attrs[1][2:] != nonce:
            refuse("nonce mismatch")

        salted = hashlib.pbkdf2_hmac(hname, password, salt, iters)
        client_key = hmac.new(salted, b"Client Key", hname).digest()
        stored_key = hashlib.new(hname, client_key).digest()
        auth_message = f"{bare},{server_first},{without_proof}".encode("utf-8")
        client_sig = hmac.new(stored_key, auth_message, hname).digest()
        if len(proof) != len(client_sig) or not hmac.compare_digest(
                hashlib.new(hname, bytes(a ^ b for a, b in zip(proof, client_sig))).digest(),
                stored_key):
            refuse("authentication failed: the client proof does not verify (wrong password)")
        server_key = hmac.new(salted, b"Server Key", hname).digest()
        server_sig = hmac.new(server_key, auth_message, hname).digest()
        mode = self.srv.args.scram_final
        if mode == "skip":
            self.srv.trace("SCRAM server-final: skipped (--scram-final skip)")
            self.reply(b"235", b"2.7.0 ok")
            return
        if mode == "wrong":
            server_sig = bytes([server_sig[0] ^ 0x01]) + server_sig[1:]
        server_final = "v=" + base64.b64encode(server_sig).decode()
        self.srv.trace(f"SCRAM server-final: {server_final}"
                       f"{' (wrong, --scram-final wrong)' if mode == 'wrong' else ''}")
        self.write(b"334 " + base64.b64encode(server_final.encode()) + b"\r\n")
        last = self.readline(f"{mech} empty response to the server-final message")
        if mode == "wrong":
            if last != b"*":
                self.reply(b"535", b"5.7.8 you accepted a false server signature")
                raise Fail(f"{mech}: the client accepted a false server signature "
                           f"(answered '{show(last)}', not '*')")
            # no reply here: the client may close at once, the script says what next
            self.srv.trace("SCRAM: the client rejected the false server signature")
            return
        if last == b"*":
            self.reply(b"501", b"5.7.0 Authentication cancelled")
            raise Fail(f"{mech}: client cancelled after the server-final message "
                       "(it rejected the server signature?)")
        if last not in (b"", b"="):
            self.reply(b"501", b"5.5.2 Expected an empty response")
            raise Fail(f"{mech}: expected an empty line after the server-final message, "
                       f"got '{show(last)}'")
        self.reply(b"235", b"2.7.0 ok")

    def loop_until_quit(self):
        while True:
            line = self.readline("a command (loop_until_quit)")
            verb = line.split(b" ", 1)[0].upper()
            if verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.reply(b"250", b"2.0.0 Ok")
            elif verb in (b"EHLO", b"HELO"):
                self.reply(b"250", HOSTNAME)
            elif verb == b"DATA":
                self.reply(b"354", b"End data with <CR><LF>.<CR><LF>")
                self.read_data()
                self.reply(b"250", b"2.0.0 Ok: queued")
            elif verb == b"BDAT":
                self.read_bdat(line)
                self.reply(b"250", b"2.0.0 Ok")
            elif verb == b"QUIT":
                self.reply(b"221", b"2.0.0 Bye")
                self.close(graceful=True)
                return
            else:
                self.reply(b"502", b"5.5.2 Command not recognized")


def main():
    ap = argparse.ArgumentParser(description="scriptable hostile SMTP server")
    ap.add_argument("--script", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=30.0)
    ap.add_argument("--tls-max", choices=("1.2", "1.3"))
    ap.add_argument("--cb-corrupt", action="store_true")
    ap.add_argument("--scram-final", choices=("ok", "wrong", "skip"), default="ok")
    ap.add_argument("--scram-iter", type=int, default=SCRAM_ITER)
    ap.add_argument("--listen-port", type=int, default=0)
    args = ap.parse_args()
    try:
        steps = parse_script(args.script)
    except (OSError, ScriptError) as e:
        print(f"faultsmtp: bad script: {e}", file=sys.stderr)
        return 2
    needs_tls = args.implicit_tls or any(s[2].startswith("starttls") for s in steps)
    if bool(args.cert) != bool(args.key) or (needs_tls and not args.cert):
        print("faultsmtp: TLS needs both --cert and --key", file=sys.stderr)
        return 2
    srv = Server(args)

    def hard_timeout():
        print(f"faultsmtp: hard timeout after {args.max_seconds}s in {srv.where}", file=sys.stderr)
        srv.trace(f"timeout in {srv.where}")
        os._exit(124)
    watchdog = threading.Timer(args.max_seconds, hard_timeout)
    watchdog.daemon = True
    watchdog.start()

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", args.listen_port))
    lsock.listen(8)
    tmp = f"{args.port_file}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{lsock.getsockname()[1]}\n")
    os.replace(tmp, args.port_file)

    for n in range(1, args.connections + 1):
        srv.where = f"accept (connection {n})"
        sock, peer = lsock.accept()
        srv.trace(f"connect {n} from {peer[0]}:{peer[1]}")
        conn, where = Conn(srv, sock), f"connection {n}: implicit TLS handshake"
        try:
            if args.implicit_tls:
                conn.handshake()
            for lineno, text, verb, arg in steps:
                where = srv.where = f"connection {n}: {args.script}:{lineno}: {text}"
                conn.run(verb, arg)
            conn.close(graceful=True)
        except Fail as e:
            msg = f"{where}: {e}"
            print(f"faultsmtp: FAIL {msg}", file=sys.stderr)
            srv.trace(f"FAIL {msg}")
            if not conn.closed:
                conn.write(b"421 4.3.0 faultsmtp: " + msg.encode("utf-8", "replace")[:400] + b"\r\n")
                conn.close(graceful=False)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
