#!/usr/bin/env python3
"""rccompare.py OUTBOX FILE: outbox -P against msmtp -P for an msmtprc.

For each account FILE declares (and "default"), both programs print the
account as resolved; every value outbox says came from FILE must be the
value msmtp resolves for it, after the few differences of notation between
the two (msmtp's "30 seconds" is outbox's "30", "choose" is "on"...).  A
file one program accepts and the other refuses is a mismatch too.  Prints
one line per mismatch and exits 1 when there is any.
"""
import getpass
import os
import re
import subprocess
import sys

# outbox's name -> msmtp's, where they differ
NAMES = {"source_ip": "source ip", "proxy_host": "proxy host",
         "proxy_port": "proxy port", "set_to_header": "undisclosed_recipients"}


def norm(key, value):
    """A value in a notation both programs' values can be compared in."""
    v = value.strip()
    if v == "(not set)":
        return ""
    if key == "timeout":
        return v.replace(" seconds", "")
    if key == "auth":
        return {"choose": "on", "none": "off"}.get(v, v.lower())
    if key in ("dsn_notify",):
        return v.lower()
    if key == "dsn_return":
        return {"HDRS": "headers", "FULL": "full"}.get(v, v.lower())
    if key == "set_to_header":
        return {"undisclosed_recipients": "on"}.get(v, v)
    if key == "from":
        # outbox shows the pattern as written and expands it when sending
        return v.replace("%U", os.environ.get("USER") or getpass.getuser())
    if key == "syslog":
        # the one documented difference: "on" is LOG_MAIL, not LOG_USER
        return {"on": "LOG_USER"}.get(v, v)
    return v


def run(cmd, env):
    p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, errors="replace")
    return p.returncode, p.stdout, p.stderr


def msmtp_values(path, account, env):
    rc, out, err = run(["msmtp", "-C", path, "-a", account, "-P"], env)
    vals = {}
    for line in out.splitlines():
        m = re.match(r"^([a-z_ ]+?) = (.*)$", line)
        if m:
            vals[m.group(1)] = m.group(2)
    return rc, vals, err.strip()


def outbox_values(outbox, path, account, env):
    rc, out, err = run([outbox, "-C", path, "-a", account, "-P"], env)
    vals = {}
    base = os.path.basename(path)
    for line in out.splitlines():
        m = re.match(r"^    ([a-z_0-9]+) += (.*?)  \((.*):(\d+)\)$", line)
        if m and os.path.basename(m.group(3)) == base:
            vals[m.group(1)] = m.group(2)
    return rc, vals, err.strip()


def accounts(path):
    names = ["default"]
    with open(path, "rb") as f:
        for raw in f.read().decode("utf-8", "replace").splitlines():
            m = re.match(r"^\s*account\s+([^\s:]+)", raw)
            if m and m.group(1) not in names:
                names.append(m.group(1))
    return names


def main():
    outbox, path = sys.argv[1], sys.argv[2]
    env = dict(os.environ, OUTBOX_SYSCONF="")
    bad = checked = 0
    for acct in accounts(path):
        mrc, mvals, merr = msmtp_values(path, acct, env)
        orc, ovals, oerr = outbox_values(outbox, path, acct, env)
        if (mrc == 0) != (orc == 0):
            print(f"{path}: account {acct}: msmtp exit {mrc} ({merr}), "
                  f"outbox exit {orc} ({oerr})")
            bad += 1
            continue
        if orc != 0:
            continue
        if not ovals:
            print(f"{path}: account {acct}: outbox shows no value from the file")
            bad += 1
        for key, val in sorted(ovals.items()):
            mkey = NAMES.get(key, key)
            if mkey not in mvals:
                continue        # a command msmtp 1.8.23 does not show
            checked += 1
            if norm(key, val) != norm(key, mvals[mkey]):
                print(f"{path}: account {acct}: {key}: outbox '{val}', "
                      f"msmtp '{mvals[mkey]}'")
                bad += 1
    if os.environ.get("RCCOMPARE_VERBOSE"):
        print(f"{path}: {checked} values compared")
    sys.exit(1 if bad else 0)


main()
