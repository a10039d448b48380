#!/usr/bin/env python3
"""Check a delivery status notification (RFC 3464) with Python's own MIME
parser, field by field.

    dsncheck.py FILE KEY=VALUE...

Keys: action, status, rcpt, diag (a substring of Diagnostic-Code), human (a
substring of the text part), original (message/rfc822 or
text/rfc822-headers), orig_has (a substring of the original part), to,
subject.  Prints what differs and exits 1, or exits 0.
"""
import email
import email.policy
import sys


def main():
    with open(sys.argv[1], "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    want = dict(a.split("=", 1) for a in sys.argv[2:])
    bad = []

    def check(what, ok, got):
        if not ok:
            bad.append(f"{what}: got {got!r}")

    check("content type", msg.get_content_type() == "multipart/report",
          msg.get_content_type())
    check("report-type", msg.get_param("report-type") == "delivery-status",
          msg.get_param("report-type"))
    check("Auto-Submitted", msg["Auto-Submitted"] == "auto-replied",
          msg["Auto-Submitted"])
    parts = msg.get_payload()
    check("three parts", len(parts) == 3, [p.get_content_type() for p in parts])
    if len(parts) != 3:
        print("\n".join(bad), file=sys.stderr)
        return 1
    human, status, original = parts
    check("first part", human.get_content_type() == "text/plain",
          human.get_content_type())
    check("second part", status.get_content_type() == "message/delivery-status",
          status.get_content_type())
    blocks = status.get_payload()
    check("status blocks", len(blocks) >= 2, len(blocks))
    per_msg, rcpts = blocks[0], blocks[1:]
    check("Reporting-MTA", (per_msg["Reporting-MTA"] or "").startswith("dns;"),
          per_msg["Reporting-MTA"])
    check("Arrival-Date", per_msg["Arrival-Date"] is not None, None)
    text = human.get_content()
    if "rcpt" in want:
        mine = [b for b in rcpts
                if (b["Final-Recipient"] or "").split(";")[-1].strip() == want["rcpt"]]
        check("Final-Recipient " + want["rcpt"], len(mine) == 1,
              [b["Final-Recipient"] for b in rcpts])
        if mine:
            b = mine[0]
            if "action" in want:
                check("Action", b["Action"] == want["action"], b["Action"])
            if "status" in want:
                check("Status", b["Status"] == want["status"], b["Status"])
            if "diag" in want:
                check("Diagnostic-Code", want["diag"] in (b["Diagnostic-Code"] or ""),
                      b["Diagnostic-Code"])
            if want.get("action") == "delayed":
                check("Will-Retry-Until", b["Will-Retry-Until"] is not None, None)
        check("rcpt in text", want["rcpt"] in text, text)
    if "human" in want:
        check("text", want["human"] in text, text)
    if "original" in want:
        check("original type", original.get_content_type() == want["original"],
              original.get_content_type())
    if "orig_has" in want:
        if original.get_content_type() == "message/rfc822":
            body = original.get_payload()[0].as_string()
        else:
            body = original.get_payload(decode=True).decode("utf-8", "replace")
        check("original holds " + want["orig_has"], want["orig_has"] in body, body)
    if "to" in want:
        check("To", want["to"] in str(msg["To"]), msg["To"])
    if "subject" in want:
        check("Subject", want["subject"] in str(msg["Subject"]), msg["Subject"])
    if bad:
        print("\n".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
