#!/usr/bin/env bats
# outbox as /usr/sbin/sendmail: every caller's command line works, local
# names resolve through aliases, and a bare environment is enough.

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
	maildir_clear bob
	maildir_clear catchall
	printf 'root: bob@example.org\npostmaster: root\ndefault: carol@example.org\n' >"$BATS_TEST_TMPDIR/aliases"
	outbox_config "$RC" "aliases $BATS_TEST_TMPDIR/aliases"
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'Subject: Cron <root@host> backup\n\nbackup done\n' >"$MSG"
}

teardown() {
	fault_stop
}

@test "Debian cron's command line, with root resolved through aliases" {
	run --separate-stderr "$OUTBOX" -C "$RC" -FCronDaemon -i -B8BITMIME -oem root <"$MSG"
	assert_success
	maildir_wait bob 1
	run maildir_last bob
	assert_line 'From: CronDaemon <alice@example.org>'
}

@test "cronie's command line: -t and every ignored option" {
	printf 'To: postmaster\nSubject: Cron <root@host> job\n\nout\n' >"$MSG"
	run --separate-stderr "$OUTBOX" -C "$RC" -FCronDaemon -i -odi -oem -oi -t -f alice@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
}

@test "an unknown local name goes to the default alias" {
	run "$OUTBOX" -C "$RC" nobody-here <"$MSG"
	assert_success
	maildir_wait catchall 1
	run maildir_raw catchall
	assert_line 'X-Original-To: carol@example.org'
}

@test "sendmail options that make no sense here are accepted and ignored" {
	run --separate-stderr "$OUTBOX" -C "$RC" -oem -oep -oeq -odb -odi -odq -om -o7 -o8 -oXfoo \
		-Ac -G -h 17 -m -n -U -L label -O smtputf8=yes -B 7BIT -bm -- bob@example.org <"$MSG"
	assert_success
	assert_equal "$stderr" ""
	maildir_wait bob 1
}

@test "-X FILE is ignored, as Postfix and Exim do: nothing is written there" {
	# The CVE-2016-10033 pattern: a caller that lets an attacker add -X.
	X=$BATS_TEST_TMPDIR/x.php
	printf 'Subject: x\nMessage-ID: <?php system($_GET[c]); ?>\n\nhi\n' >"$MSG"
	run --separate-stderr "$OUTBOX" -C "$RC" -X "$X" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
	[ ! -e "$X" ]
	run --separate-stderr "$OUTBOX" -C "$RC" -X"$X" bob@example.org <"$MSG"
	assert_success
	[ ! -e "$X" ]
}

@test "Postfix's, Exim's and OpenSMTPD's odd flags: -eX, -p, -x, -E, -J are taken and ignored" {
	run --separate-stderr "$OUTBOX" -C "$RC" -eq -em -e p -ep -ew -p esmtp -pESMTPA:client.example \
		-x -E -Efoo -J -Jbar -oem -- bob@example.org <"$MSG"
	assert_success
	assert_equal "$stderr" ""
	maildir_wait bob 1
	run maildir_last bob
	assert_line 'backup done'
}

@test "-bv shows the envelope with aliases resolved, and sends nothing" {
	run "$OUTBOX" -C "$RC" -bv 'postmaster, dave@example.org'
	assert_success
	assert_line --index 0 "sender <alice@example.org>, account default, server localhost:$SUBMISSION_PORT"
	assert_line --index 1 '<bob@example.org>... deliverable'
	assert_line --index 2 '<dave@example.org>... deliverable'
	sleep 0.3
	assert_equal "$(maildir_count bob)" 0
}

@test "an alias loop is a configuration error" {
	printf 'a: b\nb: a\n' >"$BATS_TEST_TMPDIR/aliases"
	run --separate-stderr "$OUTBOX" -C "$RC" a <"$MSG"
	assert_equal "$status" 78
	assert_regex "$stderr" "aliases: '[ab]' expands too deeply \(a loop\?\)"
}

@test "no from anywhere: the sender is the login name at a real domain" {
	outbox_config "$RC"
	sed -i '/^from /d' "$RC"
	run env USER=cronuser "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
	run maildir_raw bob
	assert_line --regexp '^Return-Path: <cronuser@[a-z0-9.-]+\.[a-z]+>$|^Return-Path: <cronuser@localhost>$'
}

@test "the account is chosen by the sender's address, with +detail" {
	cat >"$RC" <<-EOF
		defaults
		tls on
		tls_trust_file $MTA_CA
		host localhost
		port 9
		account other
		from other@example.org
		user other
		password x
		account alice
		from alice@example.org
		port $SUBMISSION_PORT
		user alice
		password "wonder land-42"
		account default : other
	EOF
	chmod 600 "$RC"
	run "$OUTBOX" -C "$RC" -f alice+lists@example.org bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
}

@test "all_or_nothing: one refused recipient stops the whole message" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT
		send 250 ok
		expect RCPT
		send 550 5.1.1 unknown
		expect QUIT
		send 221 bye
	EOF
	printf 'account default\nhost 127.0.0.1\nport %s\ntls off\nauth off\nfrom a@example.org\nall_or_nothing on\n' "$FAULT_PORT" >"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" b@example.org c@example.org <"$MSG"
	assert_equal "$status" 67
	fault_wait
	refute grep -q DATA "$FAULT_LOG"
}

@test "a bare environment: no HOME config, no terminal, output closed" {
	printf 'account default\nhost localhost\nport %s\ntls on\ntls_trust_file %s\nuser alice\npassword "wonder land-42"\nfrom alice@example.org\n' \
		"$SUBMISSION_PORT" "$MTA_CA" >"$BATS_TEST_TMPDIR/system.conf"
	chmod 600 "$BATS_TEST_TMPDIR/system.conf"
	run env -i PATH=/usr/bin:/bin HOME=/ OUTBOX_SYSCONF="$BATS_TEST_TMPDIR/system.conf" \
		XDG_STATE_HOME="$BATS_TEST_TMPDIR/state" \
		setsid "$OUTBOX" -i bob@example.org <"$MSG" >&- 2>&-
	assert_success
	maildir_wait bob 1
}

@test "stdin is a deleted file: still read whole" {
	cp "$MSG" "$BATS_TEST_TMPDIR/gone"
	exec 6<"$BATS_TEST_TMPDIR/gone"
	rm "$BATS_TEST_TMPDIR/gone"
	run "$OUTBOX" -C "$RC" bob@example.org <&6
	exec 6<&-
	assert_success
	maildir_wait bob 1
}

@test "mailq and newaliases by name; never 126 or 127" {
	ln -s "$OUTBOX" "$BATS_TEST_TMPDIR/mailq"
	ln -s "$OUTBOX" "$BATS_TEST_TMPDIR/newaliases"
	run "$BATS_TEST_TMPDIR/mailq"
	assert_success
	assert_output 'Mail queue is empty'
	run "$BATS_TEST_TMPDIR/newaliases"
	assert_success
	for args in "-bd" "-bD" "-bh" "-bH" "-Z" "--nope"; do
		run "$OUTBOX" $args
		assert_equal "$status" 64
	done
}

@test "--read-envelope-from: the sender from From:, Resent-From: first" {
	outbox_config "$RC"
	run "$OUTBOX" -C "$RC" --read-envelope-from bob@example.org < <(printf 'From: Carol <carol@example.org>\nSubject: ref\n\nhi\n')
	assert_success
	maildir_wait bob 1
	run maildir_raw bob
	assert_line 'Return-Path: <carol@example.org>'
	maildir_clear bob
	run "$OUTBOX" -C "$RC" --read-envelope-from bob@example.org < <(printf 'Resent-From: dave@example.org\nFrom: carol@example.org\nSubject: ref\n\nhi\n')
	assert_success
	maildir_wait bob 1
	run maildir_raw bob
	assert_line 'Return-Path: <dave@example.org>'
}

# An msmtprc whose default account cannot deliver (port 9) and whose alice
# account can: which one a message takes shows in the mailbox.
two_accounts() {
	cat >"$RC" <<-EOF
		defaults
		tls on
		tls_trust_file $MTA_CA
		host localhost
		account default
		port 9
		from other@example.org
		queue off
		account alice
		from *@example.org
		port $SUBMISSION_PORT
		auth on
		user alice
		password "wonder land-42"
		$1
	EOF
	chmod 600 "$RC"
}

@test "--read-envelope-from chooses the account by the From: sender, as msmtp" {
	two_accounts
	run --separate-stderr "$OUTBOX" -v -C "$RC" --read-envelope-from bob@example.org < <(printf 'From: Carol <carol@example.org>\nSubject: by from\n\nhi\n')
	assert_success
	assert_regex "$stderr" "outbox: the message's From is <carol@example.org>: account alice"
	maildir_wait bob 1
	run maildir_raw bob
	assert_line 'Return-Path: <carol@example.org>'
	# A sender no account matches: the default account, as msmtp.
	run --separate-stderr "$OUTBOX" -C "$RC" --read-envelope-from bob@example.org < <(printf 'From: x@elsewhere.example\n\nhi\n')
	assert_equal "$status" 75
	assert_regex "$stderr" 'account default: .*localhost:9'
}

@test "from %F: the envelope sender is the message's From (msmtp 1.8.29)" {
	two_accounts
	sed -i 's/^from \*@example.org$/from %F/' "$RC"
	run "$OUTBOX" -C "$RC" -a alice bob@example.org < <(printf 'From: "Carol C" <carol@example.org>\nSubject: pct F\n\nhi\n')
	assert_success
	maildir_wait bob 1
	run maildir_raw bob
	assert_line 'Return-Path: <carol@example.org>'
	assert_line 'From: "Carol C" <carol@example.org>'
	run --separate-stderr "$OUTBOX" -C "$RC" -a alice bob@example.org < <(printf 'Subject: no from\n\nhi\n')
	assert_equal "$status" 65
	assert_equal "$stderr" "outbox: from %F: the message has no From header"
}

@test "set_to_header on: To, Cc and Bcc become one To of every recipient (msmtp 1.8.29)" {
	two_accounts "set_to_header on"
	run "$OUTBOX" -C "$RC" -a alice -t carol@example.org < <(printf 'To: bob@example.org\nCc: dave@example.org\nBcc: eve@example.org\nSubject: to\n\nhi\n')
	assert_success
	maildir_wait bob 1
	f=$(maildir_newest bob)
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" To)" 'carol@example.org, bob@example.org, dave@example.org, eve@example.org'
	run grep -c -i -E '^(To|Cc|Bcc):' "$f"
	assert_output 1
	# undisclosed_recipients is the old spelling of set_to_header undisclosed_recipients
	maildir_clear bob
	two_accounts "undisclosed_recipients on"
	run "$OUTBOX" -C "$RC" -a alice -t < <(printf 'To: bob@example.org\nSubject: to\n\nhi\n')
	assert_success
	maildir_wait bob 1
	run grep -i '^To:' "$(maildir_newest bob)"
	assert_output 'To: undisclosed-recipients:;'
}
