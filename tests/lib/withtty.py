#!/usr/bin/python3
"""withtty.py ANSWER CMD...: run CMD with a new controlling terminal while
its stdin stays ours (the message); type ANSWER when it asks on the
terminal.  Prints what CMD wrote to the terminal; exits with CMD's status.
Used to test outbox's password prompt on /dev/tty (WITHTTY_PROMPT: the
text to wait for, "password" by default)."""
import os
import pty
import select
import sys
import time

answer, argv = sys.argv[1].encode() + b"\n", sys.argv[2:]
stdin_fd = os.dup(0)
pid, master = pty.fork()
if pid == 0:
    os.dup2(stdin_fd, 0)
    os.execvp(argv[0], argv)
seen, sent = b"", False
deadline = time.time() + 20
while time.time() < deadline:
    r, _, _ = select.select([master], [], [], 0.2)
    if master in r:
        try:
            chunk = os.read(master, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if not sent and os.environ.get("WITHTTY_PROMPT", "password").encode() in seen:
            os.write(master, answer)
            sent = True
if time.time() >= deadline:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
