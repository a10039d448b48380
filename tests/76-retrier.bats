#!/usr/bin/env bats
# The queue looks after itself: a message queued because the server is
# down arrives once the server is back, with no outbox -q, no timer and no
# cron job.  The test bed's Postfix stops and starts during these tests.

load 'lib/testbed'
bats_require_minimum_version 1.5.0

setup_file() {
	mta_setup_file
}

teardown_file() {
	mta_teardown_file
}

setup() {
	unset OUTBOX_NO_RETRIER
	RC=$BATS_TEST_TMPDIR/rc
	QDIR=$XDG_STATE_HOME/outbox/queue
	maildir_clear bob
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'Subject: later\nMessage-ID: <r1@example.org>\n\nhi\n' >"$MSG"
	outbox_config "$RC" "queue_retry 1s" "queue_retry_max 2s"
}

teardown() {
	"$TESTBED_LIB/mta.sh" postfix-start "$MTA_DIR"
	local pid
	pid=$(retrier_pid) && kill "$pid" 2>/dev/null
	return 0
}

entries() {
	ls -d "$QDIR"/*/env 2>/dev/null | wc -l
}

# The live retrier's pid (it holds the lock on QDIR/retrier.pid).
retrier_pid() {
	local pid
	[[ -s $QDIR/retrier.pid ]] || return 1
	pid=$(<"$QDIR/retrier.pid")
	[[ -d /proc/$pid ]] || return 1
	flock -n "$QDIR/retrier.pid" true 2>/dev/null && return 1
	echo "$pid"
}

# Wait up to $1 s for the retrier to be gone.
retrier_gone() {
	local n=$(( $1 * 10 ))
	while retrier_pid >/dev/null && (( n-- > 0 )); do sleep 0.1; done
	! retrier_pid >/dev/null
}

postfix_down() { "$TESTBED_LIB/mta.sh" postfix-stop "$MTA_DIR"; }
postfix_up() { "$TESTBED_LIB/mta.sh" postfix-start "$MTA_DIR"; }

@test "Postfix down, then back: the queued message arrives by itself, once" {
	postfix_down
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" 'queued as '
	assert_equal "$(entries)" 1
	pid=$(retrier_pid)
	# Detached: a session of its own, no terminal, the lowest priority.
	[[ $(ps -o sid= -p "$pid" | tr -d ' ') != $(ps -o sid= -p $$ | tr -d ' ') ]]
	[[ $(ps -o tty= -p "$pid" | tr -d ' ') == "?" ]]
	[[ $(ps -o ni= -p "$pid" | tr -d ' ') == 19 ]]
	# Nothing of the caller's is kept open: only the queue and its lock.
	for fd in /proc/"$pid"/fd/*; do
		t=$(readlink "$fd")
		[[ $t == /dev/null || $t == "$QDIR"* ]] || { echo "fd $fd: $t" >&2; false; }
	done
	[[ $(readlink /proc/"$pid"/fd/0) == /dev/null ]]
	sleep 2
	assert_equal "$(entries)" 1
	postfix_up
	maildir_wait bob 1 15
	assert_equal "$(entries)" 0
	# The queue is empty: the retrier is gone.
	retrier_gone 5
	sleep 1
	assert_equal "$(maildir_count bob)" 1
}

@test "one retrier per user: two queued messages, one process, both arrive once" {
	postfix_down
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	pid=$(retrier_pid)
	printf 'Subject: two\nMessage-ID: <r2@example.org>\n\nhi\n' |
		"$OUTBOX" -C "$RC" bob@example.org 2>/dev/null
	assert_equal "$(retrier_pid)" "$pid"
	assert_equal "$(pgrep -fc -- '-q1s' || true)" 0 || true
	assert_equal "$(entries)" 2
	postfix_up
	maildir_wait bob 2 15
	retrier_gone 5
	sleep 1
	assert_equal "$(maildir_count bob)" 2
}

@test "SIGKILL of the retrier loses nothing: the next message starts another" {
	postfix_down
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	pid=$(retrier_pid)
	kill -KILL "$pid"
	sleep 0.2
	! retrier_pid >/dev/null
	assert_equal "$(entries)" 1
	printf 'Subject: two\nMessage-ID: <r2@example.org>\n\nhi\n' |
		"$OUTBOX" -C "$RC" bob@example.org 2>/dev/null
	pid2=$(retrier_pid)
	[[ $pid2 != "$pid" ]]
	postfix_up
	maildir_wait bob 2 15
	retrier_gone 5
	sleep 1
	assert_equal "$(maildir_count bob)" 2
}

@test "a flush of the retrier killed mid-session: the next one sends the message once" {
	postfix_down
	OUTBOX_TEST_CRASH=sent-body "$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null || true
	postfix_up
	maildir_wait bob 1 15
	retrier_gone 8
	sleep 1
	assert_equal "$(entries)" 0
	# killed before the final dot went out: one copy, never two
	assert_equal "$(maildir_count bob)" 1
}

@test "a server that is back takes what waits: a successful send pulls it forward" {
	outbox_config "$RC" "queue_retry 1h"
	postfix_down
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	postfix_up
	# The retrier would wait an hour; the next send to the same server
	# delivers the waiting entry on its connection.
	printf 'Subject: two\nMessage-ID: <r2@example.org>\n\nhi\n' |
		"$OUTBOX" -C "$RC" bob@example.org
	maildir_wait bob 2 5
	assert_equal "$(entries)" 0
	retrier_gone 5
}

@test "OUTBOX_NO_RETRIER, queue off and --dry-run start nothing" {
	postfix_down
	OUTBOX_NO_RETRIER=1 "$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	assert_equal "$(entries)" 1
	sleep 0.5
	! retrier_pid >/dev/null
	run "$OUTBOX" -C "$RC" --dry-run bob@example.org <"$MSG"
	! retrier_pid >/dev/null
	run "$OUTBOX" -C "$RC" --queue=off bob@example.org <"$MSG"
	assert_equal "$status" 75
	sleep 0.5
	! retrier_pid >/dev/null
	# The entry stays where it is until something flushes it.
	postfix_up
	sleep 3
	assert_equal "$(entries)" 1
	assert_equal "$(maildir_count bob)" 0
}

@test "outbox -q leaves a retrier for what it could not send" {
	postfix_down
	OUTBOX_NO_RETRIER=1 "$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	! retrier_pid >/dev/null
	run "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 75
	retrier_pid
	postfix_up
	maildir_wait bob 1 15
	retrier_gone 5
}
