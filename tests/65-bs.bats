#!/usr/bin/env bats
# sendmail -bs: the caller speaks SMTP on stdin/stdout (Alpine, Symfony),
# and each message is relayed through the account.

load 'lib/testbed'
load 'lib/faultsmtp'
bats_require_minimum_version 1.5.0

setup_file() {
	mta_setup_file
}

teardown_file() {
	mta_teardown_file
}

setup() {
	RC=$BATS_TEST_TMPDIR/rc
	outbox_config "$RC"
	maildir_clear bob
	maildir_clear catchall
}

teardown() {
	fault_stop
}

# The dialogue Alpine's c-client speaks to "sendmail -bs -odb -oem".
alpine_dialogue() {
	printf 'EHLO localhost\r\n'
	printf 'MAIL FROM:<alice@example.org> BODY=8BITMIME\r\n'
	printf 'RCPT TO:<bob@example.org>\r\n'
	printf 'DATA\r\n'
	printf 'Date: Sat, 28 Nov 2026 10:00:00 +0000 (UTC)\r\nFrom: Alice <alice@example.org>\r\n'
	printf 'To: bob@example.org\r\nSubject: from alpine\r\nMessage-ID: <alpine.1@example.org>\r\n'
	printf 'MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; charset=US-ASCII\r\n\r\n'
	printf 'Hello from Alpine.\r\n..a line that began with a dot\r\n.\r\n'
	printf 'QUIT\r\n'
}

@test "Alpine's dialogue: every reply right, the message arrives unstuffed" {
	run --separate-stderr "$OUTBOX" -bs -odb -oem -C "$RC" < <(alpine_dialogue)
	assert_success
	assert_line --index 0 $'220 localhost ESMTP outbox\r'
	assert_line $'250-PIPELINING\r'
	assert_line --index 5 $'250 2.1.0 Ok\r'
	assert_line --index 6 $'250 2.1.5 Ok\r'
	assert_line --index 7 --regexp '^354 '
	assert_line --index 8 $'250 2.0.0 Ok: sent\r'
	assert_line --index 9 $'221 2.0.0 Bye\r'
	maildir_wait bob 1
	run maildir_last bob
	assert_line 'Subject: from alpine'
	assert_line '.a line that began with a dot'
}

@test "two messages in one session, commands pipelined in one write" {
	{
		printf 'EHLO x\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: one\r\n\r\n1\r\n.\r\n'
		printf 'MAIL FROM:<alice@example.org>\r\nRCPT TO:<carol@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: two\r\n\r\n2\r\n.\r\nQUIT\r\n'
	} >"$BATS_TEST_TMPDIR/in"
	run "$OUTBOX" -bs -C "$RC" <"$BATS_TEST_TMPDIR/in"
	assert_success
	run grep -c $'^250 2.0.0 Ok: sent\r$' <<<"$output"
	maildir_wait bob 2
	maildir_wait catchall 1
}

@test "commands out of order and unknown ones get the right codes" {
	run "$OUTBOX" -bs -C "$RC" < <(printf 'HELO x\r\nDATA\r\nRCPT TO:<b@example.org>\r\nMAIL FROM:bad\r\nMAIL FROM:<a@example.org>\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<>\r\nETRN x\r\nRSET\r\nNOOP\r\nQUIT\r\n')
	assert_success
	assert_line --index 1 $'250 localhost\r'
	assert_line --index 2 $'503 5.5.1 need MAIL and RCPT first\r'
	assert_line --index 3 $'503 5.5.1 need MAIL first\r'
	assert_line --index 4 $'501 5.5.4 syntax: MAIL FROM:<address>\r'
	assert_line --index 5 $'250 2.1.0 Ok\r'
	assert_line --index 6 $'503 5.5.1 MAIL already given\r'
	assert_line --index 7 $'501 5.5.4 syntax: RCPT TO:<address>\r'
	assert_line --index 8 $'502 5.5.2 command not implemented\r'
	assert_line --index 9 $'250 2.0.0 Ok\r'
	assert_line --index 10 $'250 2.0.0 Ok\r'
	assert_line --index 11 $'221 2.0.0 Bye\r'
}

@test "a caller that goes away inside the data: nothing is sent" {
	run "$OUTBOX" -bs -C "$RC" < <(printf 'EHLO x\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a mess')
	assert_success
	sleep 0.5
	assert_equal "$(maildir_count bob)" 0
	assert_equal "$(find "$XDG_STATE_HOME" -path '*/queue/*' -name env 2>/dev/null | wc -l)" 0
}

@test "a line over 998 bytes in the data is sent, quoted-printable, not refused" {
	long=.$(head -c 5000 /dev/zero | tr '\0' 'x')
	run "$OUTBOX" -bs -C "$RC" < <(printf 'EHLO x\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: long\r\n\r\n.%s\r\n..\r\nend\r\n.\r\nQUIT\r\n' "$long")
	assert_line --regexp $'^250 2\\.0\\.0 '
	maildir_wait bob 1
	# Dot-stuffing undone, on the long line too: the body as the caller meant it.
	cmp <("$TESTBED_LIB/decode.py" "$(maildir_newest bob)") <(printf '%s\n.\nend\n' "$long")
}

@test "a temporary failure: 250 queued with the queue on, 451 with it off" {
	outbox_config "$RC" "port 9"
	dialogue=$'EHLO x\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: t\r\n\r\nx\r\n.\r\nQUIT\r\n'
	run --separate-stderr "$OUTBOX" -bs -C "$RC" <<<"$dialogue"
	assert_line --regexp $'^250 2\\.0\\.0 Ok: queued as [^ ]+\r$'
	outbox_config "$RC" "port 9" "queue off"
	run --separate-stderr "$OUTBOX" -bs -C "$RC" <<<"$dialogue"
	assert_line --regexp $'^451 4\\.3\\.0 .*cannot connect to localhost:9'
}

@test "a permanent refusal upstream is a 5xx to the caller" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT
		send 550 5.1.1 no such user
		expect QUIT
		send 221 bye
	EOF
	printf 'account default\nhost 127.0.0.1\nport %s\ntls off\nauth off\nfrom a@example.org\n' "$FAULT_PORT" >"$RC"
	run --separate-stderr "$OUTBOX" -bs -C "$RC" < <(printf 'EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\nSubject: t\r\n\r\nx\r\n.\r\nQUIT\r\n')
	assert_line --regexp $'^550 5\\.1\\.1 RCPT TO:<nobody@example.org>: 550 5\\.1\\.1 no such user\r$'
}

@test "paths that could smuggle parameters or commands are refused" {
	run "$OUTBOX" -bs -C "$RC" < <(printf 'EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<"x> NOTIFY=NEVER"@example.org>\r\nRCPT TO:<a b@example.org>\r\nRCPT TO:<@route:bob@example.org>\r\nQUIT\r\n')
	assert_success
	assert_line --index 6 $'501 5.5.4 syntax: RCPT TO:<address>\r'
	assert_line --index 7 $'501 5.5.4 syntax: RCPT TO:<address>\r'
	assert_line --index 8 $'250 2.1.5 Ok\r'
}

# SMTP smuggling through -bs: a web form's text piped into "sendmail -bs".
# Only CR LF . CR LF ends the data; what follows a bare-LF dot is content.
smuggle_dialogue() {
	printf 'EHLO x\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n'
	printf 'From: alice@example.org\r\nDate: Mon, 7 Dec 2026 15:00:00 +0000\r\nMessage-ID: <form.1@example.org>\r\nSubject: form\r\n\r\nbefore\n.\nMAIL FROM:<alice@example.org>\nRCPT TO:<carol@example.org>\nDATA\nSubject: smuggled\n\nevil\n.\n'
	printf 'mid\r\n.\nRCPT TO:<carol@example.org>\r\nx\r.\rDATA\r\n'
	printf 'after\r\n.\r\nQUIT\r\n'
}

@test "-bs data: a bare LF or CR dot never ends the data, no second transaction" {
	mta_log_mark
	run --separate-stderr "$OUTBOX" -bs -C "$RC" < <(smuggle_dialogue)
	assert_success
	run grep -c '^354 ' <<<"$output"
	assert_output 1
	maildir_wait bob 1
	mta_log_wait 'disconnect from'
	sleep 0.3
	assert_equal "$(maildir_count catchall)" 0
	assert_equal "$(maildir_count bob)" 1
	run mta_log_since_mark
	refute_output --partial 'carol@example.org'
	printf 'From: alice@example.org\nDate: Mon, 7 Dec 2026 15:00:00 +0000\nMessage-ID: <form.1@example.org>\nSubject: form\n\nbefore\n.\nMAIL FROM:<alice@example.org>\nRCPT TO:<carol@example.org>\nDATA\nSubject: smuggled\n\nevil\n.\nmid\n.\nRCPT TO:<carol@example.org>\nx\n.\nDATA\nafter\n' >"$BATS_TEST_TMPDIR/want"
	maildir_last bob >"$BATS_TEST_TMPDIR/got"
	cmp "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
}
