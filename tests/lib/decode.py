#!/usr/bin/env python3
"""decode.py FILE [HEADER]: what a mail reader sees in a message file.

Without HEADER: the body, transfer-decoded (quoted-printable, base64), as
bytes on stdout.  With HEADER: that field's value, unfolded (CRLF or LF
before white space removed), on one line.  Python's email package does the
parsing, so outbox's own encoder is not what checks itself.
"""
import email
import email.policy
import sys


def main():
    with open(sys.argv[1], "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.compat32)
    if len(sys.argv) > 2:
        raw = msg.get(sys.argv[2])
        if raw is None:
            sys.exit(1)
        sys.stdout.write(str(raw).replace("\r\n", "").replace("\n", "") + "\n")
        return
    if msg.is_multipart():
        sys.exit("decode.py: a multipart message")
    sys.stdout.buffer.write(msg.get_payload(decode=True))


main()
