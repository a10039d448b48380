#!/usr/bin/env bats
# One delivery path: a first attempt and outbox -q decide the same way,
# a flush never works from a stale envelope, and a kill at any step of a
# send or a flush loses nothing and sends nothing twice outside the window
# between the final dot and its reply being recorded.

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
	QDIR=$XDG_STATE_HOME/outbox/queue
	maildir_clear bob
	maildir_clear catchall
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'Subject: one path\nMessage-ID: <p1@example.org>\n\nhi\n' >"$MSG"
}

teardown() {
	fault_stop
}

entries() {	# the number of entries in the queue
	ls -d "$QDIR"/*/env 2>/dev/null | wc -l
}

copies() {	# copies MSGID BOX: how many copies arrived (not bounces)
	grep -L '^Return-Path: <>' "$MTA_MAILDIR/$2"/new/* 2>/dev/null |
		xargs -r grep -l "^Message-ID: <$1>" | wc -l
}

# Queue one message for b@ and c@ on an account whose server is down.
queue_down() {
	printf 'account default\nhost 127.0.0.1\nport 9\ntls off\nauth off\nfrom a@example.org\ntimeout 5\n' >"$RC"
	"$OUTBOX" -C "$RC" "$@" <"$MSG" 2>/dev/null
	assert_equal "$(entries)" 1
}

# The same account, now on the fault server (plaintext, no AUTH).
fault_config() {
	printf 'account default\nhost 127.0.0.1\nport %s\ntls off\nauth off\nfrom a@example.org\ntimeout 5\n' \
		"$FAULT_PORT" >"$RC"
	printf '%s\n' "$@" >>"$RC"
}

@test "-q: a recipient refused for good is not tried again when the data is refused for now" {
	# From the null sender: no bounce for c@ to take a connection here.
	queue_down -f '<>' b@example.org c@example.org
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT TO:<b@example.org>
		send 250 ok
		expect RCPT TO:<c@example.org>
		send 550 5.1.1 no such user
		data_ok
		data
		send 451 4.3.0 try the data later
		expect QUIT
		send 221 bye
	EOF
	fault_config
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69	# c@ given up, as a first attempt would say
	assert_regex "$stderr" 'RCPT TO:<c@example.org>: 550 5.1.1 no such user'
	fault_wait
	run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp '-> <b@example.org>  attempts=2'
	refute_output --partial 'c@example.org'
	# The next attempt sends to b alone.
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT TO:<b@example.org>
		send 250 ok
		data_ok
		data
		send 250 ok
		expect QUIT
		send 221 bye
	EOF
	fault_config
	run "$OUTBOX" -C "$RC" -q
	assert_success
	fault_wait
	assert_equal "$(entries)" 0
}

@test "the first attempt decides the same: 550 given up, 250 kept for the 451 data" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT TO:<b@example.org>
		send 250 ok
		expect RCPT TO:<c@example.org>
		send 550 5.1.1 no such user
		data_ok
		data
		send 451 4.3.0 try the data later
		expect QUIT
		send 221 bye
	EOF
	fault_config
	run --separate-stderr "$OUTBOX" -C "$RC" b@example.org c@example.org <"$MSG"
	assert_equal "$status" 67
	assert_regex "$stderr" 'RCPT TO:<c@example.org>: 550 5.1.1 no such user'
	assert_regex "$stderr" 'queued as'
	fault_wait
	run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp '-> <b@example.org>  attempts=1'
	refute_output --partial 'c@example.org'
}

# AUTH PLAIN refused with 535 during a flush, on a server with or without
# PIPELINING (with it, the refusal is read together with the envelope).
auth_refused_flush() {
	queue_down b@example.org
	fault_make_cert
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" <<-EOF
		send 220 hi
		ehlo STARTTLS
		expect STARTTLS
		send 220 go
		starttls
		ehlo AUTH=PLAIN $1
		expect AUTH PLAIN .*
		send 535 5.7.8 bad credentials
		$2
		expect QUIT
		send 221 bye
	EOF
	printf 'account default\nhost 127.0.0.1\nport %s\ntls on\ntls_certcheck off\nuser alice\npassword wrong\nauth plain\nfrom a@example.org\ntimeout 5\n' \
		"$FAULT_PORT" >"$RC"
	chmod 600 "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	fault_wait
	assert_equal "$status" 75
	assert_regex "$stderr" 'deferred: .*authentication with PLAIN failed: 535 5.7.8 bad credentials'
	assert_equal "$(entries)" 1
	assert_equal "$(ls -d "$QDIR"/failed/*/env 2>/dev/null | wc -l)" 0
}

@test "-q: AUTH refused (535) without PIPELINING: the entry waits for a fixed password" {
	auth_refused_flush "" ""
}

@test "-q: AUTH refused (535) with PIPELINING: the same, not failed/" {
	auth_refused_flush PIPELINING $'expect MAIL\nexpect RCPT\nexpect DATA'
}

@test "a flush works from the envelope as it is when it takes the lock" {
	outbox_config "$RC" "" "account slow" "host 127.0.0.1" "port 9" "tls off" \
		"auth off" "from a@example.org" "timeout 10"
	printf 'Subject: slow\nMessage-ID: <slow@example.org>\n\nx\n' |
		"$OUTBOX" -C "$RC" -a slow x@example.org 2>/dev/null
	sleep 1.1	# queued a second later: the flush takes it second
	"$OUTBOX" -C "$RC" --port=9 bob@example.org later@example.org <"$MSG" 2>/dev/null
	id=$(basename "$(dirname "$(grep -l '^msgid: <p1@example.org>' "$QDIR"/*/env)")")
	# A flush of everything starts with the slow account, whose server
	# holds it for 3 s ...
	fault_start $'sleep 3\nclose'
	sed -i "s/^port 9$/port $FAULT_PORT/" "$RC"
	"$OUTBOX" -C "$RC" -q 2>/dev/null &
	flush=$!
	sleep 1
	# ... meanwhile another one delivers to bob (later@ is refused for now).
	run "$OUTBOX" -C "$RC" -qI "$id"
	assert_equal "$status" 75
	wait "$flush" || true
	fault_wait || true
	assert_equal "$(copies p1@example.org bob)" 1
	run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp "$id .*-> <later@example.org>  attempts=3"
}

# A send killed at a named step (OUTBOX_TEST_CRASH), then a flush: the
# message arrives once, or at most twice when the kill came between the
# final dot and the entry's removal.
crash_send() {	# crash_send POINT WINDOW(0|1)
	local point=$1 window=$2 id=crash-${1//[^a-zA-Z0-9]/_}
	printf 'Subject: %s\nMessage-ID: <%s@example.org>\n\nbody\n' "$point" "$id" >"$BATS_TEST_TMPDIR/$id"
	OUTBOX_TEST_CRASH=$point run "$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/$id"
	assert_equal "$status" 137	# killed: the caller knows it was not sent
	local q n
	q=$(grep -l "^msgid: <$id@example.org>" "$QDIR"/*/env 2>/dev/null | wc -l)
	n=$(copies "$id@example.org" bob)
	run "$OUTBOX" -C "$RC" -q
	assert_success
	sleep 0.5
	n=$(copies "$id@example.org" bob)
	if [[ $point == spooled || $point == env-written || $point == env-renamed ]]; then
		# Killed before its envelope was in place: never committed, so
		# the caller saw the kill and outbox sends nothing.
		(( n == 0 )) || { echo "$point: $n copies of a message never committed" >&2; false; }
	elif (( window )); then
		(( n == 1 || n == 2 )) || { echo "$point: $n copies" >&2; false; }
	else
		(( n == 1 )) || { echo "$point: $n copies (queued: $q)" >&2; false; }
	fi
	assert_equal "$(entries)" 0
}

@test "SIGKILL after each file operation and protocol step of a send: never lost, never twice" {
	outbox_config "$RC" "auth plain"
	for point in spooled env-written env-renamed committed sent-EHLO sent-STARTTLS \
		sent-EHLO:2 sent-AUTH sent-MAIL sent-RCPT sent-BDAT; do
		crash_send "$point" 0
	done
	for point in sent-body accepted settle; do
		crash_send "$point" 1
	done
	crash_send env-removed 0
}

@test "SIGKILL after each step of a flush: never lost, never twice" {
	# later@ stays deferred, so the entry is updated (env-*), never removed.
	for point in sent-EHLO:2 sent-MAIL sent-RCPT sent-BDAT sent-body accepted settle \
		env-written env-renamed; do
		id=flush-${point//[^a-zA-Z0-9]/_}
		printf 'Subject: %s\nMessage-ID: <%s@example.org>\n\nbody\n' "$point" "$id" >"$BATS_TEST_TMPDIR/$id"
		outbox_config "$RC" "auth plain" "port 9"
		"$OUTBOX" -C "$RC" bob@example.org later@example.org <"$BATS_TEST_TMPDIR/$id" 2>/dev/null
		outbox_config "$RC" "auth plain"
		OUTBOX_TEST_CRASH=$point run "$OUTBOX" -C "$RC" -q
		assert_equal "$point $status" "$point 137"
		run "$OUTBOX" -C "$RC" -q
		assert_equal "$status" 75	# later@ is still refused for now
		sleep 0.5
		n=$(copies "$id@example.org" bob)
		case $point in
		sent-body | accepted | settle | env-written) (( n == 1 || n == 2 )) ;;
		*) (( n == 1 )) ;;
		esac || { echo "$point: $n copies" >&2; false; }
		# Never lost: later@ is still queued, alone.
		env=$(grep -l "^msgid: <$id@example.org>" "$QDIR"/*/env)
		[[ -s ${env%/env}/msg ]]
		run "$OUTBOX" -C "$RC" -bp
		assert_output --regexp "-> <later@example.org>  attempts="
		"$OUTBOX" -C "$RC" --drop "$(basename "$(dirname "$env")")"
	done
}

# The test bed's rcpt_access: later@ refused for now, never@ for good.
rcpt_access() {	# rcpt_access with-later(0|1)
	{
		(( $1 )) && echo 'later@example.org 451 4.7.1 later@example.org: try again later'
		echo 'never@example.org 550 5.7.1 never@example.org: refused for good'
	} >"$MTA_DIR/postfix/rcpt_access"
	PATH=$PATH:/usr/sbin postfix -c "$MTA_DIR/postfix" reload >/dev/null 2>&1
	sleep 1
}

@test "three flushes and 20 sends at once, 250, 451 and 550 in each: every recipient once" {
	outbox_config "$RC" "auth plain" "port 9"
	for i in $(seq 10); do
		printf 'Subject: old %s\nMessage-ID: <old-%s@example.org>\n\nx\n' "$i" "$i" |
			"$OUTBOX" -C "$RC" bob@example.org later@example.org never@example.org 2>/dev/null
	done
	assert_equal "$(entries)" 10
	outbox_config "$RC" "auth plain"
	pids=()
	for i in $(seq 20); do
		printf 'Subject: new %s\nMessage-ID: <new-%s@example.org>\n\nx\n' "$i" "$i" |
			"$OUTBOX" -C "$RC" bob@example.org later@example.org never@example.org 2>/dev/null &
		pids+=($!)
		if (( i % 7 == 0 )); then "$OUTBOX" -C "$RC" -q 2>/dev/null & pids+=($!); fi
	done
	(( ${#pids[@]} == 22 ))
	"$OUTBOX" -C "$RC" -q 2>/dev/null & pids+=($!)
	for p in "${pids[@]}"; do wait "$p" || true; done
	"$OUTBOX" -C "$RC" -q 2>/dev/null || true
	ids=($(seq 10 | sed 's/^/old-/') $(seq 20 | sed 's/^/new-/'))
	maildir_wait bob 30 30
	sleep 1
	for id in "${ids[@]}"; do
		n=$(copies "$id@example.org" bob)
		(( n == 1 )) || { echo "$id arrived $n times for bob" >&2; false; }
	done
	# Each entry waits for later@ alone: never@ was given up, bob sent.
	assert_equal "$(entries)" 30
	run "$OUTBOX" -C "$RC" -bp
	refute_output --partial 'never@example.org'
	refute_output --partial 'bob@example.org'
	assert_equal "$(grep -c -- '-> <later@example.org>  attempts=' <<<"$output")" 30
	# later@ is accepted now: three flushes at once send it once each.
	rcpt_access 0
	pids=()
	for i in 1 2 3; do "$OUTBOX" -C "$RC" -q 2>/dev/null & pids+=($!); done
	for p in "${pids[@]}"; do wait "$p" || true; done
	rcpt_access 1
	maildir_wait catchall 30 30
	sleep 1
	for id in "${ids[@]}"; do
		n=$(copies "$id@example.org" catchall)
		(( n == 1 )) || { echo "$id arrived $n times for later@" >&2; false; }
	done
	assert_equal "$(entries)" 0
}

@test "the reply to the data is awaited past session_timeout" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		sleep 3
		send 250 2.0.0 ok: queued as SLOW1
		expect QUIT
		send 221 bye
	EOF
	fault_config "session_timeout 2" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" b@example.org <"$MSG"
	assert_success
	fault_wait
}

@test "a reply nobody asked for after a pipelined BDAT: its answer is unknown, and the next message is not sent on that session" {
	fault_start - --connections 2 <<-'EOF'
		send 220 hi
		ehlo PIPELINING CHUNKING
		expect MAIL
		expect RCPT
		bdat
		send 250 ok
		send 250 ok
		send 250 2.0.0 ok queued
		send 250 an extra reply
		loop_until_quit
	EOF
	# Two messages wait; the flush sends both.
	fault_config
	sed -i "s/^port .*/port 9/" "$RC"
	"$OUTBOX" -C "$RC" b@example.org <"$MSG" 2>/dev/null
	printf 'Subject: second\nMessage-ID: <p2@example.org>\n\nx\n' | "$OUTBOX" -C "$RC" b@example.org 2>/dev/null
	fault_config
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	fault_wait
	# Which 250 answered BDAT cannot be told (one of the four is extra):
	# the first stays queued, as when the reply is lost.
	assert_equal "$status" 75
	assert_regex "$stderr" 'more replies than outbox sent commands, so its answer to the message is unknown'
	# The second message went on a new connection, not after the extra reply
	# (where the same script makes it unknown too).
	assert_equal "$(grep -c '^EHLO' "$FAULT_LOG")" 2
	assert_equal "$(grep -c '^MAIL FROM' "$FAULT_LOG")" 2
	assert_equal "$(entries)" 2
}

@test "-q logs each delivery and each give-up with the same line as a first attempt" {
	LOG=$BATS_TEST_TMPDIR/log
	outbox_config "$RC" "auth plain" "port 9" "logfile $LOG"
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	run cat "$LOG"
	assert_line --regexp "account=default host=localhost port=9 tls=off .*result=queued exitcode=0 queueid="
	outbox_config "$RC" "auth plain" "logfile $LOG"
	run "$OUTBOX" -C "$RC" -q
	assert_success
	run tail -n 1 "$LOG"
	assert_output --regexp "account=default host=localhost port=$SUBMISSION_PORT tls=TLS1\.3 .*auth=PLAIN from=<alice@example\.org> rcpts=\"<bob@example\.org>=250\" .*msgid=<p1@example\.org> reply=\"250 .*result=sent exitcode=0$"
	# An entry given up (expired) is logged too.
	outbox_config "$RC" "auth plain" "port 9" "logfile $LOG" "queue_lifetime 1"
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	OUTBOX_NOW=$(( $(date +%s) + 2 * 86400 )) run "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69
	run tail -n 2 "$LOG"
	assert_line --index 0 --regexp 'from=<alice@example.org> .*result=failed exitcode=69 error="expired after 1 days in the queue'
	# So is the bounce it gave rise to, waiting for the server too.
	assert_line --index 1 --regexp 'from=<> .*result=queued exitcode=0'
}

@test "a crash while an entry moves to failed/ leaves it whole, and none stuck" {
	outbox_config "$RC" "port 9" "queue_lifetime 1"
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	export OUTBOX_NOW=$(( $(date +%s) + 2 * 86400 ))
	OUTBOX_TEST_CRASH=msg-failed run "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 137
	# One rename moved it: in failed/, whole, before its envelope said why.
	run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp '\(failed\) .*-> <bob@example.org>'
	# What is left in the queue is the bounce, queued before the move.
	assert_equal "$(entries)" 1
	refute grep -q '^rcpt: bob@example.org' "$QDIR"/*/env
	assert_equal "$(ls -d "$QDIR"/failed/*/env 2>/dev/null | wc -l)" 1
}

@test "a queue folder others can read is refused at every open, not only when made" {
	outbox_config "$RC" "port 9"
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	chmod 755 "$QDIR"
	run --separate-stderr "$OUTBOX" -C "$RC" -bp
	assert_equal "$status" 78
	assert_equal "$stderr" "outbox: the queue $QDIR must belong to you and be private (mode 0700, now 0755); fix it with: chmod 700 $QDIR"
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 78
	# A send still goes out, without writing into that folder.
	outbox_config "$RC"
	printf 'Subject: q\nMessage-ID: <p9@example.org>\n\nx\n' >"$MSG"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" 'must belong to you and be private.*; sending without the queue'
	maildir_wait bob 1
	assert_equal "$(entries)" 1
}
