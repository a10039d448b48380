#!/usr/bin/env bats
# SMTP smuggling and injection: whatever the input holds, the server gets
# exactly one message, whose end is the one outbox sends, and no line
# break that is not CRLF.  Checked byte for byte at the server.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'lib/faultsmtp'
bats_require_minimum_version 1.5.0

setup() {
	OUTBOX=${OUTBOX:-$BATS_TEST_DIRNAME/../outbox}
	export XDG_STATE_HOME=$BATS_TEST_TMPDIR/state XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache
}

teardown() {
	fault_stop
}

# Send the message on stdin through a server without CHUNKING, so that
# DATA with dot-stuffing is used, and print the data the server got.
data_at_server() {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		loop_until_quit
	EOF
	printf 'account default\nhost 127.0.0.1\nport %s\ntls off\nauth off\nfrom a@example.org\nset_date_header off\nset_msgid_header off\nqueue off\n' \
		"$FAULT_PORT" >"$BATS_TEST_TMPDIR/rc"
	"$OUTBOX" -i -C "$BATS_TEST_TMPDIR/rc" b@example.org
	fault_wait >/dev/null
}

# The invariant: after DATA, one end-of-data only, at the very end, and
# every CR and LF part of a CRLF.
check_one_message() {
	/usr/bin/python3 - "$FAULT_LOG" <<-'PY'
		import sys
		raw = open(sys.argv[1], "rb").read()
		data = raw.split(b"DATA\r\n", 1)[1]
		body, sep, rest = data.partition(b"\r\n.\r\n")
		assert sep, "no end of data"
		assert rest in (b"QUIT\r\n", b""), "bytes after the end of data: %r" % rest[:80]
		msg = body + b"\r\n"
		assert b"\r\n.\r\n" not in msg, "a second end of data"
		stripped = msg.replace(b"\r\n", b"")
		assert b"\r" not in stripped and b"\n" not in stripped, "bare CR or LF"
		print(repr(msg))
	PY
}

@test "bare LF dot LF inside the body is content, not an end" {
	data_at_server < <(printf 'Subject: s\n\nbefore\n.\nMAIL FROM:<evil@x>\nRCPT TO:<victim@y>\nDATA\nSmuggled\n.\nafter\n')
	run check_one_message
	assert_success
	assert_output --partial '..\r\nMAIL FROM:<evil@x>\r\n'
	assert_output --partial 'after\r\n'
}

@test "CR LF dot CR LF inside the body is dot-stuffed" {
	data_at_server < <(printf 'Subject: s\r\n\r\nbefore\r\n.\r\nMAIL FROM:<evil@x>\r\n.\r\nafter\r\n')
	run check_one_message
	assert_success
	assert_output --partial 'before\r\n..\r\nMAIL FROM:<evil@x>\r\n..\r\nafter'
}

@test "bare CR dot CR and mixed .\\r\\n variants never end the data" {
	data_at_server < <(printf 'Subject: s\n\nx\r.\ry\n.\r\nz\r\n.\nw\n\r.\r\nend\n')
	run check_one_message
	assert_success
	assert_output --partial 'end\r\n'
}

@test "a NUL byte is refused before anything is sent" {
	fault_start $'send 220 hi\nloop_until_quit'
	printf 'account default\nhost 127.0.0.1\nport %s\ntls off\nauth off\nfrom a@example.org\nqueue off\n' \
		"$FAULT_PORT" >"$BATS_TEST_TMPDIR/rc"
	run --separate-stderr "$OUTBOX" -i -C "$BATS_TEST_TMPDIR/rc" b@example.org < <(printf 'Subject: s\n\nx\0\r\n.\r\nMAIL FROM:<e@x>\n')
	assert_equal "$status" 65
	fault_stop
	[[ ! -s $FAULT_LOG ]]
}

@test "CR or LF in -F cannot add a header" {
	run --separate-stderr "$OUTBOX" -F $'Name\r\nBcc: victim@example.org' -C /dev/null --host=127.0.0.1 b@example.org </dev/null
	assert_equal "$status" 64
	assert_regex "$stderr" '-F: the address contains control characters'
}

@test "a full name with specials is quoted in the From that outbox adds" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		loop_until_quit
	EOF
	printf 'account default\nhost 127.0.0.1\nport %s\ntls off\nauth off\nfrom a@example.org\nqueue off\n' "$FAULT_PORT" >"$BATS_TEST_TMPDIR/rc"
	run "$OUTBOX" -C "$BATS_TEST_TMPDIR/rc" -F 'Eve, "the admin" <root@x>' b@example.org < <(printf 'Subject: s\n\nbody\n')
	assert_success
	fault_wait
	run grep -a '^From:' "$FAULT_LOG"
	assert_output $'From: "Eve, \\"the admin\\" <root@x>" <a@example.org>\r'
}

@test "an address cannot close the path early and smuggle ESMTP parameters" {
	for a in '@"a:\"x> RET=FULL"@example.org' '"a\"" b@c.org' '<@x:>' 'x@y> NOTIFY=NEVER' 'a\"b@c.org'; do
		run --separate-stderr "$OUTBOX" -C /dev/null --host=127.0.0.1 -f "$a" -bv b@example.org
		assert_equal "$status" 64
		run --separate-stderr "$OUTBOX" -C /dev/null --host=127.0.0.1 -bv -- "$a"
		assert_equal "$status" 64
	done
	run "$OUTBOX" -C /dev/null --host=127.0.0.1 -bv -- '"john doe"@example.org' 'u@[IPv6:::1]' 'Team: a@b.org, "x\"y"@c.org;'
	assert_success
	assert_line '<"john doe"@example.org>... deliverable'
	assert_line '<u@[IPv6:::1]>... deliverable'
	assert_line '<"x\"y"@c.org>... deliverable'
}
