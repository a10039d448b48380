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
