#!/usr/bin/python3
"""fakedns.py --port-file PF --srv NAME=PRIO:WEIGHT:PORT:TARGET ...

A DNS server on 127.0.0.1 (UDP, a free port written to PF) that answers
SRV queries for the names given and NXDOMAIN for anything else; for
outbox --configure's tests (OUTBOX_DNS=127.0.0.1:PORT).  Exits after
--max-seconds (default 30).

--servfail answers every query SERVFAIL (a temporary failure: getaddrinfo
gives EAI_AGAIN); --listen-port N listens on port N instead of a free one
(53, for the system resolver inside a network namespace); --log FILE
appends "NAME QTYPE" for each query."""
import argparse
import os
import socket
import struct
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
ap.add_argument("--srv", action="append", default=[])
ap.add_argument("--max-seconds", type=float, default=30)
ap.add_argument("--servfail", action="store_true")
ap.add_argument("--listen-port", type=int, default=0)
ap.add_argument("--log", help="append each query's name to this file")
args = ap.parse_args()

records = {}
for spec in args.srv:
    name, rest = spec.split("=", 1)
    prio, weight, port, target = rest.split(":", 3)
    records.setdefault(name.lower().rstrip("."), []).append(
        (int(prio), int(weight), int(port), target))


def labels(name):
    out = b""
    for part in name.rstrip(".").split("."):
        if part:
            out += bytes([len(part)]) + part.encode()
    return out + b"\0"


def parse_question(msg):
    pos, parts = 12, []
    while msg[pos]:
        n = msg[pos]
        parts.append(msg[pos + 1:pos + 1 + n].decode(errors="replace"))
        pos += 1 + n
    qtype, _ = struct.unpack("!HH", msg[pos + 1:pos + 5])
    return ".".join(parts).lower(), qtype, pos + 5


def answer(msg):
    name, qtype, end = parse_question(msg)
    if args.log:
        with open(args.log, "a") as f:
            f.write("%s %d\n" % (name, qtype))
    question = msg[12:end]
    found = records.get(name, []) if qtype == 33 else []
    known = name in records
    flags = 0x8180 if known else 0x8183
    if args.servfail:
        found, flags = [], 0x8182
    out = struct.pack("!HHHHHH", struct.unpack("!H", msg[:2])[0], flags, 1,
                      len(found), 0, 0) + question
    for prio, weight, port, target in found:
        rdata = struct.pack("!HHH", prio, weight, port) + labels(target)
        out += struct.pack("!HHHIH", 0xC00C, 33, 1, 60, len(rdata)) + rdata
    return out


sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", args.listen_port))
tmp = args.port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(sock.getsockname()[1]))
os.rename(tmp, args.port_file)
deadline = time.time() + args.max_seconds
while time.time() < deadline:
    sock.settimeout(max(0.1, deadline - time.time()))
    try:
        msg, peer = sock.recvfrom(4096)
    except socket.timeout:
        break
    try:
        sock.sendto(answer(msg), peer)
    except Exception:
        pass
