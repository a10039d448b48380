#!/usr/bin/env bats
# protocol lmtp: delivery into a local Dovecot over LMTP (RFC 2033), where
# the data gets one reply per recipient.

load 'lib/testbed'
load 'lib/faultsmtp'
bats_require_minimum_version 1.5.0

setup_file() {
	LMTP_BASE=$BATS_FILE_TMPDIR/lmtp
	export LMTP_BASE
	bash "$BATS_TEST_DIRNAME/lib/lmtp.sh" start "$LMTP_BASE"
}

teardown_file() {
	bash "$BATS_TEST_DIRNAME/lib/lmtp.sh" stop "$LMTP_BASE"
}

setup() {
	# shellcheck disable=SC1091
	. "$LMTP_BASE/lmtp.env"
	RC=$BATS_TEST_TMPDIR/rc
	QDIR=$XDG_STATE_HOME/outbox/queue
	printf 'account default\nhost 127.0.0.1\nport %s\nprotocol lmtp\nfrom a@example.org\n' \
		"$LMTP_PORT" >"$RC"
	rm -rf "$LMTP_MAILDIR"/{bob,carol}/Maildir/new/*
}

teardown() {
	fault_stop
}

box() {	# box USER: the newest message in USER's Maildir
	ls -t "$LMTP_MAILDIR/$1/Maildir/new/"* 2>/dev/null | head -n 1
}

@test "a message reaches two Dovecot mailboxes over LMTP, byte for byte" {
	printf 'Subject: over lmtp\nMessage-ID: <l1@example.org>\n\nline one\n.dot\n' >"$BATS_TEST_TMPDIR/m"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org carol@example.org <"$BATS_TEST_TMPDIR/m"
	assert_success
	for u in bob carol; do
		f=$(box $u)
		[[ -n $f ]]
		# Dovecot adds Return-Path and Delivered-To at the top.
		run sed '/^Return-Path:/d; /^Delivered-To:/d; /^Received:/,/^[^ \t]/{/^Received:/d; /^[ \t]/d}' "$f"
		assert_output "$(printf 'Subject: over lmtp\nMessage-ID: <l1@example.org>\nFrom: a@example.org\nDate: %s\n\nline one\n.dot' "$(sed -n 's/^Date: //p' "$f")")"
	done
}

@test "one recipient refused after the data: the other has it, exit 69, nothing queued" {
	# carol's quota is 1 kB: Dovecot refuses a larger message for her alone.
	{ printf 'Subject: big\n\n'; for i in $(seq 60); do printf '%060d\n' "$i"; done; } >"$BATS_TEST_TMPDIR/big"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org carol@example.org <"$BATS_TEST_TMPDIR/big"
	assert_equal "$status" 69
	assert_regex "$stderr" 'end of data for <carol@example.org>: 552 5\.2\.2 .*[Qq]uota'
	[[ -n $(box bob) ]]
	[[ -z $(box carol) ]]
	assert_equal "$(ls -d "$QDIR"/*/env 2>/dev/null | wc -l)" 0
}

@test "an unknown user is refused at RCPT over LMTP: exit 67" {
	run --separate-stderr "$OUTBOX" -C "$RC" nobody@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 67
	assert_regex "$stderr" "RCPT TO:<nobody@example.org>: 550 5\.1\.1"
}

@test "LMTP: a recipient refused for now after the data is queued alone and sent later" {
	fault_start <<-'EOF'
		send 220 lmtp ready
		expect LHLO .*
		send 250-lmtp
		send 250 PIPELINING
		mail_ok
		expect RCPT TO:<b@example.org>
		send 250 ok
		expect RCPT TO:<c@example.org>
		send 250 ok
		data_ok
		data
		send 250 2.0.0 <b@example.org> saved
		send 452 4.2.2 <c@example.org> mailbox busy
		expect QUIT
		send 221 bye
	EOF
	printf 'account default\nhost 127.0.0.1\nport %s\nprotocol lmtp\nfrom a@example.org\ntimeout 5\n' \
		"$FAULT_PORT" >"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" b@example.org c@example.org < <(printf 'Subject: x\n\nx\n')
	assert_success
	assert_regex "$stderr" 'end of data for <c@example.org>: 452 4\.2\.2 <c@example.org> mailbox busy'
	assert_regex "$stderr" 'queued as'
	fault_wait
	run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp '-> <c@example.org>  attempts=1'
	refute_output --partial 'b@example.org'
}

@test "LMTP has no HELO to fall back on: a refused LHLO is a clear error" {
	fault_start <<-'EOF'
		send 220 not lmtp
		expect LHLO .*
		send 500 5.5.1 unknown command
		expect QUIT
		send 221 bye
	EOF
	printf 'account default\nhost 127.0.0.1\nport %s\nprotocol lmtp\nfrom a@example.org\ntimeout 5\nqueue off\n' \
		"$FAULT_PORT" >"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" b@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 69
	assert_regex "$stderr" 'LHLO localhost: 500 5\.5\.1 unknown command'
	fault_wait
}

@test "socket: a message reaches Dovecot over its LMTP Unix socket, not the host and port" {
	# host and port lead nowhere: only the socket can deliver it.
	printf 'account default\nhost 127.0.0.1\nport 1\nsocket %s\nprotocol lmtp\nfrom a@example.org\ntimeout 5\nqueue off\n' \
		"$LMTP_SOCKET" >"$RC"
	printf 'From: a@example.org\nDate: Mon, 7 Dec 2026 10:00:00 +0000\nSubject: over the socket\nMessage-ID: <s1@example.org>\n\nvia a unix socket\n.\n..\n' >"$BATS_TEST_TMPDIR/m"
	run --separate-stderr "$OUTBOX" -C "$RC" -i bob@example.org <"$BATS_TEST_TMPDIR/m"
	assert_success
	f=$(box bob)
	[[ -n $f ]]
	# Byte for byte, once Dovecot's own header lines are taken off.
	sed '/^Return-Path:/d; /^Delivered-To:/d; /^Received:/,/^[^ \t]/{/^Received:/d; /^[ \t]/d}' "$f" >"$BATS_TEST_TMPDIR/got"
	cmp "$BATS_TEST_TMPDIR/m" "$BATS_TEST_TMPDIR/got"
	[[ -z $(box carol) ]]
}

@test "--socket with --protocol=lmtp and no host or config: msmtp's command-line style" {
	run --separate-stderr "$OUTBOX" -C /dev/null --socket="$LMTP_SOCKET" --protocol=lmtp \
		--from=a@example.org bob@example.org < <(printf 'Subject: cmdline socket\n\nhello\n')
	assert_success
	f=$(box bob)
	[[ -n $f ]]
	grep -q '^Subject: cmdline socket$' "$f"
}

@test "socket: -v shows the LMTP dialogue over the socket, in plaintext by default" {
	printf 'account default\nsocket %s\nprotocol lmtp\nfrom a@example.org\n' "$LMTP_SOCKET" >"$RC"
	run "$OUTBOX" -C "$RC" -P
	assert_success
	assert_output --regexp 'socket +=.*run/lmtp'
	assert_output --regexp 'tls += off +\(default\)'
	run "$OUTBOX" -C "$RC" -S
	assert_success
	assert_line "LMTP server at socket $LMTP_SOCKET:"
	assert_line 'TLS: not used'
	run --separate-stderr "$OUTBOX" -C "$RC" -v bob@example.org < <(printf 'Subject: v\n\nx\n')
	assert_success
	assert_regex "$stderr" '--> LHLO '
	assert_regex "$stderr" '<-- 250 2\.0\.0 <bob@example\.org> .*Saved'
}

@test "socket: a socket that is not there is a temporary failure (exit 75), named in the error" {
	printf 'account default\nsocket %s\nprotocol lmtp\nfrom a@example.org\nqueue off\n' \
		"$BATS_TEST_TMPDIR/no-such-socket" >"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 75
	assert_regex "$stderr" "cannot connect to socket $BATS_TEST_TMPDIR/no-such-socket: No such file or directory"
	[[ -z $(box bob) ]]
}

@test "socket: with the queue on, a missing socket keeps the message for later" {
	printf 'account default\nsocket %s\nprotocol lmtp\nfrom a@example.org\n' \
		"$BATS_TEST_TMPDIR/later-socket" >"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: later\n\nx\n')
	assert_success
	assert_regex "$stderr" 'queued as'
	# The socket appears: the queue run delivers.
	ln -s "$LMTP_SOCKET" "$BATS_TEST_TMPDIR/later-socket"
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_success
	f=$(box bob)
	[[ -n $f ]]
	grep -q '^Subject: later$' "$f"
}

@test "socket: a path longer than a Unix socket address takes is a config error" {
	long=$BATS_TEST_TMPDIR/$(printf 'x%.0s' {1..120})
	printf 'account default\nsocket %s\nprotocol lmtp\nfrom a@example.org\nqueue off\n' "$long" >"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 78
	assert_regex "$stderr" 'the path is longer than 107 bytes'
}
