#!/usr/bin/env bats
# Desktop notices: when a session bus is reachable, a notification daemon
# hears that a message was queued, delayed or given up, with its Subject
# and a recipient, and nothing more of the message.  The daemon is ours
# (tests/lib/notifyd.py) on the keyring's private D-Bus session.

load 'lib/testbed'
bats_require_minimum_version 1.5.0

setup_file() {
	mta_setup_file
	keyring_setup_file
}

teardown_file() {
	keyring_teardown_file
	mta_teardown_file
}

setup() {
	RC=$BATS_TEST_TMPDIR/rc
	QDIR=$XDG_STATE_HOME/outbox/queue
	NLOG=$BATS_TEST_TMPDIR/notices
	: >"$NLOG"
	maildir_clear bob
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'From: bob@example.org\nSubject: quarterly =?utf-8?q?report?=\nMessage-ID: <d1@example.org>\n\nsecret body text\n' >"$MSG"
	coproc NOTIFYD { exec /usr/bin/python3 "$TESTBED_LIB/notifyd.py" "$NLOG"; }
	read -r -t 10 ready <&"${NOTIFYD[0]}"
	[[ $ready == ready ]]
}

teardown() {
	[[ -n ${NOTIFYD_PID:-} ]] && kill "$NOTIFYD_PID" 2>/dev/null
	wait 2>/dev/null
	return 0
}

@test "queued: the desktop hears of it, with the Subject and not the body" {
	outbox_config "$RC" "port 9" "from bob@example.org"
	run "$OUTBOX" -C "$RC" never@example.org <"$MSG"
	assert_success
	run cat "$NLOG"
	assert_line --index 0 --partial '"app": "outbox"'
	assert_line --index 0 --partial '"summary": "Mail to never@example.org queued"'
	assert_line --index 0 --partial '"body": "Subject: quarterly =?utf-8?q?report?=\nIt will be sent when the server takes it; nothing to do."'
	refute_output --partial 'secret body'
}

@test "given up: the desktop hears of it; delayed: once" {
	outbox_config "$RC" "port 9" "from bob@example.org"
	OUTBOX_NOW=1800000000 "$OUTBOX" -C "$RC" never@example.org <"$MSG" 2>/dev/null
	outbox_config "$RC" "from bob@example.org"
	OUTBOX_NOW=1800000010 run "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69
	run tail -n 1 "$NLOG"
	assert_output --partial '"summary": "Mail to never@example.org not delivered"'
	assert_output --partial 'the bounce says why'
	# A message that waits past queue_warn: one "delayed" notice.
	: >"$NLOG"
	outbox_config "$RC" "from bob@example.org" "queue_warn 1h"
	OUTBOX_NOW=1800000000 "$OUTBOX" -C "$RC" later@example.org <"$MSG" 2>/dev/null
	OUTBOX_NOW=1800003700 "$OUTBOX" -C "$RC" -q 2>/dev/null || true
	OUTBOX_NOW=1800007300 "$OUTBOX" -C "$RC" -q 2>/dev/null || true
	run grep -c 'Mail to later@example.org delayed' "$NLOG"
	assert_output 1
}

@test "desktop_notify off: nothing reaches the desktop" {
	outbox_config "$RC" "port 9" "from bob@example.org" "desktop_notify off"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	sleep 0.2
	assert_equal "$(wc -c <"$NLOG")" 0
}

@test "no session bus: the message is queued all the same, without a word of it" {
	outbox_config "$RC" "port 9" "from bob@example.org"
	env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR=$BATS_TEST_TMPDIR \
		"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	assert_equal "$(ls -d "$QDIR"/*/env | wc -l)" 1
	assert_equal "$(wc -c <"$NLOG")" 0
}
