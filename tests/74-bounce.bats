#!/usr/bin/env bats
# Giving up is never silent: what the queue gives up comes back to the
# sender as a delivery status notification (RFC 3464), and a message that
# waits past queue_warn gets one "still trying" notice.  The notices
# arrive in bob's Maildir through the test bed's Postfix and are read
# with Python's email package.

load 'lib/testbed'
bats_require_minimum_version 1.5.0

setup_file() {
	mta_setup_file
}

teardown_file() {
	mta_teardown_file
}

setup() {
	RC=$BATS_TEST_TMPDIR/rc
	QDIR=$XDG_STATE_HOME/outbox/queue
	maildir_clear bob
	maildir_clear catchall
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'From: Bob <bob@example.org>\nSubject: bounce me\nMessage-ID: <b1@example.org>\n\nline one\nline two\n' >"$MSG"
	DSNCHECK=$BATS_TEST_DIRNAME/lib/dsncheck.py
}

entries() {
	ls -d "$QDIR"/*/env 2>/dev/null | wc -l
}

@test "5xx on a retry: a bounce from <> arrives at the sender, with the reply and the header" {
	outbox_config "$RC" "port 9" "from bob@example.org"
	"$OUTBOX" -C "$RC" never@example.org <"$MSG" 2>/dev/null
	assert_equal "$(entries)" 1
	outbox_config "$RC" "from bob@example.org"
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69
	assert_regex "$stderr" 'RCPT TO:<never@example.org>: 550 5\.7\.1'
	assert_regex "$stderr" 'a bounce is sent to <bob@example.org> \(queued as '
	maildir_wait bob 1
	assert_equal "$(entries)" 0
	f=$(maildir_newest bob)
	grep -q '^Return-Path: <>' "$f"
	run "$DSNCHECK" "$f" rcpt=never@example.org action=failed status=5.7.1 \
		diag='550 5.7.1' human='RCPT TO: 550' original=text/rfc822-headers \
		orig_has='Subject: bounce me' to=bob@example.org subject=Undelivered
	assert_success
	# Only the header: the body stays with the sender.
	run grep -c 'line two' "$f"
	assert_output 0
	[[ -e $(ls -d "$QDIR"/failed/*/env) ]]
}

@test "dsn_return full: the bounce holds the whole message" {
	outbox_config "$RC" "port 9" "from bob@example.org" "dsn_return full"
	"$OUTBOX" -C "$RC" never@example.org <"$MSG" 2>/dev/null
	outbox_config "$RC" "from bob@example.org" "dsn_return full"
	run "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69
	maildir_wait bob 1
	run "$DSNCHECK" "$(maildir_newest bob)" rcpt=never@example.org \
		action=failed original=message/rfc822 orig_has='line two'
	assert_success
}

@test "expiry: the bounce says how long it waited and the last error" {
	outbox_config "$RC" "port 9" "from bob@example.org" "queue_lifetime 60s"
	export OUTBOX_NOW=1800000000
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	outbox_config "$RC" "from bob@example.org" "queue_lifetime 60s"
	OUTBOX_NOW=1800000100 run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69
	maildir_wait bob 1
	run "$DSNCHECK" "$(maildir_newest bob)" rcpt=bob@example.org \
		action=failed status=4.4.7 human='expired after 1 minutes in the queue; last error: cannot connect to localhost:9'
	assert_success
}

@test "a message from the null sender gets no bounce" {
	outbox_config "$RC" "port 9" "from bob@example.org"
	"$OUTBOX" -C "$RC" -f '<>' never@example.org <"$MSG" 2>/dev/null
	assert_equal "$(entries)" 1
	grep -qx 'sender: ' "$QDIR"/*/env
	outbox_config "$RC" "from bob@example.org"
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69
	refute_regex "$stderr" 'bounce'
	assert_equal "$(entries)" 0
	mta_log_mark
	sleep 0.5
	assert_equal "$(maildir_count bob)" 0
}

@test "the first attempt's refusal is told to the caller, not bounced" {
	outbox_config "$RC" "from bob@example.org"
	run --separate-stderr "$OUTBOX" -C "$RC" never@example.org <"$MSG"
	assert_equal "$status" 69
	refute_regex "$stderr" 'bounce'
	assert_equal "$(entries)" 0
	assert_equal "$(maildir_count bob)" 0
}

@test "queue always: a refusal after the caller was told 0 is bounced" {
	outbox_config "$RC" "from bob@example.org" "queue always"
	run "$OUTBOX" -C "$RC" never@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
	run "$DSNCHECK" "$(maildir_newest bob)" rcpt=never@example.org action=failed status=5.7.1
	assert_success
}

@test "one bounce for the recipients given up; the one refused for now waits" {
	outbox_config "$RC" "port 9" "from bob@example.org"
	"$OUTBOX" -C "$RC" never@example.org later@example.org <"$MSG" 2>/dev/null
	outbox_config "$RC" "from bob@example.org"
	run "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69
	maildir_wait bob 1
	run "$DSNCHECK" "$(maildir_newest bob)" rcpt=never@example.org action=failed
	assert_success
	refute grep -q 'later@example.org' "$(maildir_newest bob)"
	assert_equal "$(entries)" 1
	# The next refusal of the other recipient for now bounces nothing more.
	run "$OUTBOX" -C "$RC" -q
	sleep 0.5
	assert_equal "$(maildir_count bob)" 1
}

@test "queue_warn: one delay warning, and mailq marks the entry delayed" {
	outbox_config "$RC" "from bob@example.org" "queue_warn 1h"
	export OUTBOX_NOW=1800000000
	run "$OUTBOX" -C "$RC" later@example.org <"$MSG"
	assert_success
	assert_equal "$(entries)" 1
	run "$OUTBOX" -C "$RC" -bp
	refute_output --partial '(delayed)'
	OUTBOX_NOW=$((1800000000 + 3601)) run --separate-stderr "$OUTBOX" -v -C "$RC" -q
	assert_equal "$status" 75
	assert_regex "$stderr" 'a delay warning is sent to <bob@example.org>'
	maildir_wait bob 1
	run "$DSNCHECK" "$(maildir_newest bob)" rcpt=later@example.org action=delayed \
		status=4.7.1 human='you do not need to do anything' subject=Delayed
	assert_success
	OUTBOX_NOW=$((1800000000 + 3601)) run "$OUTBOX" -C "$RC" -bp
	assert_output --partial '(delayed)'
	OUTBOX_NOW=$((1800000000 + 7200)) run "$OUTBOX" -C "$RC" -q
	sleep 0.5
	assert_equal "$(maildir_count bob)" 1
}

@test "queue_warn off: no warning" {
	outbox_config "$RC" "from bob@example.org" "queue_warn off"
	export OUTBOX_NOW=1800000000
	"$OUTBOX" -C "$RC" later@example.org <"$MSG" 2>/dev/null
	OUTBOX_NOW=$((1800000000 + 86400)) run --separate-stderr "$OUTBOX" -v -C "$RC" -q
	assert_equal "$status" 75
	refute_regex "$stderr" 'warning'
	assert_equal "$(entries)" 1
	run "$OUTBOX" -C "$RC" -bp
	refute_output --partial '(delayed)'
}
