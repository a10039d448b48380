#!/usr/bin/env bats
# Failures at each stage, against the scriptable server: the exit code tells
# the caller what to do, the message names the command and the reply, and a
# refused or broken transaction is never completed.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'lib/faultsmtp'
bats_require_minimum_version 1.5.0

setup() {
	OUTBOX=${OUTBOX:-$BATS_TEST_DIRNAME/../outbox}
	export XDG_STATE_HOME=$BATS_TEST_TMPDIR/state XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'From: a@example.org\nTo: b@example.org\nSubject: t\n\nbody\n' >"$MSG"
}

teardown() {
	fault_stop
}

# A plaintext account on the fault server; extra lines are appended.
conf() {
	local f=$BATS_TEST_TMPDIR/rc
	{
		echo "account default"
		echo "host 127.0.0.1"
		echo "port $FAULT_PORT"
		echo "tls off"
		echo "auth off"
		echo "from a@example.org"
		echo "timeout 3"
		echo "queue off"
		printf '%s\n' "$@"
	} >"$f"
	chmod 600 "$f"
	echo "$f"
}

send() {
	run --separate-stderr "$OUTBOX" -C "$(conf "${EXTRA[@]}")" "$@" <"$MSG"
}

@test "421 greeting: exit 75 and the reply is quoted" {
	fault_start 'send 421 4.3.2 busy, come back later'
	send b@example.org
	assert_equal "$status" 75
	assert_equal "$stderr" "outbox: account default: 127.0.0.1:$FAULT_PORT: greeting: 421 4.3.2 busy, come back later"
}

@test "554 greeting: exit 69" {
	fault_start 'send 554 no service for you'
	send b@example.org
	assert_equal "$status" 69
	assert_regex "$stderr" 'greeting: 554 no service for you$'
}

@test "451 to MAIL: exit 75, nothing after" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo SIZE=1000000
		expect MAIL FROM:<a@example.org> SIZE=[0-9]+
		send 451 4.3.0 try later
		expect QUIT
		send 221 bye
	EOF
	send b@example.org
	assert_equal "$status" 75
	assert_regex "$stderr" 'MAIL FROM:<a@example.org> SIZE=[0-9]+: 451 4.3.0 try later$'
	fault_wait
	refute grep -q DATA "$FAULT_LOG"
}

@test "550 5.1.1 to the only RCPT: exit 67 and no DATA" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT TO:<b@example.org>
		send 550 5.1.1 no such user
		expect QUIT
		send 221 bye
	EOF
	send b@example.org
	assert_equal "$status" 67
	assert_equal "$stderr" "outbox: account default: 127.0.0.1:$FAULT_PORT: RCPT TO:<b@example.org>: 550 5.1.1 no such user"
	fault_wait
	refute grep -q DATA "$FAULT_LOG"
}

@test "one RCPT refused, one accepted: delivered to the other, exit 69" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT TO:<b@example.org>
		send 550 5.7.1 relaying denied
		expect RCPT TO:<c@example.org>
		send 250 ok
		data_ok
		data
		send 250 2.0.0 queued as ABC
		expect QUIT
		send 221 bye
	EOF
	send b@example.org c@example.org
	assert_equal "$status" 69
	assert_equal "$stderr" "outbox: account default: 127.0.0.1:$FAULT_PORT: RCPT TO:<b@example.org>: 550 5.7.1 relaying denied"
	fault_wait
}

@test "a temporary RCPT refusal wins over a permanent one: exit 75" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT
		send 550 5.7.1 no
		expect RCPT
		send 452 4.2.2 mailbox full
		expect QUIT
		send 221 bye
	EOF
	send b@example.org c@example.org
	assert_equal "$status" 75
	assert_equal "${#stderr_lines[@]}" 2
	assert_equal "${stderr_lines[0]}" "outbox: account default: 127.0.0.1:$FAULT_PORT: RCPT TO:<b@example.org>: 550 5.7.1 no"
	assert_equal "${stderr_lines[1]}" "outbox: account default: 127.0.0.1:$FAULT_PORT: RCPT TO:<c@example.org>: 452 4.2.2 mailbox full"
}

@test "451 after the data: exit 75" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		send 451 4.3.0 queue write error
		expect QUIT
		send 221 bye
	EOF
	send b@example.org
	assert_equal "$status" 75
	assert_regex "$stderr" 'end of data: 451 4.3.0 queue write error$'
}

@test "554 after the data: exit 69" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		send 554 5.6.0 content rejected
		expect QUIT
		send 221 bye
	EOF
	send b@example.org
	assert_equal "$status" 69
	assert_regex "$stderr" ': 554 5.6.0 content rejected$'
}

@test "connection dropped during the data: exit 75, says it may not have arrived" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		close
	EOF
	send b@example.org
	assert_equal "$status" 75
	assert_regex "$stderr" 'closed the connection|writing to the server'
}

@test "a server that never answers: timeout, exit 75, within the configured time" {
	fault_start <<-'EOF'
		sleep 10
	EOF
	SECONDS=0
	send b@example.org
	assert_equal "$status" 75
	assert_regex "$stderr" 'timed out'
	(( SECONDS < 8 ))
}

@test "a greeting trickled byte by byte past the timeout: exit 75" {
	fault_start <<-'EOF'
		trickle 0.5 220 a very slow greeting that takes many seconds
	EOF
	SECONDS=0
	send b@example.org
	assert_equal "$status" 75
	assert_regex "$stderr" 'timed out'
	(( SECONDS < 8 ))
}

@test "a reply without a status code: exit 76" {
	fault_start 'send hello there'
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'malformed reply'
}

@test "mixed codes in one multi-line reply: exit 76" {
	fault_start <<-'EOF'
		send 220 hi
		expect EHLO
		send 250-first
		send 550 second
	EOF
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'mixed status codes'
}

@test "an over-long reply line: exit 76, bounded" {
	fault_start <<-EOF
		send 220 $(printf 'x%.0s' {1..5000})
	EOF
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'longer than'
}

@test "endless continuation lines: exit 76" {
	script="send 220 hi
expect EHLO"
	for i in $(seq 200); do script+=$'\n'"send 250-line $i"; done
	fault_start "$script"
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'more than 100 lines'
}

@test "escape sequences in a reply do not reach the terminal" {
	fault_start 'send 554 evil \x1b[2J\x1b]0;title\x07 text'
	send b@example.org
	assert_equal "$status" 69
	[[ $stderr != *$'\e'* ]]
	[[ $stderr != *$'\a'* ]]
}

# ESC, BEL, and the C1 control CSI both raw and as UTF-8 (U+009B).
EVIL_AUTH='250 AUTH PLAIN \x1b]0;title\x07 X\x9b2J Y\xc2\x9b2J'

no_controls() {
	[[ $1 != *$'\e'* && $1 != *$'\a'* && $1 != *$'\x9b'* ]]
}

@test "the EHLO AUTH list reaches the terminal sanitised: -S" {
	fault_start - <<-EOF
	send 220 fault ESMTP
	expect EHLO
	send 250-fault
	send $EVIL_AUTH
	wait_close
	EOF
	run --separate-stderr "$OUTBOX" -C "$(conf)" -S
	assert_success
	assert_regex "$output" 'AUTH +PLAIN \?\]0;title\? X\?2J Y\?\?2J$'
	no_controls "$output"
	no_controls "$stderr"
}

@test "the EHLO AUTH list reaches the terminal sanitised: in an error" {
	fault_start - <<-EOF
	send 220 fault ESMTP
	expect EHLO
	send 250-fault
	send $EVIL_AUTH
	wait_close
	EOF
	EXTRA=("auth scram-sha-256" "user u" "password p")
	send b@example.org
	assert_equal "$status" 69
	assert_regex "$stderr" 'does not offer AUTH SCRAM-SHA-256 \(it offers: PLAIN \?\]0;title'
	no_controls "$stderr"
}

@test "no ESMTP: HELO fallback, then DATA" {
	fault_start <<-'EOF'
		send 220 old
		expect EHLO
		send 502 what
		expect HELO
		send 250 ok
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		expect QUIT
		send 221 bye
	EOF
	send b@example.org
	assert_success
	fault_wait
	grep -q $'^MAIL FROM:<a@example.org>\r$' "$FAULT_LOG"
}

@test "PIPELINING: MAIL, RCPTs and DATA go in one flight" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo PIPELINING
		expect MAIL
		expect RCPT
		expect RCPT
		expect DATA
		send 250 ok
		send 250 ok
		send 250 ok
		send 354 go
		data
		expect QUIT
		send 250 delivered
		send 221 bye
	EOF
	send b@example.org c@example.org
	assert_success
	fault_wait
}

@test "CHUNKING: BDAT carries the exact message, no dot-stuffing" {
	printf 'Subject: t\n\n.leading dot\nend\n' >"$MSG"
	EXTRA=("set_date_header off" "set_msgid_header off" "set_from_header off")
	fault_start <<-'EOF'
		send 220 hi
		ehlo PIPELINING CHUNKING
		expect MAIL
		expect RCPT
		bdat
		expect QUIT
		send 250 ok
		send 250 ok
		send 250 ok
		send 221 bye
	EOF
	send b@example.org
	assert_success
	fault_wait
	expected=$'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 33 LAST\r\nSubject: t\r\n\r\n.leading dot\r\nend\r\nQUIT\r\n'
	assert_equal "$(sed -n '/^MAIL/,$p' "$FAULT_LOG" | cat -v)" "$(printf '%s' "$expected" | cat -v)"
}

@test "DATA dot-stuffs lines that begin with a dot" {
	printf 'Subject: t\n\n.leading dot\n..two\n.\nend\n' >"$MSG"
	EXTRA=("set_date_header off" "set_msgid_header off" "set_from_header off")
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		expect QUIT
		send 221 bye
	EOF
	run --separate-stderr "$OUTBOX" -i -C "$(conf "${EXTRA[@]}")" b@example.org <"$MSG"
	assert_success
	fault_wait
	body=$(sed -n '/^DATA/,$p' "$FAULT_LOG" | cat -v)
	assert_equal "$body" "$(printf 'DATA\r\nSubject: t\r\n\r\n..leading dot\r\n...two\r\n..\r\nend\r\n.\r\nQUIT\r\n' | cat -v)"
}

@test "SIZE too small for the message: exit 69 before MAIL" {
	head -c 3000 /dev/zero | tr '\0' 'x' | fold -w 70 >>"$MSG"
	fault_start <<-'EOF'
		send 220 hi
		ehlo SIZE=1000
		expect QUIT
		send 221 bye
	EOF
	send b@example.org
	assert_equal "$status" 69
	assert_regex "$stderr" 'the server accepts at most 1000'
	fault_wait
	refute grep -q MAIL "$FAULT_LOG"
}

@test "tls on but no STARTTLS offered: stop before MAIL or AUTH" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo AUTH=PLAIN
		expect QUIT
		send 221 bye
	EOF
	EXTRA=("tls on" "tls_starttls on")
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'does not offer STARTTLS'
	fault_wait
	refute grep -Eq 'AUTH|MAIL' "$FAULT_LOG"
}

@test "STARTTLS injection: bytes behind the 220 abort the session" {
	fault_make_cert
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" <<-'EOF'
		send 220 hi
		ehlo STARTTLS
		expect STARTTLS
		sendraw 220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n
		sleep 2
	EOF
	EXTRA=("tls on" "tls_certcheck off")
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'STARTTLS injection'
}

@test "more replies than pipelined commands: stop before the message" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo PIPELINING
		expect MAIL
		expect RCPT
		expect DATA
		send 250 ok
		send 250 ok
		send 354 go
		send 250 an extra reply
		wait_close
	EOF
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'more replies than outbox sent commands'
	fault_wait
	refute grep -q '^Subject' "$FAULT_LOG"
}

@test "fewer replies than pipelined commands: a timeout, never a success" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo PIPELINING
		expect MAIL
		expect RCPT
		expect DATA
		send 250 ok
		sleep 6
	EOF
	send b@example.org
	assert_equal "$status" 75
	assert_regex "$stderr" 'RCPT TO:<b@example.org>: .*timed out|timed out'
}

@test "a server that talks before the client: stop" {
	fault_start $'sendraw 220 hi\\r\\n250 unasked\\r\\n\nsleep 2'
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'more than its greeting'
}

@test "endless AUTH challenges: bounded, exit 76" {
	fault_make_cert
	script=$'send 220 hi\nehlo STARTTLS\nexpect STARTTLS\nsend 220 go\nstarttls\nehlo AUTH=LOGIN\nexpect AUTH LOGIN'
	for i in $(seq 12); do script+=$'\nsend 334 VXNlcm5hbWU6\nrecv'; done
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" <<<"$script"
	EXTRA=("tls on" "tls_certcheck off" "auth login" "user u" "password p")
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'AUTH LOGIN: the server asked for more'
}

@test "session_timeout bounds the whole session, however the server trickles" {
	script=$'send 220 hi\nexpect EHLO'
	for i in $(seq 10); do script+=$'\nsend 250-line\nsleep 0.8'; done
	fault_start "$script"
	EXTRA=("timeout 2" "session_timeout 3")
	SECONDS=0
	send b@example.org
	assert_equal "$status" 75
	assert_regex "$stderr" 'timed out waiting for the server \(session_timeout\)'
	(( SECONDS < 7 ))
}

@test "Happy Eyeballs: an IPv6 address that stalls costs 250 ms, not the timeout" {
	# In a network namespace of our own: dual.test has an IPv6 address
	# nobody answers for (neighbour discovery stalls ~3 s) and 127.0.0.1.
	printf '127.0.0.1 localhost\nfd00::2 dual.test\n127.0.0.1 dual.test\n' >"$BATS_TEST_TMPDIR/hosts"
	printf 'send 220 hi\nehlo\nmail_ok\nrcpt_ok\ndata_ok\ndata\nsend 250 ok\nexpect QUIT\nsend 221 bye\n' >"$BATS_TEST_TMPDIR/script"
	run unshare --net --mount bash -c '
		set -e
		d=$1 outbox=$2 py=$3
		ip link set lo up
		ip link add v0 type veth peer name v1
		ip link set v0 up
		ip link set v1 up
		ip -6 addr add fd00::1/64 dev v0 nodad
		mount --bind "$d/hosts" /etc/hosts
		/usr/bin/python3 "$py" --script "$d/script" --port-file "$d/port" --log "$d/log" </dev/null >/dev/null 2>&1 &
		for i in $(seq 50); do [ -s "$d/port" ] && break; sleep 0.1; done
		printf "account default\nhost dual.test\nport %s\ntls off\nauth off\nfrom a@example.org\nqueue off\ntimeout 10\n" "$(cat "$d/port")" >"$d/rc"
		getent ahosts dual.test | head -1
		start=$(date +%s%N)
		rc=0
		printf "Subject: he\n\nx\n" | "$outbox" -C "$d/rc" b@example.org || rc=$?
		echo "rc=$rc ms=$(( ($(date +%s%N) - start) / 1000000 ))"
		wait
	' _ "$BATS_TEST_TMPDIR" "$OUTBOX" "$BATS_TEST_DIRNAME/lib/faultsmtp.py"
	assert_success
	assert_line --index 0 --regexp '^fd00::2 '
	assert_line --regexp '^rc=0 ms=[0-9]+$'
	ms=$(sed -n 's/^rc=0 ms=//p' <<<"$output")
	(( ms < 2000 ))
}

# in_servfail_dns CMD...: run CMD in a network and mount namespace of its own,
# where the system resolver asks tests/lib/fakedns.py --servfail.
in_servfail_dns() {
	local t=$BATS_TEST_TMPDIR
	printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n' >"$t/resolv.conf"
	unshare --mount --net /bin/bash -c '
		t=$1 lib=$2; shift 2
		ip link set lo up
		mount --bind "$t/resolv.conf" /etc/resolv.conf
		/usr/bin/python3 "$lib/fakedns.py" --servfail --listen-port 53 \
			--port-file "$t/dns.port" --log "$t/dns.log" --max-seconds 20 </dev/null >/dev/null 2>&1 &
		for _ in $(seq 50); do [[ -s $t/dns.port ]] && break; sleep 0.1; done
		"$@"; rc=$?
		kill $!
		exit $rc' in_servfail_dns "$t" "$BATS_TEST_DIRNAME/lib" "$@"
}

@test "a temporary DNS failure (SERVFAIL, EAI_AGAIN): 75 with queue off, queued otherwise" {
	[[ $(id -u) == 0 ]] || { [[ ${CI:-} == true || ${OUTBOX_STRICT:-0} == 1 ]] && fail "needs root (unshare)"; skip "needs root (unshare)"; }
	printf 'account default\nhost mail.example.net\nport 25\ntls off\nauth off\nfrom a@example.org\nqueue off\n' >"$BATS_TEST_TMPDIR/rc"
	run --separate-stderr in_servfail_dns "$OUTBOX" -C "$BATS_TEST_TMPDIR/rc" b@example.org <"$MSG"
	assert_equal "$status" 75
	assert_regex "$stderr" 'cannot resolve mail\.example\.net: .*\(try again later\)'
	# The answer came from the fake server, not from a network out of reach.
	grep -q '^mail\.example\.net 1$' "$BATS_TEST_TMPDIR/dns.log"
	sed -i '/^queue off$/d' "$BATS_TEST_TMPDIR/rc"
	run --separate-stderr in_servfail_dns "$OUTBOX" -C "$BATS_TEST_TMPDIR/rc" b@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" 'cannot resolve mail\.example\.net: .*queued as '
	run "$OUTBOX" -C "$BATS_TEST_TMPDIR/rc" -bp
	assert_output --regexp '^[^ ]+ .*b@example\.org'
}

@test "CHUNKING: an extra reply shifts the BDAT reply; it is caught, not taken as acceptance" {
	# MAIL, RCPT, BDAT and QUIT go in one flight; one reply too many comes
	# back, so what arrives third is the RCPT's 250, not the BDAT's.
	fault_start <<-'EOF2'
		send 220 hi
		ehlo PIPELINING CHUNKING
		expect MAIL
		expect RCPT
		bdat
		send 250 ok
		send 250 an extra reply
		send 250 ok
		send 250 2.0.0 the real reply to BDAT
		send 221 bye
		wait_close
	EOF2
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'more replies than outbox sent commands'
	fault_wait
}

@test "CHUNKING without PIPELINING: an extra reply before BDAT stops before the message" {
	fault_start <<-'EOF2'
		send 220 hi
		ehlo CHUNKING
		mail_ok
		expect RCPT
		send 250 ok
		send 250 an extra reply
		wait_close
	EOF2
	send b@example.org
	assert_equal "$status" 76
	assert_regex "$stderr" 'more replies than outbox sent commands; stopping before the message'
	fault_wait
	refute grep -q '^BDAT' "$FAULT_LOG"
}

@test "a reused connection: a reply nobody asked for, arriving after the last one, is caught" {
	fault_make_cert
	# One message waits in the queue; the next send carries it on the same
	# connection.  The extra reply comes in a TLS record of its own, in the
	# same TCP segment: it is not read with the reply before it.
	printf 'account default\nhost 127.0.0.1\nport 9\ntls off\nauth off\nfrom a@example.org\n' >"$BATS_TEST_TMPDIR/down"
	"$OUTBOX" -C "$BATS_TEST_TMPDIR/down" b@example.org <"$MSG" 2>/dev/null
	export OUTBOX_NOW=$(( $(date +%s) + 600 ))
	fault_start - --implicit-tls --cert "$FAULT_CERT" --key "$FAULT_KEY" --connections 2 --max-seconds 8 <<-'EOF2'
		send 220 hi
		ehlo PIPELINING
		expect MAIL
		expect RCPT
		expect DATA
		send 250 ok
		send 250 ok
		send 354 go
		data
		cork
		send 250 2.0.0 accepted
		flush
		send 250 2.0.0 an extra reply nobody asked for
		uncork
		wait_close
	EOF2
	EXTRA=("queue on" "tls on" "tls_starttls off" "tls_certcheck off")
	send b@example.org
	assert_success
	fault_stop
	# Each connection carried one message: the second never went on the
	# first, where the extra reply would have been taken for its MAIL's.
	conns=$(grep -c '^TLS start' "$FAULT_TRACE")
	mails=$(grep -c '^MAIL FROM' "$FAULT_LOG")
	assert_equal "$mails" "$conns"
}
