#!/usr/bin/env bats
# Shared sessions: after a message is accepted, a holder keeps the
# authenticated session open for `linger` seconds, and the next outbox for
# the same account sends over it.  Nothing is lost, doubled or reported
# sent without its own 250 when the holder or its session goes away.

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
	unset OUTBOX_NO_RETRIER OUTBOX_LINGER
	export XDG_RUNTIME_DIR=$BATS_TEST_TMPDIR/run
	mkdir -m 700 "$XDG_RUNTIME_DIR"
	RC=$BATS_TEST_TMPDIR/rc
	QDIR=$XDG_STATE_HOME/outbox/queue
	maildir_clear bob
	outbox_config "$RC" "auth plain" "linger 3s" "queue_retry 1h"
}

teardown() {
	if [[ -n ${SHORT_IDLE:-} ]]; then
		PATH=$PATH:/usr/sbin postconf -c "$MTA_DIR/postfix" -e smtpd_timeout=300s
		PATH=$PATH:/usr/sbin postfix -c "$MTA_DIR/postfix" reload >/dev/null 2>&1
	fi
	fault_stop
	pkill -KILL -f -- "-C $RC" 2>/dev/null || true
	return 0
}

msg() {	# msg N: a message with Message-ID <lN@example.org>
	printf 'Subject: linger %s\nMessage-ID: <l%s@example.org>\n\nbody %s\n' "$1" "$1" "$1"
}

holders() {	# the holders alive for this test's account
	pgrep -f -- "-C $RC" | while read -r p; do
		[[ $(ps -o sid= -p "$p" | tr -d ' ') != $(ps -o sid= -p $$ | tr -d ' ') ]] && echo "$p"
	done | wc -l
}

socket_of() { ls "$XDG_RUNTIME_DIR"/outbox/s-* 2>/dev/null | grep -v '\.lock$' | head -1; }

entries() { ls -d "$QDIR"/*/env 2>/dev/null | wc -l; }

copies() {	# copies N: how many copies of message N arrived for bob
	grep -l "^Message-ID: <l$1@example.org>" "$MTA_MAILDIR"/bob/new/* 2>/dev/null | wc -l
}

@test "a series of five goes over one connection, each with its own 250 and exit 0" {
	mta_log_mark
	msg 1 | "$OUTBOX" -C "$RC" bob@example.org
	[[ -S $(socket_of) ]]
	[[ $(stat -c %a "$XDG_RUNTIME_DIR/outbox") == 700 ]]
	for i in 2 3 4 5; do
		run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org < <(msg $i)
		assert_success
		assert_regex "$stderr" "sent over the shared session at $XDG_RUNTIME_DIR/outbox/s-"
	done
	maildir_wait bob 5
	for i in 1 2 3 4 5; do assert_equal "$(copies $i)" 1; done
	run mta_log_since_mark
	assert_equal "$(grep -c 'submission/smtpd.*: connect from' <<<"$output")" 1
	assert_equal "$(entries)" 0
	# The holder QUITs once idle for linger, and takes its socket with it.
	sleep 3.5
	mta_log_wait 'disconnect from .* quit=1'
	[[ -z $(socket_of) ]]
	assert_equal "$(holders)" 0
}

@test "the log line over a shared session is the one of a fresh connection" {
	LOG=$BATS_TEST_TMPDIR/log
	outbox_config "$RC" "auth plain" "linger 3s" "logfile $LOG"
	msg 1 | "$OUTBOX" -C "$RC" bob@example.org
	msg 2 | "$OUTBOX" -C "$RC" bob@example.org
	run cat "$LOG"
	assert_equal "${#lines[@]}" 2
	for l in 0 1; do
		assert_line --index $l --regexp "host=localhost port=$SUBMISSION_PORT tls=TLS1\.3 cipher=[^ ]+ auth=PLAIN from=<alice@example\.org> rcpts=\"<bob@example\.org>=250\" .*msgid=<l$((l + 1))@example\.org> reply=\"250 2\.0\.0 Ok: [0-9]+ bytes queued as [0-9A-F]+\" .*result=sent exitcode=0$"
	done
}

@test "linger 0 and OUTBOX_NO_RETRIER keep no session" {
	outbox_config "$RC" "auth plain" "linger 0"
	mta_log_mark
	msg 1 | "$OUTBOX" -C "$RC" bob@example.org
	msg 2 | "$OUTBOX" -C "$RC" bob@example.org
	[[ -z $(socket_of) ]]
	outbox_config "$RC" "auth plain" "linger 3s"
	msg 3 | OUTBOX_NO_RETRIER=1 "$OUTBOX" -C "$RC" bob@example.org
	[[ -z $(socket_of) ]]
	maildir_wait bob 3
	mta_log_wait 'disconnect from'
	run mta_log_since_mark
	assert_equal "$(grep -c 'submission/smtpd.*: connect from' <<<"$output")" 3
}

@test "a refusal over the shared session ends as on a fresh one" {
	msg 1 | "$OUTBOX" -C "$RC" bob@example.org
	run --separate-stderr "$OUTBOX" -C "$RC" never@example.org < <(msg 2)
	assert_equal "$status" 69
	assert_regex "$stderr" 'RCPT TO:<never@example.org>: 550 5\.7\.1'
	assert_equal "$(entries)" 0
	maildir_wait bob 1
	sleep 0.5
	assert_equal "$(copies 2)" 0
}

@test "ten at once never interleave on one session: each arrives once" {
	msg 0 | "$OUTBOX" -C "$RC" bob@example.org
	pids=()
	for i in $(seq 1 10); do
		msg $i | "$OUTBOX" -C "$RC" bob@example.org 2>>"$BATS_TEST_TMPDIR/err" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	maildir_wait bob 11 20
	sleep 0.5
	for i in $(seq 0 10); do assert_equal "$(copies $i)" 1; done
	assert_equal "$(entries)" 0
}

@test "Postfix ends the idle session (smtpd_timeout 2s): the next message goes on its own connection" {
	SHORT_IDLE=1
	PATH=$PATH:/usr/sbin postconf -c "$MTA_DIR/postfix" -e smtpd_timeout=2s
	PATH=$PATH:/usr/sbin postfix -c "$MTA_DIR/postfix" reload >/dev/null 2>&1
	sleep 1
	outbox_config "$RC" "auth plain" "linger 20s"
	mta_log_mark
	msg 1 | "$OUTBOX" -C "$RC" bob@example.org
	mta_log_wait 'timeout after' 10
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org < <(msg 2)
	assert_success
	assert_regex "$stderr" 'the shared session cannot take the message; sending on a connection of its own'
	maildir_wait bob 2
	sleep 0.5
	assert_equal "$(copies 1)" 1
	assert_equal "$(copies 2)" 1
	assert_equal "$(entries)" 0
}

fault_series() {	# fault_series SCRIPT: two messages to the fault server
	printf 'account default\nhost 127.0.0.1\nport %s\ntls off\nauth off\nfrom a@example.org\ntimeout 5\nlinger 3s\n' \
		"$FAULT_PORT" >"$RC"
	run "$OUTBOX" -C "$RC" b@example.org < <(msg 1)
	assert_success
	sleep 1	# the server's word on the idle session comes first
	run --separate-stderr "$OUTBOX" -v -C "$RC" b@example.org < <(msg 2)
	assert_success
	assert_regex "$stderr" 'the shared session cannot take the message; sending on a connection of its own'
	fault_wait
	assert_equal "$(grep -c '^Message-ID: <l1@' "$FAULT_LOG")" 1
	assert_equal "$(grep -c '^Message-ID: <l2@' "$FAULT_LOG")" 1
	assert_equal "$(entries)" 0
}

@test "a server that closes the idle session: the next message goes on its own connection" {
	fault_start - --connections 2 <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		sleep 0.5
		close
	EOF
	fault_series
}

@test "a 421 on the idle session: the next message goes on its own connection" {
	fault_start - --connections 2 <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		sleep 0.5
		send 421 4.4.2 idle too long
		close
	EOF
	fault_series
}

@test "-B 8BITMIME and -O smtputf8 reach MAIL FROM over the shared session too" {
	fault_start - <<-'EOF'
		send 220 hi
		ehlo 8BITMIME SMTPUTF8
		expect MAIL FROM:<a@example.org> BODY=8BITMIME SMTPUTF8$
		send 250 ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		expect MAIL FROM:<a@example.org> BODY=8BITMIME SMTPUTF8$
		send 250 ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		expect QUIT
		send 221 bye
	EOF
	printf 'account default\nhost 127.0.0.1\nport %s\ntls off\nauth off\nfrom a@example.org\ntimeout 5\nlinger 1s\n' \
		"$FAULT_PORT" >"$RC"
	run "$OUTBOX" -C "$RC" -B 8BITMIME -O smtputf8 b@example.org < <(msg 1)
	assert_success
	run --separate-stderr "$OUTBOX" -v -C "$RC" -B 8BITMIME -O smtputf8 b@example.org < <(msg 2)
	assert_success
	assert_regex "$stderr" 'sent over the shared session'
	fault_wait
}

# kill_holder_at POINT: the holder dies at POINT while carrying message 2.
kill_holder_at() {
	msg 1 | OUTBOX_TEST_CRASH=$1 "$OUTBOX" -C "$RC" bob@example.org
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(msg 2)
}

@test "holder killed before the message: sent on a connection of its own, once" {
	for point in linger-held linger-go; do
		maildir_clear bob
		kill_holder_at $point
		assert_success
		refute_regex "$stderr" 'queued'
		maildir_wait bob 2
		sleep 0.3
		assert_equal "$(copies 2)" 1
		pkill -KILL -f -- "-C $RC" || true
		rm -rf "$XDG_RUNTIME_DIR/outbox"
	done
}

@test "holder killed as the data begins: queued, and sent once by the next flush" {
	kill_holder_at linger-data
	assert_success
	assert_regex "$stderr" 'the shared session ended after the message data began \(it may or may not have been accepted\)'
	assert_regex "$stderr" 'queued as '
	assert_equal "$(entries)" 1
	sleep 0.5
	assert_equal "$(copies 2)" 0
	OUTBOX_LINGER=0 run "$OUTBOX" -C "$RC" -q
	assert_success
	maildir_wait bob 2
	assert_equal "$(copies 2)" 1
}

@test "holder killed after the 250, before it told: queued, as a connection lost after the dot" {
	kill_holder_at linger-sent
	assert_success
	assert_regex "$stderr" 'may or may not have been accepted'
	assert_equal "$(entries)" 1
	maildir_wait bob 2
	assert_equal "$(copies 2)" 1
}

@test "another user cannot use the holder: SO_PEERCRED is checked" {
	msg 1 | "$OUTBOX" -C "$RC" bob@example.org
	sock=$(socket_of)
	chmod 711 "$XDG_RUNTIME_DIR" "$XDG_RUNTIME_DIR/outbox"
	chmod 777 "$sock"
	run setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(5)
try:
    s.sendall(b"outbox-linger 1\nsize 1\n8bit 0\naon 0\nsender x@example.org\nrcpt bob@example.org\nend\n")
    print(repr(s.recv(100)))
except (BrokenPipeError, ConnectionResetError):
    print("b\x27\x27")  # closed on us: no "ready" either' "$sock"
	assert_success
	assert_output "b''"
	# The holder is still there for its own user, once the folder is private.
	chmod 700 "$XDG_RUNTIME_DIR/outbox"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org < <(msg 2)
	assert_regex "$stderr" 'sent over the shared session'
}

@test "the holder keeps no password and nothing of the message" {
	# Under ASan its allocator stands in for glibc's: let it wipe as
	# M_PERTURB does (no effect on a normal build).
	printf 'Subject: memory\n\nzebra-secret-body-text\n' |
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_free_fill_size=1048576:free_fill_byte=165 \
		"$OUTBOX" -C "$RC" bob@example.org
	pid=$(pgrep -f -- "-C $RC" | head -1)
	run /usr/bin/python3 -c '
import re, sys
pid = sys.argv[1]
found = False
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (r)", line)
        if not m or "[vvar]" in line or "[vsyscall]" in line:
            continue
        a, b = int(m[1], 16), int(m[2], 16)
        if b - a > 1 << 30:     # the shadow of a sanitizer, not the heap
            continue
        # Read in pieces (a sanitizer build maps huge shadow areas).
        tail = b""
        for off in range(a, b, 1 << 24):
            try:
                mem.seek(off)
                data = mem.read(min(1 << 24, b - off))
            except (OSError, OverflowError):
                break
            if b"wonder land-42" in tail + data or b"zebra-secret-body" in tail + data:
                found = True
            tail = data[-32:]
print("found" if found else "clean")' "$pid"
	assert_output clean
}
