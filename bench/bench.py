#!/usr/bin/python3
"""outbox vs msmtp, side by side, against one private Postfix + Dovecot.

Run it through bench/run.sh (make bench), which builds outbox, starts the
test bed, calls this script and cleans up.  Standard library only; use
Debian's /usr/bin/python3.

    bench.py --work DIR --mta DIR --outbox PATH [--msmtp PATH] [--quick]

Every submission is checked: the client must exit 0 and the message must
arrive in the Maildir (with its marker header) before the next one starts.
A failure stops the bench with the client's stderr and the Postfix log tail.
"""

import argparse
import collections
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
PY = "/usr/bin/python3"
RCPT = "bob@example.org"
SENDER = "alice@example.org"
PASSWORD = "wonder land-42"


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- messages

def body_lines(n_bytes, seed=0):
    """76-character lines of printable text, about n_bytes in all."""
    alphabet = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                "0123456789+/")
    line_len = 77       # 76 characters and LF
    out = []
    for i in range(max(1, n_bytes // line_len)):
        k = (i * 7 + seed) % len(alphabet)
        out.append((alphabet[k:] + alphabet[:k] + alphabet)[:76])
    return out


def make_message(path, size, marker, subject="outbox bench"):
    """A message of about size bytes with 76-char lines (LF line ends)."""
    head = ("From: Alice <%s>\nTo: Bob <%s>\nSubject: %s\n"
            "Date: Sat, 28 Nov 2026 12:00:00 +0000\n"
            "Message-ID: <%s@example.org>\nX-Bench: %s\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"
            "\n" % (SENDER, RCPT, subject, marker, marker))
    left = max(77, size - len(head))
    with open(path, "w") as f:
        f.write(head)
        if left <= 4 << 20:
            f.write("\n".join(body_lines(left)) + "\n")
            return
        block = "\n".join(body_lines(1 << 20)) + "\n"
        written = 0
        while written + len(block) <= left:
            f.write(block)
            written += len(block)
        rest = left - written
        if rest >= 77:
            f.write("\n".join(body_lines(rest)) + "\n")


# ---------------------------------------------------------------- running

Run = collections.namedtuple("Run", "wall cpu rss rc stderr")


def spawn(argv, stdin_path, env=None, timeout=600):
    """Run argv with stdin from a file; wall (s), user+sys (s), maxrss (KB).

    posix_spawn + wait4: the rusage is the child's alone."""
    exe = shutil.which(argv[0]) if "/" not in argv[0] else argv[0]
    if exe is None:
        raise BenchError("%s: not found" % argv[0])
    fin = os.open(stdin_path, os.O_RDONLY)
    ferr_path = "%s/.stderr" % WORK
    ferr = os.open(ferr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    fnull = os.open(os.devnull, os.O_WRONLY)
    try:
        t0 = time.perf_counter()
        pid = os.posix_spawn(exe, argv, env if env is not None else ENV,
                             file_actions=[
                                 (os.POSIX_SPAWN_DUP2, fin, 0),
                                 (os.POSIX_SPAWN_DUP2, fnull, 1),
                                 (os.POSIX_SPAWN_DUP2, ferr, 2)])
        def kill(signum, frame):
            os.kill(pid, signal.SIGKILL)
        old = signal.signal(signal.SIGALRM, kill)
        signal.alarm(timeout)
        try:
            wpid, status, ru = os.wait4(pid, 0)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        t1 = time.perf_counter()
    finally:
        for fd in (fin, ferr, fnull):
            os.close(fd)
    with open(ferr_path, errors="replace") as f:
        err = f.read()
    rc = os.waitstatus_to_exitcode(status)
    return Run(t1 - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, rc, err)


def maildir_files():
    d = os.path.join(MAILDIR, "bob", "new")
    try:
        return [os.path.join(d, n) for n in os.listdir(d)]
    except FileNotFoundError:
        return []


def maildir_clear():
    for box in ("bob", "catchall"):
        for sub in ("new", "cur", "tmp"):
            d = os.path.join(MAILDIR, box, sub)
            if os.path.isdir(d):
                for n in os.listdir(d):
                    os.unlink(os.path.join(d, n))


def mta_log_tail(n=15):
    try:
        with open(os.path.join(MTA, "log", "maillog"), errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no maillog)"


def wait_arrival(count, marker, min_size=0, timeout=30.0):
    """Wait for count messages with the marker in bob/new, then delete."""
    deadline = time.monotonic() + timeout
    while True:
        files = maildir_files()
        if len(files) >= count:
            break
        if time.monotonic() > deadline:
            raise BenchError("only %d of %d message(s) arrived in %.0f s; "
                             "Postfix log:\n%s" % (len(files), count,
                                                   timeout, mta_log_tail()))
        time.sleep(0.002)
    if len(files) > count:
        raise BenchError("%d messages arrived, %d were sent" % (len(files),
                                                                count))
    for p in files:
        with open(p, "rb") as f:
            head = f.read(8192)
        if ("X-Bench: %s" % marker).encode() not in head:
            raise BenchError("%s: a message arrived without the marker %s"
                             % (p, marker))
        if os.path.getsize(p) < min_size:
            raise BenchError("%s: %d bytes arrived, expected at least %d"
                             % (p, os.path.getsize(p), min_size))
        os.unlink(p)


ENV_TOKEN = re.compile(r"^([A-Z_][A-Z0-9_]*)=(.*)$")


def split_env(tokens):
    """Command-line tokens and VAR=value tokens (what-ifs may have both)."""
    args, env = [], {}
    for t in tokens:
        m = ENV_TOKEN.match(t)
        if m:
            env[m.group(1)] = m.group(2)
        else:
            args.append(t)
    return args, env


def submit(client, argv_tail, msg, marker, env=None, wrap=None,
           min_size=0, arrival_timeout=30.0, what=""):
    """One checked submission: exit 0 and arrival.

    VAR=value tokens in argv_tail go to the environment; the value @fresh
    is a new empty folder for this run (e.g. XDG_CACHE_HOME=@fresh: no TLS
    session cache)."""
    argv_tail, extra_env = split_env(argv_tail)
    fresh = []
    if extra_env:
        env = dict(env if env is not None else ENV)
        for k, v in extra_env.items():
            if v == "@fresh":
                v = tempfile.mkdtemp(prefix="fresh.", dir=WORK)
                fresh.append(v)
            env[k] = v
    argv = (wrap or []) + [CLIENTS[client]] + argv_tail
    try:
        r = spawn(argv, msg, env)
    finally:
        for d in fresh:
            shutil.rmtree(d, ignore_errors=True)
    if r.rc != 0:
        raise BenchError("%s%s failed (exit %d):\n  %s\n%s\nPostfix log:\n%s"
                         % (client, what, r.rc, " ".join(argv), r.stderr,
                            mta_log_tail()))
    try:
        wait_arrival(1, marker, min_size, arrival_timeout)
    except BenchError as e:
        raise BenchError("%s%s exited 0, but: %s\n  %s" % (
            client, what, e, " ".join(argv)))
    return r


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------- config

def write_config(path, ports):
    """One msmtp-syntax file for both clients; an account per port."""
    lines = ["# written by bench/bench.py", "defaults", "tls on",
             "tls_trust_file %s" % ENVF["MTA_CA"], "auth on", "user alice",
             'password "%s"' % PASSWORD, "from %s" % SENDER,
             "host localhost", ""]
    for name, (port, starttls) in ports.items():
        lines += ["account %s" % name, "port %d" % port,
                  "tls_starttls %s" % ("on" if starttls else "off"), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    os.chmod(path, 0o600)


# ---------------------------------------------------------------- proxy

class RtProxy:
    def __init__(self, name, target, delay_ms):
        self.name = name
        self.log = os.path.join(WORK, "rtproxy.%s.log" % name)
        self.trace = os.path.join(WORK, "rtproxy.%s.trace" % name)
        portfile = os.path.join(WORK, "rtproxy.%s.port" % name)
        self.proc = subprocess.Popen(
            [PY, os.path.join(HERE, "rtproxy.py"), "--target", str(target),
             "--delay", str(delay_ms), "--port-file", portfile,
             "--log", self.log, "--trace", self.trace],
            stdin=subprocess.DEVNULL)
        with open(os.path.join(WORK, "rtproxy.%s.pid" % name), "w") as f:
            f.write("%d\n" % self.proc.pid)
        deadline = time.monotonic() + 10
        while not os.path.exists(portfile):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError("rtproxy %s did not start" % name)
            time.sleep(0.01)
        with open(portfile) as f:
            self.port = int(f.read())

    def lines(self):
        try:
            with open(self.log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def wait_record(self, n, timeout=10.0):
        """The n-th connection record (1-based), once the proxy wrote it."""
        deadline = time.monotonic() + timeout
        while True:
            ls = self.lines()
            if len(ls) >= n:
                return dict(kv.split("=", 1) for kv in ls[n - 1].split())
            if time.monotonic() > deadline:
                raise BenchError("rtproxy %s: no record for connection %d"
                                 % (self.name, n))
            time.sleep(0.005)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------- callgrind

START_CHAIN = re.compile(r"^(main|\(below main\)|__libc_start_main.*|"
                         r"__libc_start_call_main|_start)$")


def callgrind_objects(path):
    """Per shared object: self cost, and the inclusive cost of the calls
    that enter it from another object (process start chain excluded).

    Returns (total, self_by_ob, entered_by_ob, entries_by_ob, before_main)."""
    names = {"ob": {}, "fn": {}}

    def name(kind, v):
        v = v.strip()
        m = re.match(r"^\((\d+)\)(?:\s+(.*))?$", v)
        if not m:
            return v
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
            return m.group(2)
        return names[kind].get(m.group(1), "?")

    total = 0
    cur_ob = cur_fn = None
    cob = cfn = None
    in_call = False
    self_ob = collections.Counter()
    entered = collections.Counter()
    entries = collections.defaultdict(collections.Counter)
    main_incl = 0
    with open(path, errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if in_call:
                    callee_ob = cob if cob is not None else cur_ob
                    # main() is what libc's start code calls in the
                    # executable (msmtp is stripped: no name "main").
                    if callee_ob == EXE_OB and cur_ob != EXE_OB and \
                            START_CHAIN.match(cur_fn or ""):
                        main_incl += cost
                    if callee_ob != cur_ob and not START_CHAIN.match(cfn or ""):
                        entered[callee_ob] += cost
                        caller = os.path.basename(cur_ob or "?")
                        entries[callee_ob]["%s <- %s" % (cfn, caller)] += cost
                    in_call = False
                    cob = None
                else:
                    self_ob[cur_ob] += cost
                continue
            if line.startswith("ob="):
                cur_ob = name("ob", line[3:])
            elif line.startswith("fn="):
                cur_fn = name("fn", line[3:])
                cob = None
            elif line.startswith("cob="):
                cob = name("ob", line[4:])
            elif line.startswith("cfn="):
                cfn = name("fn", line[4:])
            elif line.startswith("calls="):
                in_call = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = max(total, int(line.split()[1]))
    return total, self_ob, entered, entries, main_incl


def callgrind_total(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise BenchError("%s: no totals" % path)


def short_ob(ob):
    b = os.path.basename(ob or "?")
    return re.sub(r"\.so(\.\d+)+$", ".so", b)


def object_report(path, exe, top=5):
    global EXE_OB
    EXE_OB = exe
    total, self_ob, entered, entries, main_incl = callgrind_objects(path)
    out = []
    out.append("    %-22s %12s %6s %12s  %s" % (
        "shared object", "inclusive", "%", "self", "biggest entry points "
        "(inclusive)"))
    rank = [(cost, ob) for ob, cost in entered.items() if ob != exe]
    rank.sort(reverse=True)
    for cost, ob in rank[:top]:
        ents = entries[ob].most_common(2)
        desc = "; ".join("%s %.1fM" % (re.sub(r"0x0+", "0x", k), v / 1e6)
                         for k, v in ents)
        out.append("    %-22s %12s %5.1f%% %12s  %s" % (
            short_ob(ob), "{:,}".format(cost), 100.0 * cost / total,
            "{:,}".format(self_ob[ob]), desc))
    before = total - main_incl
    out.append("    %-22s %12s %5.1f%%   (outside main(): loading and "
               "relocating %d objects, library constructors, exit)" % (
                   "(outside main)", "{:,}".format(before),
                   100.0 * before / total,
                   len([o for o in self_ob if self_ob[o] > 0])))
    out.append("    %-22s %12s %5.1f%%" % (
        "(self, " + short_ob(exe) + ")", "{:,}".format(self_ob[exe]),
        100.0 * self_ob[exe] / total))
    return "\n".join(out)


# ---------------------------------------------------------------- table

ROWS = []
WHATIF = []
DEFAULT_WHATIF = ("--auth=plain; msmtp --auth=scram-sha-256; "
                  "--auth=plain --queue=off; XDG_CACHE_HOME=@fresh")

# Figures 1 to 3 compare the clients with the same SASL mechanism: `auth on`
# makes outbox pick SCRAM-SHA-256 here (it does not send the password) and
# msmtp PLAIN.  (suffix, outbox key, msmtp key, round trips SCRAM adds to
# the targets: "SCRAM needs its two").
MECH_PAIRS = (("PLAIN", "outbox --auth=plain", "msmtp", 0),
              ("SCRAM-SHA-256", "outbox", "msmtp --auth=scram-sha-256", 2))


def pairs(res):
    """The comparisons whose runs were measured; else the defaults."""
    got = [p for p in MECH_PAIRS
           if any(k[0] == p[1] for k in res) and
           any(k[0] == p[2] for k in res)]
    return got or [("auth on", "outbox", "msmtp", 0)]


def row(fig, name, a, b, unit, fmt, target, ok, ratio=True):
    ROWS.append((fig, name, a, b, unit, fmt, target, ok, ratio))


def fmtv(v, fmt):
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return fmt % v


def print_table(out):
    hdr = "%-3s %-56s %11s %11s %7s  %-26s %s" % (
        "fig", "figure", "outbox", "msmtp", "ratio", "target", "")
    out.write(hdr + "\n" + "-" * len(hdr) + "\n")
    for fig, name, a, b, unit, fmt, target, ok, want_ratio in ROWS:
        ratio = (a / b) if (want_ratio and a is not None and b) else None
        mark = "" if ok is None else ("ok" if ok else "MISSED")
        out.write("%-3s %-56s %11s %11s %7s  %-26s %s\n" % (
            fig, "%s (%s)" % (name, unit) if unit else name, fmtv(a, fmt),
            fmtv(b, fmt), fmtv(ratio, "%.2f"), target, mark))


# ---------------------------------------------------------------- figures

def runners():
    """(key, client, extra arguments): the two clients, then the what-ifs."""
    return [("outbox", "outbox", []), ("msmtp", "msmtp", [])] + WHATIF


def fig1(q):
    """Wall and CPU per submission on loopback, both ports."""
    n = 5 if q else 30
    warm = 2
    msg = os.path.join(WORK, "msg-2k.eml")
    res = collections.defaultdict(lambda: {"wall": [], "cpu": []})
    log("fig 1: %d submissions per client and port (+%d warm-up)" % (n, warm))
    for i in range(n + warm):
        for acct in ("starttls", "smtps"):
            rs = runners()
            # Alternate the order, so that neither client always goes first.
            if i % 2:
                rs = [rs[1], rs[0]] + rs[2:]
            for key, c, extra in rs:
                r = submit(c, ["-C", CFG, "-a", acct] + extra + [RCPT], msg,
                           "f1", what=" (fig 1, %s)" % acct)
                if i >= warm:
                    res[(key, acct)]["wall"].append(r.wall * 1000)
                    res[(key, acct)]["cpu"].append(r.cpu * 1000)
    for mech, ok_, mk, _ in pairs(res):
        for acct, label in (("starttls", "STARTTLS"),
                            ("smtps", "implicit TLS")):
            a = median(res[(ok_, acct)]["wall"])
            b = median(res[(mk, acct)]["wall"])
            row("1", "wall/submission, %s, %s" % (label, mech), a, b, "ms",
                "%.1f", "<= 0.1 x msmtp", a <= 0.1 * b)
            a = median(res[(ok_, acct)]["cpu"])
            b = median(res[(mk, acct)]["cpu"])
            row("1", "CPU user+sys/submission, %s, %s" % (label, mech), a, b,
                "ms", "%.1f", "(no target)", None)
    return res


def fig2(q):
    """Instructions per submission under callgrind."""
    n = 1 if q else 3
    msg = os.path.join(WORK, "msg-2k.eml")
    totals = collections.defaultdict(list)
    files = collections.defaultdict(list)
    log("fig 2: callgrind, %d run(s) per client and port" % n)
    for i in range(n):
        for acct in ("starttls", "smtps"):
            for key, c, extra in runners():
                if q and extra and acct != "starttls":
                    continue        # quick: what-ifs on STARTTLS only
                out = os.path.join(WORK, "callgrind.%s.%s.%d" % (
                    re.sub(r"[^\w]+", "_", key).strip("_"), acct, i))
                submit(c, ["-C", CFG, "-a", acct] + extra + [RCPT], msg,
                       "f1", wrap=["valgrind", "--tool=callgrind",
                                   "--callgrind-out-file=" + out,
                                   "--log-file=" + out + ".log"],
                       arrival_timeout=60, what=" (fig 2 under valgrind)")
                totals[(key, acct)].append(callgrind_total(out))
                files[(key, acct)].append(out)
    for mech, ok_, mk, _ in pairs(totals):
        for acct, label in (("starttls", "STARTTLS"),
                            ("smtps", "implicit TLS")):
            if not totals.get((ok_, acct)) or not totals.get((mk, acct)):
                continue            # quick mode: what-ifs on STARTTLS only
            a = median(totals[(ok_, acct)])
            b = median(totals[(mk, acct)])
            row("2", "instructions/submission, %s, %s" % (label, mech),
                a / 1e6, b / 1e6, "M", "%.2f", "<= 0.5 x msmtp", a <= 0.5 * b)

    def pick(key):
        fs = files[key]
        t = totals[key]
        return fs[sorted(range(len(t)), key=lambda k: t[k])[len(t) // 2]]

    reports = {}
    for key, c, extra in runners():
        reports[key] = object_report(pick((key, "starttls")), CLIENTS[c])
    return totals, reports, files


def fig3(q, delay_ms):
    """Round trips and wall time through the latency proxy."""
    n = 1 if q else 5
    msg = os.path.join(WORK, "msg-2k.eml")
    proxies = {}
    try:
        proxies["starttls"] = RtProxy("starttls",
                                      int(ENVF["SUBMISSION_PORT"]), delay_ms)
        proxies["smtps"] = RtProxy("smtps", int(ENVF["SMTPS_PORT"]), delay_ms)
        cfg = os.path.join(WORK, "proxy.conf")
        write_config(cfg, {"px_starttls": (proxies["starttls"].port, True),
                           "px_smtps": (proxies["smtps"].port, False)})
        seen = {k: 0 for k in proxies}
        res = collections.defaultdict(lambda: {"waits": [], "wall": [],
                                               "cms": [], "sms": [],
                                               "trace": None})
        log("fig 3: through rtproxy (D=%g ms one way), %d per client and "
            "port%s" % (delay_ms, n, "" if q else " (+1 warm-up)"))
        # One warm-up run each (i = -1, not counted): outbox keeps a TLS
        # session per account, host and port, and these ports are new.
        # (Quick mode skips it; a full handshake costs no extra wait.)
        for i in range(0 if q else -1, n):
            for acct in ("starttls", "smtps"):
                for key, c, extra in runners():
                    r = submit(c, ["-C", cfg, "-a", "px_" + acct] + extra +
                               [RCPT], msg, "f1",
                               what=" (fig 3 through the proxy)")
                    seen[acct] += 1
                    rec = proxies[acct].wait_record(seen[acct])
                    if i < 0:
                        continue
                    res[(key, acct)]["waits"].append(int(rec["waits"]))
                    res[(key, acct)]["wall"].append(r.wall * 1000)
                    res[(key, acct)]["cms"].append(float(rec["client_ms"]))
                    res[(key, acct)]["sms"].append(float(rec["server_ms"]))
                    if i == 0:
                        res[(key, acct)]["trace"] = (acct, seen[acct])
        traces = {}
        for key, d in res.items():
            acct, connid = d["trace"]
            with open(proxies[acct].trace) as f:
                traces[key] = [l.rstrip("\n") for l in f
                               if l.startswith("conn=%d " % connid)]
    finally:
        for p in proxies.values():
            p.stop()
    rtt = 2 * delay_ms
    for mech, ok_, mk, more in pairs(res):
        for acct, label, tw in (("starttls", "STARTTLS", 8),
                                ("smtps", "implicit TLS", 6)):
            a = median(res[(ok_, acct)]["waits"])
            b = median(res[(mk, acct)]["waits"])
            row("3", "round trips/submission, %s, %s" % (label, mech), a, b,
                "", "%.0f", "outbox <= %d%s" % (tw + more, " (%d+%d)" % (
                    tw, more) if more else ""), a <= tw + more)
            a2 = median(res[(ok_, acct)]["wall"])
            b2 = median(res[(mk, acct)]["wall"])
            lim = 0.8 * b * rtt
            row("3", "wall via proxy RTT %g ms, %s, %s" % (rtt, label, mech),
                a2, b2, "ms", "%.0f", "<= 0.8x%.0fx%g = %.0f ms" % (
                    b, rtt, lim), a2 <= lim)
            # What is left once the waits and both sides' think time are
            # taken out: a stall (Nagle, delayed ACK, a timer) shows here.
            st = [median(res[(k, acct)]["wall"]) -
                  median(res[(k, acct)]["waits"]) * rtt -
                  median(res[(k, acct)]["cms"]) -
                  median(res[(k, acct)]["sms"]) for k in (ok_, mk)]
            row("3", "  beyond waits+think time, %s, %s" % (label, mech),
                st[0], st[1], "ms", "%.0f", "<= 10 ms (no stalls)",
                st[0] <= 10, ratio=False)
    return res, traces


def fig4(q):
    """Peak RSS and CPU for large messages."""
    n = 1 if q else 3
    sizes = [("1 KB", 1024), ("10 MB", 10 << 20), ("20 MB", 20 << 20),
             ("200 MB", 200 << 20)]
    res = collections.defaultdict(lambda: {"rss": [], "cpu": [], "wall": []})
    log("fig 4: large messages, %d run(s) per client and size" % n)
    for label, size in sizes:
        msg = os.path.join(WORK, "msg-%d.eml" % size)
        marker = "f4-%d" % size
        make_message(msg, size, marker)
        real = os.path.getsize(msg)
        try:
            for i in range(n):
                order = CLIENT_NAMES if i % 2 == 0 else CLIENT_NAMES[::-1]
                for c in order:
                    rssf = os.path.join(WORK, "rss.txt")
                    r = submit(c, ["-C", CFG, "-a", "starttls", RCPT], msg,
                               marker, wrap=[TIME, "-f", "%M", "-o", rssf],
                               min_size=real, arrival_timeout=300,
                               what=" (fig 4, %s)" % label)
                    with open(rssf) as f:
                        rss = int(f.read().split()[-1])
                    res[(c, label)]["rss"].append(rss)
                    res[(c, label)]["cpu"].append(r.cpu * 1000)
                    res[(c, label)]["wall"].append(r.wall * 1000)
        finally:
            os.unlink(msg)
    for label in ("1 KB", "10 MB", "200 MB"):
        a = median(res[("outbox", label)]["rss"])
        b = median(res[("msmtp", label)]["rss"])
        row("4", "peak RSS, %s message" % label, a / 1024, b / 1024, "MB",
            "%.1f", "<= msmtp", a <= b)
    a = median(res[("outbox", "200 MB")]["rss"]) - \
        median(res[("outbox", "1 KB")]["rss"])
    b = median(res[("msmtp", "200 MB")]["rss"]) - \
        median(res[("msmtp", "1 KB")]["rss"])
    row("4", "RSS growth 1 KB -> 200 MB", a / 1024, b / 1024, "MB", "%.1f",
        "flat (<= 1 MB)", a <= 1024, ratio=False)
    for label in ("20 MB", "200 MB"):
        a = median(res[("outbox", label)]["cpu"])
        b = median(res[("msmtp", label)]["cpu"])
        row("4", "CPU user+sys, %s message" % label, a, b, "ms", "%.0f",
            "<= 0.2 x msmtp", a <= 0.2 * b)
        a = median(res[("outbox", label)]["wall"])
        b = median(res[("msmtp", label)]["wall"])
        row("4", "wall, %s message" % label, a, b, "ms", "%.0f",
            "(no target)", None)
    return res


def fig5(q, delay_ms):
    """A series of 20 messages, one process each, like git send-email."""
    n = 1 if q else 3
    msgs = []
    for k in range(20):
        p = os.path.join(WORK, "series-%02d.eml" % k)
        make_message(p, 3000 + 211 * k, "f5",
                     subject="[PATCH %d/20] bench: patch %d" % (k + 1, k + 1))
        msgs.append(p)
    res = collections.defaultdict(list)

    def series(c, extra, cfg, acct):
        args, env = split_env(extra)
        env = dict(ENV, **env) if env else None
        holders_gone()
        t0 = time.perf_counter()
        for k, p in enumerate(msgs):
            r = spawn([CLIENTS[c], "-C", cfg, "-a", acct] + args +
                      ["-i", RCPT], p, env=env)
            if r.rc != 0:
                raise BenchError("%s failed on message %d of the series "
                                 "(exit %d):\n%s\nPostfix log:\n%s" % (
                                     c, k + 1, r.rc, r.stderr,
                                     mta_log_tail()))
        t = time.perf_counter() - t0
        wait_arrival(20, "f5", timeout=60)
        return t

    # The mechanism pairs of figures 1-3 (else the two defaults).
    known = {key: (c, extra) for key, c, extra in runners()}
    prs = [p for p in MECH_PAIRS if p[1] in known and p[2] in known] or \
        [("auth on", "outbox", "msmtp", 0)]
    keys = []
    for _, ok_, mk, _ in prs:
        keys += [ok_, mk]
    # outbox with shared sessions (linger): the others run with linger 0.
    known["outbox shared"] = ("outbox", ["OUTBOX_LINGER=5"])
    keys.append("outbox shared")
    log("fig 5: series of 20, %d time(s) per variant on loopback" % n)
    for i in range(n):
        for key in (keys if i % 2 == 0 else keys[::-1]):
            c, extra = known[key]
            res[(key, "loopback")].append(
                series(c, extra, CFG, "starttls") * 1000)
    for mech, ok_, mk, _ in prs:
        row("5", "series of 20, loopback, STARTTLS, %s" % mech,
            median(res[(ok_, "loopback")]), median(res[(mk, "loopback")]),
            "ms", "%.0f", "(none given)", None)
    sh, ms_ = median(res[("outbox shared", "loopback")]), \
        median(res[(prs[0][2], "loopback")])
    row("5", "series of 20, loopback, shared sessions (linger)", sh, ms_,
        "ms", "%.0f", "<= 0.1 of msmtp", sh <= 0.1 * ms_)
    if not q:
        log("fig 5: series of 20 through rtproxy (D=%g ms)" % delay_ms)
        px = RtProxy("series", int(ENVF["SUBMISSION_PORT"]), delay_ms)
        try:
            cfg = os.path.join(WORK, "series.conf")
            write_config(cfg, {"px": (px.port, True)})
            for key in keys:
                c, extra = known[key]
                res[(key, "proxy")].append(series(c, extra, cfg, "px") * 1000)
        finally:
            px.stop()
        for mech, ok_, mk, _ in prs:
            row("5", "series of 20, RTT %g ms, STARTTLS, %s" % (
                2 * delay_ms, mech), median(res[(ok_, "proxy")]),
                median(res[(mk, "proxy")]), "ms", "%.0f", "(none given)",
                None)
        sh, ms_ = median(res[("outbox shared", "proxy")]), \
            median(res[(prs[0][2], "proxy")])
        row("5", "series of 20, RTT %g ms, shared sessions (linger)" %
            (2 * delay_ms), sh, ms_, "ms", "%.0f", "<= 0.25 of msmtp",
            sh <= 0.25 * ms_)
    for p in msgs:
        os.unlink(p)
    return res


def holders_gone(timeout=10.0):
    """Wait until no shared-session holder of an earlier run is left, so
    that each series starts cold: kill those still lingering."""
    d = os.path.join(RUNTIME, "outbox")
    subprocess.run(["pkill", "-f", "--", "-C %s" % WORK], check=False)
    deadline = time.monotonic() + timeout
    while os.path.isdir(d) and any(not f.endswith(".lock")
                                   for f in os.listdir(d)):
        for f in os.listdir(d):
            if not f.endswith(".lock"):
                try:
                    os.unlink(os.path.join(d, f))
                except OSError:
                    pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)


def closed_port():
    """A loopback port on which a connect is refused, and the sockets that
    keep it so: bound, never listening, so that nothing else takes it."""
    held = []
    s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s4.bind(("127.0.0.1", 0))
    held.append(s4)
    port = s4.getsockname()[1]
    try:                    # localhost may be ::1 first
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.bind(("::1", port))
        held.append(s6)
    except OSError:
        pass
    return port, held


POSTFIX_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


def postfix_queued():
    """How many messages Postfix still has in its queues."""
    n = 0
    for q in POSTFIX_QUEUES:
        for _, _, files in os.walk(os.path.join(MTA, "queue", q)):
            n += len(files)
    return n


MSGID = re.compile(rb"^Message-ID:[ \t]*<([^>]*)>", re.I | re.M)


def check_arrived_once(ids, what, timeout=60.0):
    """Wait until Postfix has delivered everything, then check that bob/new
    holds each Message-ID in ids exactly once and nothing else; delete."""
    # Every client has had its 250s, so each message is in a Postfix queue
    # or delivered; the grace period is only for a missing message.
    deadline = time.monotonic() + timeout
    while postfix_queued():
        if time.monotonic() > deadline:
            raise BenchError("%s: %d of %d messages arrived in %.0f s, %d "
                             "still in Postfix's queue; Postfix log:\n%s" % (
                                 what, len(maildir_files()), len(ids),
                                 timeout, postfix_queued(), mta_log_tail()))
        time.sleep(0.01)
    grace = time.monotonic() + 2
    while len(maildir_files()) < len(ids) and time.monotonic() < grace:
        time.sleep(0.01)
    seen = collections.Counter()
    files = maildir_files()
    for p in files:
        with open(p, "rb") as f:
            m = MSGID.search(f.read(8192).split(b"\n\n", 1)[0])
        seen[m.group(1).decode(errors="replace") if m else "(none)"] += 1
    want = set(ids)
    missing = sorted(want - set(seen))
    twice = sorted(k for k, v in seen.items() if k in want and v > 1)
    other = sorted(k for k in seen if k not in want)
    if missing or twice or other:
        raise BenchError("%s: %d messages arrived for %d sent: missing %s, "
                         "more than once %s, unexpected %s" % (
                             what, len(files), len(ids), missing[:5] or "none",
                             twice[:5] or "none", other[:5] or "none"))
    for p in files:
        os.unlink(p)


def fig6(q):
    """Flushing a queue: outbox -q sends N queued messages over one
    connection; msmtpq runs msmtp once per queued message."""
    n_msgs = 50 if q else 200
    n = 1 if q else 3
    d = tempfile.mkdtemp(prefix="fig6.", dir=WORK)
    qdir = os.path.join(d, "state", "outbox", "queue")
    env = dict(ENV, XDG_STATE_HOME=os.path.join(d, "state"),
               XDG_CACHE_HOME=os.path.join(d, "cache"))
    cfg = os.path.join(d, "flush.conf")
    up = {"starttls": (int(ENVF["SUBMISSION_PORT"]), True)}
    msgs, ids = [], []
    for k in range(n_msgs):
        marker = "f6-%03d" % k
        p = os.path.join(d, "%s.eml" % marker)
        make_message(p, 2048, marker, subject="outbox bench: queued %d/%d"
                     % (k + 1, n_msgs))
        msgs.append(p)
        ids.append("%s@example.org" % marker)
    # outbox as is, and with --auth=plain when that what-if is measured.
    variants = [("outbox", "outbox", [])]
    for key, c, extra in WHATIF:
        if split_env(extra) == (["--auth=plain"], {}):
            variants.append((key, c, extra))
    variants.append(("msmtp", "msmtp", []))
    port, held = closed_port()
    res = collections.defaultdict(lambda: {"rate": [], "fill": []})

    def queue_entries():
        try:
            return [x for x in os.listdir(qdir)
                    if os.path.exists(os.path.join(qdir, x, "env"))]
        except FileNotFoundError:
            return []

    def run_outbox(key, extra):
        write_config(cfg, {"starttls": (port, True)})
        t0 = time.perf_counter()
        for k, p in enumerate(msgs):
            r = spawn([CLIENTS["outbox"], "-C", cfg, "-a", "starttls"] +
                      extra + [RCPT], p, env)
            if r.rc != 0 or "queued as" not in r.stderr:
                raise BenchError("%s did not queue message %d with the "
                                 "server down (exit %d):\n%s" % (
                                     key, k + 1, r.rc, r.stderr))
        fill = time.perf_counter() - t0
        if len(queue_entries()) != n_msgs or maildir_files():
            raise BenchError("%s: %d entries queued for %d messages, %d "
                             "arrived" % (key, len(queue_entries()), n_msgs,
                                          len(maildir_files())))
        write_config(cfg, up)
        r = spawn([CLIENTS["outbox"], "-C", cfg, "-q"] + extra, os.devnull,
                  env)
        if r.rc != 0:
            raise BenchError("%s -q failed (exit %d):\n%s\nPostfix log:\n%s"
                             % (key, r.rc, r.stderr, mta_log_tail()))
        left = queue_entries()
        failed = os.listdir(os.path.join(qdir, "failed"))
        if left or failed:
            raise BenchError("%s -q exited 0 but left %d entries queued and "
                             "%d failed:\n%s" % (key, len(left), len(failed),
                                                 r.stderr))
        check_arrived_once(ids, "%s -q" % key)
        return r.wall, fill

    def run_msmtp():
        write_config(cfg, up)
        t0 = time.perf_counter()
        for k, p in enumerate(msgs):
            r = spawn([CLIENTS["msmtp"], "-C", cfg, "-a", "starttls", RCPT],
                      p, env)
            if r.rc != 0:
                raise BenchError("msmtp failed on queued message %d (exit "
                                 "%d):\n%s\nPostfix log:\n%s" % (
                                     k + 1, r.rc, r.stderr, mta_log_tail()))
        t = time.perf_counter() - t0
        check_arrived_once(ids, "%d msmtp runs" % n_msgs)
        return t

    log("fig 6: flush %d queued messages, %d time(s) per client (outbox -q "
        "against %d msmtp runs)" % (n_msgs, n, n_msgs))
    try:
        # One uncounted send fills this folder's TLS session cache, as the
        # warm-up runs do for the other figures.
        write_config(cfg, up)
        submit("outbox", ["-C", cfg, "-a", "starttls", RCPT], msgs[0],
               "f6-000", env=env, what=" (fig 6 warm-up)")
        for i in range(n):
            for key, c, extra in (variants if i % 2 == 0 else
                                  variants[::-1]):
                if c == "msmtp":
                    res[key]["rate"].append(n_msgs / run_msmtp())
                else:
                    t, fill = run_outbox(key, extra)
                    res[key]["rate"].append(n_msgs / t)
                    res[key]["fill"].append(n_msgs / fill)
    finally:
        for s in held:
            s.close()
        shutil.rmtree(d, ignore_errors=True)
    b = median(res["msmtp"]["rate"])
    for key, c, extra in variants[:-1]:
        opts = " ".join(split_env(extra)[0])
        row("6", "flush %d queued, %s" % (n_msgs, opts or "STARTTLS"),
            median(res[key]["rate"]), b, "msg/s", "%.1f", "(none given)",
            None)
    row("6", "queueing %d, server down" % n_msgs,
        median(res["outbox"]["fill"]), None, "msg/s", "%.0f", "(no target)",
        None)
    return res


# ---------------------------------------------------------------- main

# ---------------------------------------------------------------- figure 7

CAROL = ("carol", "c4rol scram-7")     # SCRAM-SHA-256 stored, one salt


def fig7(q):
    """CPU per submission with the password in the keyring: SCRAM-SHA-256
    with the salted password kept there (no PBKDF2) against PLAIN."""
    n = 5 if q else 30
    warm = 2
    msg = os.path.join(WORK, "msg-2k.eml")
    cfg = os.path.join(WORK, "fig7.conf")
    port = int(ENVF["SUBMISSION_PORT"])
    lines = ["# written by bench/bench.py (figure 7)", "account starttls",
             "host localhost", "port %d" % port, "tls on",
             "tls_trust_file %s" % ENVF["MTA_CA"], "user %s" % CAROL[0],
             "from %s" % SENDER, ""]
    with open(cfg, "w") as f:
        f.write("\n".join(lines))
    os.chmod(cfg, 0o600)
    env = dict(ENV)
    env.update(KEYRING_ENV)
    pw = os.path.join(WORK, "fig7.pw")
    with open(pw, "w") as f:
        f.write(CAROL[1] + "\n")
    # outbox's item, which msmtp's lookup finds too.
    r = spawn([CLIENTS["outbox"], "-C", cfg, "-a", "starttls",
               "--store-password"], pw, env)
    os.unlink(pw)
    if r.rc != 0:
        raise BenchError("fig 7: --store-password failed: %s" % r.stderr)
    base = ["-C", cfg, "-a", "starttls"]
    variants = [
        ("outbox PLAIN", "outbox", ["--auth=plain"]),
        ("outbox SCRAM kept", "outbox", ["--auth=scram-sha-256"]),
        ("outbox SCRAM computed", "outbox", ["--auth=scram-sha-256"]),
        ("msmtp PLAIN", "msmtp", ["--auth=plain"]),
        ("msmtp SCRAM", "msmtp", ["--auth=scram-sha-256"]),
    ]

    def clear_keys():
        subprocess.run(["secret-tool", "clear", "service", "smtp-scram"],
                       env=env, check=False)

    # The kept key must be the one used: -v says so.
    submit("outbox", base + ["-v", "--auth=scram-sha-256", RCPT], msg, "f1",
           env=env, what=" (fig 7, first SCRAM session)")
    r = submit("outbox", base + ["-v", "--auth=scram-sha-256", RCPT], msg,
               "f1", env=env, what=" (fig 7, check)")
    if "used the kept salted password" not in r.stderr:
        raise BenchError("fig 7: the second SCRAM session did not use the "
                         "kept key:\n%s" % r.stderr)
    res = collections.defaultdict(list)
    log("fig 7: keyring password, %d submissions per variant (+%d warm-up)"
        % (n, warm))
    for i in range(n + warm):
        vs = variants if i % 2 == 0 else list(reversed(variants))
        for key, c, extra in vs:
            if key == "outbox SCRAM computed":
                clear_keys()
            # It keeps a new key, which the kept variant then uses.
            r = submit(c, base + extra + [RCPT], msg, "f1", env=env,
                       what=" (fig 7, %s)" % key)
            if i >= warm:
                res[key].append(r.cpu * 1000)
    # Instructions, which load does not disturb (1 run each).
    ins = {}
    for key, extra in (("outbox PLAIN", ["--auth=plain"]),
                       ("outbox SCRAM kept", ["--auth=scram-sha-256"])):
        out = os.path.join(WORK, "callgrind.fig7.%s" % key.split()[1])
        submit("outbox", base + extra + [RCPT], msg, "f1", env=env,
               wrap=["valgrind", "--tool=callgrind", "-q",
                     "--callgrind-out-file=%s" % out],
               arrival_timeout=60, what=" (fig 7 under valgrind)")
        ins[key] = callgrind_total(out)
    m = {k: median(v) for k, v in res.items()}
    row("7", "CPU/submission, keyring, PLAIN", m["outbox PLAIN"],
        m["msmtp PLAIN"], "ms", "%.1f", "(no target)", None)
    row("7", "CPU/submission, keyring, SCRAM-SHA-256, key kept",
        m["outbox SCRAM kept"], m["msmtp SCRAM"], "ms", "%.1f",
        "(no target)", None)
    row("7", "CPU/submission, keyring, SCRAM-SHA-256, computed",
        m["outbox SCRAM computed"], m["msmtp SCRAM"], "ms", "%.1f",
        "(no target)", None)
    ratio = m["outbox SCRAM kept"] / m["outbox PLAIN"]
    row("7", "outbox CPU: SCRAM-SHA-256 kept key / PLAIN", ratio, None, "",
        "%.2f", "<= 1.2", ratio <= 1.2, ratio=False)
    iratio = ins["outbox SCRAM kept"] / ins["outbox PLAIN"]
    row("7", "outbox instructions: SCRAM-SHA-256 kept key / PLAIN", iratio,
        None, "", "%.2f", "(no target)", None, ratio=False)
    return {"cpu": res, "ins": ins}


def fig8(q):
    """The queue looks after itself: a message queued while Postfix is
    down, sent by the background retrier once Postfix is back.  Measured:
    how long after its due time it arrives.  msmtp has no queue."""
    n = 3 if q else 10
    mta_sh = os.path.join(TOP, "tests", "lib", "mta.sh")
    late = []
    for i in range(n):
        d = tempfile.mkdtemp(prefix="fig8.", dir=WORK)
        qdir = os.path.join(d, "state", "outbox", "queue")
        env = dict(ENV, XDG_STATE_HOME=os.path.join(d, "state"),
                   XDG_CACHE_HOME=os.path.join(d, "cache"))
        env.pop("OUTBOX_NO_RETRIER", None)
        cfg = os.path.join(d, "fig8.conf")
        write_config(cfg, {"starttls": (int(ENVF["SUBMISSION_PORT"]), True)})
        with open(cfg, "a") as f:
            f.write("queue_retry 2s\nqueue_retry_max 2s\n")
        msg = os.path.join(d, "msg")
        marker = "f8-%03d" % i
        make_message(msg, 2048, marker)
        subprocess.run([mta_sh, "postfix-stop", MTA], check=True)
        try:
            r = spawn([CLIENTS["outbox"], "-C", cfg, "-a", "starttls", RCPT],
                      msg, env=env)
            if r.rc != 0 or "queued as" not in r.stderr:
                raise BenchError("fig 8: the message was not queued: %s"
                                 % r.stderr.strip())
            envs = [os.path.join(qdir, e, "env") for e in os.listdir(qdir)
                    if os.path.exists(os.path.join(qdir, e, "env"))]
            with open(envs[0]) as f:
                due = int(re.search(r"^next: (\d+)$", f.read(), re.M)[1])
        finally:
            subprocess.run([mta_sh, "postfix-start", MTA], check=True)
        wait_arrival(1, marker, timeout=30)
        late.append(time.time() - due)
        shutil.rmtree(d, ignore_errors=True)
    m = median(late)
    row("8", "queued while Postfix was down: arrival past due", m, None,
        "s", "%.2f", "< 2 s after due, no -q", m < 2.0, ratio=False)
    return {"late": late}


def fig9(q, delay_ms):
    """A real git send-email of a 20-patch series at RTT 2 * delay_ms:
    outbox with shared sessions, outbox without, msmtp."""
    n = 1 if q else 3
    d = tempfile.mkdtemp(prefix="fig9.", dir=WORK)
    repo = os.path.join(d, "repo")
    genv = dict(ENV, GIT_AUTHOR_NAME="Alice", GIT_AUTHOR_EMAIL=SENDER,
                GIT_COMMITTER_NAME="Alice", GIT_COMMITTER_EMAIL=SENDER,
                HOME=d)
    subprocess.run(["git", "init", "-q", repo], check=True, env=genv)
    for k in range(21):
        with open(os.path.join(repo, "f%02d.txt" % k), "w") as f:
            f.write("patch %d\n" % k * 40)
        subprocess.run(["git", "-C", repo, "add", "."], check=True, env=genv)
        subprocess.run(["git", "-C", repo, "commit", "-q", "-m",
                        "bench: patch %d" % k], check=True, env=genv)
    pdir = os.path.join(d, "patches")
    subprocess.run(["git", "-C", repo, "format-patch", "-q", "-o", pdir,
                    "--add-header=X-Bench: f9", "HEAD~20"], check=True,
                   env=genv)
    patches = sorted(os.path.join(pdir, f) for f in os.listdir(pdir))
    px = RtProxy("gitse", int(ENVF["SUBMISSION_PORT"]), delay_ms)
    res = collections.defaultdict(list)
    try:
        cfg = os.path.join(d, "gitse.conf")
        write_config(cfg, {"px": (px.port, True)})
        variants = (("outbox shared", "outbox", {"OUTBOX_LINGER": "5"}),
                    ("outbox", "outbox", {}), ("msmtp", "msmtp", {}))
        log("fig 9: git send-email of 20 patches, RTT %g ms, %d time(s)" %
            (2 * delay_ms, n))
        for i in range(n):
            for key, c, extra in variants:
                holders_gone()
                argv = ["git", "send-email", "--quiet", "--confirm=never",
                        "--suppress-cc=all", "--no-thread",
                        "--to=%s" % RCPT, "--from=%s" % SENDER,
                        "--smtp-server=%s" % CLIENTS[c]]
                for o in ("-C", cfg, "-a", "px"):
                    argv.append("--smtp-server-option=%s" % o)
                t0 = time.perf_counter()
                r = subprocess.run(argv + patches, env=dict(genv, **extra),
                                   stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, cwd=repo)
                t = time.perf_counter() - t0
                if r.returncode != 0:
                    raise BenchError("fig 9: git send-email with %s failed "
                                     "(exit %d):\n%s" % (key, r.returncode,
                                                         r.stderr[-2000:]))
                wait_arrival(20, "f9", timeout=60)
                res[key].append(t * 1000)
    finally:
        px.stop()
        holders_gone()
        shutil.rmtree(d, ignore_errors=True)
    sh, plain, ms_ = (median(res[k]) for k in ("outbox shared", "outbox",
                                               "msmtp"))
    row("9", "git send-email, 20 patches, RTT %g ms" % (2 * delay_ms),
        plain, ms_, "ms", "%.0f", "(none given)", None)
    row("9", "git send-email, 20 patches, RTT %g ms, shared sessions" %
        (2 * delay_ms), sh, ms_, "ms", "%.0f", "<= 0.25 of msmtp",
        sh <= 0.25 * ms_)
    return res


def versions():
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=10).stdout.splitlines()[0]
        except Exception:
            return "?"
    rev = first(["git", "-C", TOP, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", TOP, "status", "--porcelain",
                            "--untracked-files=no", "--", "src", "cmd"],
                           capture_output=True, text=True).stdout.strip()
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for l in f:
            if l.startswith("model name"):
                cpu = l.split(":", 1)[1].strip()
                break
    return [
        "date: %s" % datetime.datetime.now().astimezone().strftime(
            "%Y-%m-%d %H:%M %Z"),
        "machine: %d cores (%s), %s, Linux %s" % (
            os.cpu_count(), cpu, "%.0f GiB" % (os.sysconf("SC_PAGE_SIZE") *
                                              os.sysconf("SC_PHYS_PAGES") /
                                              2**30), platform.release()),
        ("outbox: %s (git %s%s)" % (first([CLIENTS["outbox"], "--version"]),
                                    rev, ", src/cmd modified" if dirty
                                    else "")
         if CLIENTS["outbox"] == os.path.join(TOP, "outbox") else
         "outbox: %s (%s, not this tree's build)" % (
             first([CLIENTS["outbox"], "--version"]), CLIENTS["outbox"])),
        "msmtp: %s" % first([CLIENTS["msmtp"], "--version"]),
        "server: Postfix %s, Dovecot %s (tests/lib/mta.sh)" % (
            first(["postconf", "-dh", "mail_version"]),
            first(["dovecot", "--version"]).split()[0]),
    ]


def main():
    global WORK, MTA, MAILDIR, ENVF, ENV, CFG, CLIENTS, CLIENT_NAMES, TIME
    global WHATIF, KEYRING_ENV, RUNTIME
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--mta", required=True)
    ap.add_argument("--outbox", required=True)
    ap.add_argument("--msmtp", default="/usr/bin/msmtp")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--delay", type=float, default=25.0)
    ap.add_argument("--figures", default="1,2,3,4,5,6,7,8,9")
    ap.add_argument("--keyring", help="keyring.env of tests/lib/keyring.sh "
                    "(figure 7)")
    ap.add_argument("--keep", help="copy traces and callgrind files here")
    ap.add_argument("--whatif", default=DEFAULT_WHATIF,
                    help="outbox option sets to measure too, ';'-separated "
                    "(default: %(default)s; empty: none)")
    a = ap.parse_args()
    # SIGTERM (run.sh's trap) unwinds, so that the proxies are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    WORK, MTA = a.work, a.mta
    TIME = "/usr/bin/time"
    ENVF = {}
    with open(os.path.join(MTA, "env")) as f:
        for l in f:
            m = re.match(r"export (\w+)=(.*)", l.strip())
            if m:
                ENVF[m.group(1)] = m.group(2)
    MAILDIR = ENVF["MTA_MAILDIR"]
    # Figure 7 alone uses a keyring, given in its own environment.
    KEYRING_ENV = {}
    if a.keyring:
        with open(a.keyring) as f:
            for l in f:
                m = re.match(r"export (\w+)=(.*)", l.strip())
                if m:
                    KEYRING_ENV[m.group(1)] = m.group(2)
    # No keyring, no user config: only what the bench gives.
    RUNTIME = os.path.join(WORK, "run")
    os.makedirs(RUNTIME, mode=0o700, exist_ok=True)
    # Shared sessions only where a figure asks for them (figures 5 and 9).
    ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": WORK,
           "LANG": "C", "TMPDIR": WORK, "USER": "root",
           "XDG_RUNTIME_DIR": RUNTIME, "OUTBOX_LINGER": "0"}
    CLIENTS = {"outbox": os.path.abspath(a.outbox), "msmtp": a.msmtp}
    CLIENT_NAMES = ["outbox", "msmtp"]
    CFG = os.path.join(WORK, "bench.conf")
    write_config(CFG, {"starttls": (int(ENVF["SUBMISSION_PORT"]), True),
                       "smtps": (int(ENVF["SMTPS_PORT"]), False)})
    WHATIF = []
    for opts in filter(None, (w.strip() for w in a.whatif.split(";"))):
        extra = opts.split()
        if extra[0] == "msmtp":
            # msmtp variants: msmtp --pretend would also accept a bad one,
            # so a typo shows as a failed submission.
            WHATIF.append((opts, "msmtp", extra[1:]))
            continue
        args, env = split_env(extra)
        # Only options this outbox knows: -P shows the account, sends nothing.
        r = spawn([CLIENTS["outbox"], "-C", CFG, "-a", "starttls"] + args +
                  ["-P"], os.devnull)
        label = " ".join(["outbox"] + args + [
            "(no TLS session cache)" if k == "XDG_CACHE_HOME" and
            v == "@fresh" else "%s=%s" % (k, v) for k, v in env.items()])
        if r.rc == 0:
            WHATIF.append((label, "outbox", extra))
        else:
            log("what-if '%s' skipped: outbox -P refused it: %s" % (
                opts, r.stderr.strip().splitlines()[0:1]))
    maildir_clear()
    make_message(os.path.join(WORK, "msg-2k.eml"), 2048, "f1")
    figs = set(a.figures.split(","))
    t0 = time.monotonic()
    extra = {}
    load0 = os.getloadavg()
    try:
        for f, fn, args in (("1", fig1, ()), ("2", fig2, ()),
                            ("3", fig3, (a.delay,)), ("4", fig4, ()),
                            ("5", fig5, (a.delay,)), ("6", fig6, ()),
                            ("7", fig7, ()), ("8", fig8, ()),
                            ("9", fig9, (a.delay,))):
            if f in figs:
                t1 = time.monotonic()
                extra["f" + f] = fn(a.quick, *args)
                log("   (%.0f s)" % (time.monotonic() - t1))
    except BenchError as e:
        print("\nbench: FAILED: %s" % e, file=sys.stderr)
        return 1
    elapsed = time.monotonic() - t0
    out = sys.stdout
    out.write("\n== outbox vs msmtp (%s mode, medians; %.0f s)\n" % (
        "quick" if a.quick else "full", elapsed))
    for v in versions():
        out.write("   %s\n" % v)
    out.write("   load average: %.2f before, %.2f after (other work on the "
              "machine adds noise)\n" % (load0[0], os.getloadavg()[0]))
    out.write("   what-ifs: %s\n" % (", ".join(k for k, c, x in WHATIF)
                                       or "none"))
    out.write("\n")
    print_table(out)
    if WHATIF and ("f1" in extra or "f2" in extra or "f3" in extra):
        out.write("\nBoth clients and the what-ifs (outbox with other "
                  "options), medians:\n")
        out.write("   %-40s %-9s %8s %7s %8s %6s %8s %7s %7s\n" % (
            "", "", "loopback", "", "", "proxy", "", "client", "server"))
        out.write("   %-40s %-9s %8s %7s %8s %6s %8s %7s %7s\n" % (
            "variant", "port", "wall ms", "CPU ms", "instr M", "waits",
            "wall ms", "ms", "ms"))
        for key, c, x in [("outbox", "outbox", []),
                          ("msmtp", "msmtp", [])] + WHATIF:
            for acct in ("starttls", "smtps"):
                f1 = extra.get("f1", {}).get((key, acct))
                f2 = extra.get("f2", ({}, 0, 0))[0].get((key, acct))
                f3 = extra.get("f3", ({}, 0))[0].get((key, acct))
                out.write("   %-40s %-9s %8s %7s %8s %6s %8s %7s %7s\n" % (
                    key, acct,
                    fmtv(median(f1["wall"]) if f1 else None, "%.1f"),
                    fmtv(median(f1["cpu"]) if f1 else None, "%.1f"),
                    fmtv(median(f2) / 1e6 if f2 else None, "%.2f"),
                    fmtv(median(f3["waits"]) if f3 else None, "%.0f"),
                    fmtv(median(f3["wall"]) if f3 else None, "%.0f"),
                    fmtv(median(f3["cms"]) if f3 else None, "%.1f"),
                    fmtv(median(f3["sms"]) if f3 else None, "%.1f")))
        out.write("   (client/server ms: think time seen by rtproxy, the "
                  "time each side took to answer, summed over the turns)\n")
    if "f2" in extra:
        for key, c, x in runners():
            out.write("\n%s, STARTTLS: top 5 inclusive costs by shared "
                      "object (callgrind, instructions):\n" % key)
            out.write(extra["f2"][1][key] + "\n")
    if "f3" in extra:
        for key in sorted(k for k in extra["f3"][1]
                          if k[0] in ("outbox", "msmtp")):
            out.write("\nrtproxy trace, %s, %s (first measured run):\n" % key)
            for l in extra["f3"][1][key]:
                out.write("   " + l + "\n")
    if "f7" in extra:
        out.write("\nFigure 7, CPU ms per run (sorted), keyring password:\n")
        for key, v in extra["f7"]["cpu"].items():
            out.write("   %-22s %s\n" % (key, "  ".join(
                "%.1f" % x for x in sorted(v))))
        out.write("   instructions (callgrind, 1 run): %s\n" % ", ".join(
            "%s %.2f M" % (k, v / 1e6) for k, v in extra["f7"]["ins"].items()))
    if "f6" in extra:
        out.write("\nFigure 6, each run in order (messages per second):\n")
        for key, d in extra["f6"].items():
            for what, label in (("rate", "flush" if key != "msmtp" else
                                 "in a row"), ("fill", "queueing")):
                if d[what]:
                    out.write("   %-28s %-9s %s\n" % (key, label, "  ".join(
                        "%.1f" % v for v in d[what])))
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        for n in os.listdir(WORK):
            if n.startswith(("callgrind.", "rtproxy.")):
                shutil.copy(os.path.join(WORK, n), a.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
