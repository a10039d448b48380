#!/usr/bin/env bats
# The queue: a temporary failure never loses a message.  It is on disk
# before the first byte goes to the server, removed once the server took
# it, and sent again by outbox -q.

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
	printf 'Subject: queued\nMessage-ID: <q1@example.org>\n\nhi\n' >"$MSG"
}

teardown() {
	fault_stop
}

entries() {	# the number of entries in the queue
	ls -d "$QDIR"/*/env 2>/dev/null | wc -l
}

# The account at a port where nothing listens: every attempt fails for now.
down_config() {
	outbox_config "$RC" "port 9" "$@"
}

# A plaintext account on the fault server.
fault_config() {
	printf 'account default\nhost 127.0.0.1\nport %s\ntls off\nauth off\nfrom a@example.org\ntimeout 5\n' \
		"$FAULT_PORT" >"$RC"
	printf '%s\n' "$@" >>"$RC"
}

@test "server down: queued with exit 0, then flushed and arrives once" {
	down_config
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" "cannot connect to localhost:9"
	assert_regex "$stderr" 'queued as [0-9T]+-[0-9]+-[0-9a-f]+; it will be sent again later, or now with outbox -q'
	assert_equal "$(entries)" 1
	run "$OUTBOX" -C "$RC" -bp
	assert_success
	assert_output --regexp '<alice@example.org> -> <bob@example.org>  attempts=1  next=.*error="localhost:9: |error="cannot connect'
	outbox_config "$RC"
	id=$(basename "$(dirname "$(ls "$QDIR"/*/env)")")
	run --separate-stderr "$OUTBOX" -v -C "$RC" -q
	assert_success
	assert_regex "$stderr" "outbox: $id: delivered"
	maildir_wait bob 1
	assert_equal "$(entries)" 0
	run "$OUTBOX" -C "$RC" -q
	assert_success
	sleep 0.5
	assert_equal "$(maildir_count bob)" 1
	diff <(maildir_last bob) "$MSG" >/dev/null || maildir_last bob | grep -q '^Subject: queued'
}

@test "queue off: the same failure exits 75 and nothing is queued" {
	down_config "queue off"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 75
	assert_equal "$(entries)" 0
}

@test "the keyring out of reach is temporary: queued" {
	outbox_config --no-password "$RC"
	run --separate-stderr env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR=/nonexistent \
		setsid "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" 'cannot read the keyring'
	assert_regex "$stderr" 'queued as'
	assert_equal "$(entries)" 1
}

@test "a permanent refusal is not queued: exit 69" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		send 554 5.7.1 spam
		expect QUIT
		send 221 bye
	EOF
	fault_config
	run --separate-stderr "$OUTBOX" -C "$RC" b@example.org <"$MSG"
	assert_equal "$status" 69
	refute_regex "$stderr" 'queued'
	assert_equal "$(entries)" 0
}

@test "4xx at MAIL, at RCPT, after the data: queued each time" {
	for stage in mail rcpt data; do
		case $stage in
		mail) script=$'send 220 hi\nehlo\nexpect MAIL\nsend 451 4.3.0 later\nexpect QUIT\nsend 221 bye' ;;
		rcpt) script=$'send 220 hi\nehlo\nmail_ok\nexpect RCPT\nsend 450 4.2.0 greylisted\nexpect QUIT\nsend 221 bye' ;;
		data) script=$'send 220 hi\nehlo\nmail_ok\nrcpt_ok\ndata_ok\ndata\nsend 452 4.3.1 disk full\nexpect QUIT\nsend 221 bye' ;;
		esac
		fault_start "$script"
		fault_config
		run --separate-stderr "$OUTBOX" -C "$RC" b@example.org <"$MSG"
		assert_success
		assert_regex "$stderr" 'queued as'
		fault_wait
	done
	assert_equal "$(entries)" 3
}

@test "partial refusal: only the recipient refused for now stays queued" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT TO:<b@example.org>
		send 250 ok
		expect RCPT TO:<c@example.org>
		send 451 4.7.1 try c later
		data_ok
		data
		send 250 ok
		expect QUIT
		send 221 bye
	EOF
	fault_config
	run --separate-stderr "$OUTBOX" -C "$RC" b@example.org c@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" 'RCPT TO:<c@example.org>: 451 4.7.1 try c later'
	assert_regex "$stderr" 'queued as'
	fault_wait
	run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp '-> <c@example.org>  attempts=1'
	refute_output --partial 'b@example.org'
	# The next attempt sends to c alone.
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT TO:<c@example.org>
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

@test "killed during the data: the message is still queued and is sent later" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		sleep 5
	EOF
	fault_config
	"$OUTBOX" -C "$RC" b@example.org <"$MSG" 2>/dev/null &
	pid=$!
	for i in $(seq 50); do grep -q '^DATA' "$FAULT_LOG" 2>/dev/null && break; sleep 0.1; done
	kill -9 "$pid"
	wait "$pid" || true
	fault_stop
	assert_equal "$(entries)" 1
	outbox_config "$RC"
	sed -i 's/^account default/account default/' "$RC"
	run "$OUTBOX" -C "$RC" -q
	assert_success
	maildir_wait catchall 1
	assert_equal "$(entries)" 0
}

@test "killed after the final dot, before the reply: queued; a flush may send a second copy" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		sleep 5
	EOF
	fault_config
	"$OUTBOX" -C "$RC" b@example.org <"$MSG" 2>/dev/null &
	pid=$!
	for i in $(seq 50); do grep -q $'^\\.\r$' "$FAULT_LOG" 2>/dev/null && break; sleep 0.1; done
	kill -9 "$pid"
	wait "$pid" || true
	fault_stop
	assert_equal "$(entries)" 1
}

@test "killed while the message is being read: no entry, nothing sent" {
	down_config
	mkfifo "$BATS_TEST_TMPDIR/in"
	"$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in" 2>/dev/null &
	pid=$!
	exec 5>"$BATS_TEST_TMPDIR/in"
	printf 'Subject: half\n\nfirst half\n' >&5
	sleep 0.3
	kill -9 "$pid"
	wait "$pid" || true
	exec 5>&-
	assert_equal "$(entries)" 0
	run "$OUTBOX" -C "$RC" -bp
	assert_output 'Mail queue is empty'
}

@test "what a killed writer left is removed by the next flush, once an hour old" {
	down_config
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_equal "$(entries)" 1
	id=$(basename "$(dirname "$(ls "$QDIR"/*/env)")")
	# a spool never committed, envelope rewrites never renamed into
	# place, and an entry whose removal was cut short after its env
	mkdir "$QDIR/tmp/old" "$QDIR/failed/gone" "$QDIR/removed"
	echo half >"$QDIR/tmp/old/msg"
	cp "$QDIR/$id/env" "$QDIR/$id/env.tmp"
	echo half >"$QDIR/failed/gone/env"
	echo half >"$QDIR/failed/gone/env.tmp"
	echo sent >"$QDIR/removed/msg"
	touch -d '2 hours ago' "$QDIR/tmp/old" "$QDIR/$id/env.tmp" "$QDIR/failed/gone/env.tmp"
	mkdir "$QDIR/tmp/fresh"
	echo half >"$QDIR/tmp/fresh/msg"
	run "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 75	# the server is still down
	assert_output --partial "$id: deferred"
	assert [ ! -e "$QDIR/tmp/old" ]
	assert [ ! -e "$QDIR/$id/env.tmp" ]
	assert [ ! -e "$QDIR/failed/gone/env.tmp" ]
	assert [ ! -e "$QDIR/removed" ]
	assert [ -e "$QDIR/tmp/fresh/msg" ]
	# the entry itself is untouched
	assert [ -e "$QDIR/$id/env" ]
	assert [ -e "$QDIR/$id/msg" ]
	run "$OUTBOX" -C "$RC" -bp
	assert_output --partial "$id"
}

@test "SIGKILL at every step of a session: never lost, never torn" {
	# Kill outbox after N ms, for growing N, against the real server.  Once
	# it has connected, the message must be delivered or queued (it is made
	# durable before the first byte goes out); a flush delivers the rest.
	outbox_config "$RC"
	connected=()
	for ms in 0 2 5 10 20 40 80 160; do
		printf 'Subject: kill %s\nMessage-ID: <kill-%s@example.org>\n\nbody\n' "$ms" "$ms" >"$BATS_TEST_TMPDIR/k$ms"
		mta_log_mark
		timeout -s KILL "0.$(printf '%03d' "$ms")" "$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/k$ms" 2>/dev/null || true
		sleep 0.3
		if mta_log_since_mark | grep -q 'connect from'; then
			connected+=("$ms")
			n=$(grep -l "^Message-ID: <kill-$ms@example.org>" "$MTA_MAILDIR"/bob/new/* 2>/dev/null | wc -l)
			q=$(grep -l "^msgid: <kill-$ms@example.org>" "$QDIR"/*/env 2>/dev/null | wc -l)
			(( n + q > 0 )) || { echo "kill at $ms ms: neither delivered nor queued" >&2; false; }
		fi
	done
	(( ${#connected[@]} >= 3 ))
	# Every entry left is whole: its envelope reads and its message exists.
	for env in "$QDIR"/*/env; do
		[[ -e $env ]] || continue
		grep -q '^rcpt: bob@example.org$' "$env"
		[[ -s ${env%/env}/msg ]]
	done
	run "$OUTBOX" -C "$RC" -q
	assert_success
	sleep 1
	for ms in "${connected[@]}"; do
		n=$(grep -l "^Message-ID: <kill-$ms@example.org>" "$MTA_MAILDIR"/bob/new/* 2>/dev/null | wc -l)
		# A kill between the server's 250 and the removal may give a copy more.
		(( n == 1 || n == 2 )) || { echo "kill at $ms ms: $n copies" >&2; false; }
	done
	assert_equal "$(entries)" 0
}

@test "20 submissions while 3 flushes run: every message arrives exactly once" {
	# Ten messages wait in the queue (server down) ...
	down_config
	for i in $(seq 10); do
		printf 'Subject: old %s\nMessage-ID: <old-%s@example.org>\n\nx\n' "$i" "$i" |
			"$OUTBOX" -C "$RC" bob@example.org 2>/dev/null
	done
	assert_equal "$(entries)" 10
	# ... then, with the server up, 20 sends and 3 flushes race.
	outbox_config "$RC"
	pids=() flushes=0
	for i in $(seq 20); do
		printf 'Subject: new %s\nMessage-ID: <new-%s@example.org>\n\nx\n' "$i" "$i" |
			"$OUTBOX" -C "$RC" bob@example.org &
		pids+=($!)
		if (( i % 7 == 1 )); then "$OUTBOX" -C "$RC" -q & pids+=($!); flushes=$((flushes + 1)); fi
	done
	assert_equal "$flushes" 3
	for p in "${pids[@]}"; do wait "$p"; done
	"$OUTBOX" -C "$RC" -q
	maildir_wait bob 30 30
	sleep 1
	for id in $(seq 10 | sed 's/^/old-/') $(seq 20 | sed 's/^/new-/'); do
		n=$(grep -l "^Message-ID: <$id@example.org>" "$MTA_MAILDIR"/bob/new/* | wc -l)
		(( n == 1 )) || { echo "$id arrived $n times" >&2; false; }
	done
	assert_equal "$(entries)" 0
}

@test "backoff doubles from 5 minutes, with jitter below the schedule; expiry moves an entry to failed/" {
	down_config
	export OUTBOX_NOW=1800000000
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	env=$(ls "$QDIR"/*/env)
	# next_in FROM LOW HIGH: the next attempt is due LOW..HIGH s after FROM.
	next_in() {
		local n; n=$(sed -n 's/^next: //p' "$env")
		(( n >= $1 + $2 && n <= $1 + $3 )) || { echo "next: $n, not $1+[$2,$3]" >&2; false; }
	}
	next_in 1800000000 225 300
	OUTBOX_NOW=1800000400 run "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 75
	grep -q '^attempts: 2$' "$env"
	next_in 1800000400 450 600
	OUTBOX_NOW=1800001100 "$OUTBOX" -C "$RC" -q || true
	next_in 1800001100 900 1200
	# Six days later it has expired: failed/, shown by mailq, not deleted.
	OUTBOX_NOW=$((1800000000 + 6 * 86400)) run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69
	assert_regex "$stderr" 'failed: expired after 5 days in the queue; last error: '
	# What is left is the bounce to the sender, from the null sender.
	assert_regex "$stderr" ': a bounce is sent to <alice@example.org> \(queued as '
	assert_equal "$(entries)" 1
	bounce=$(ls "$QDIR"/*/env)
	grep -qx 'sender: ' "$bounce" || grep -qx 'sender:' "$bounce"
	grep -qx 'rcpt: alice@example.org' "$bounce"
	[[ -e $QDIR/failed/$(basename "$(dirname "$env")")/env ]]
	run "$OUTBOX" -C "$RC" -bp
	assert_line --regexp '^[^ ]+ \(failed\)  .*error="expired after 5 days'
	assert_line --regexp '^[^ ]+  .*  <> -> <alice@example.org>  attempts=1'
}

@test "queue_retry and queue_lifetime in seconds: retried 30 s later, given up after 90 s" {
	down_config 'queue_retry 30s' 'queue_lifetime 90s'
	export OUTBOX_NOW=1800000000
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	env=$(ls "$QDIR"/*/env)
	n=$(sed -n 's/^next: //p' "$env")
	(( n >= 1800000000 + 22 && n <= 1800000000 + 30 ))
	OUTBOX_NOW=1800000060 run "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 75
	assert_equal "$(entries)" 1
	OUTBOX_NOW=1800000100 run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69
	assert_regex "$stderr" 'expired after 90 seconds in the queue'
	assert_regex "$stderr" 'a bounce is sent to <alice@example.org>'
	assert_equal "$(entries)" 1	# the bounce, waiting for the server too
}

@test "queue_lifetime in days, not the default 5: kept after 1 day, given up after 2" {
	down_config 'queue_lifetime 2' 'queue_warn off'
	export OUTBOX_NOW=1800000000
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	OUTBOX_NOW=$((1800000000 + 86400)) run "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 75
	assert_equal "$(entries)" 1
	OUTBOX_NOW=$((1800000000 + 2 * 86400 + 60)) run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 69
	assert_regex "$stderr" 'expired after 2 days in the queue'
	# Only the bounce to the sender is left, waiting for the server too.
	assert_equal "$(entries)" 1
	grep -qx 'rcpt: alice@example.org' "$QDIR"/*/env
}

@test "the queue folder must stay 0700: checked at every open, not only when made" {
	down_config
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	assert_equal "$(entries)" 1
	chmod 750 "$QDIR"
	want="the queue $QDIR must belong to you and be private (mode 0700, now 0750); fix it with: chmod 700 $QDIR"
	outbox_config "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 78
	assert_regex "$stderr" "$(printf '%s' "$want" | sed 's/[][().*^$]/\\&/g')"
	run --separate-stderr "$OUTBOX" -C "$RC" -bp
	assert_equal "$status" 78
	# A send writes nothing there: it goes out without the queue, and says so.
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" 'must belong to you and be private .*; sending without the queue'
	maildir_wait bob 1
	assert_equal "$(entries)" 1
	chmod 700 "$QDIR"
	run "$OUTBOX" -C "$RC" -q
	assert_success
	maildir_wait bob 2
	assert_equal "$(entries)" 0
}

@test "mailq, -qI, -qR and --drop" {
	down_config
	local to
	for to in bob carol dave; do
		"$OUTBOX" -C "$RC" "$to@example.org" <"$MSG" 2>/dev/null
	done
	id_of() {	# the entry for recipient $1
		basename "$(dirname "$(grep -l "$1@example.org" "$QDIR"/*/env)")"
	}
	bob=$(id_of bob) carol=$(id_of carol) dave=$(id_of dave)
	run "$OUTBOX" -C "$RC" -bp
	assert_equal "${#lines[@]}" 3
	ln -sf "$OUTBOX" "$BATS_TEST_TMPDIR/mailq"
	run "$BATS_TEST_TMPDIR/mailq" -C "$RC"
	assert_line --regexp "^$bob  "
	assert_line --regexp "^$carol  "
	# -qI sends that entry and no other.
	outbox_config "$RC"
	run "$OUTBOX" -C "$RC" -qI "$bob"
	assert_success
	maildir_wait bob 1
	assert_equal "$(entries)" 2
	[[ ! -e $QDIR/$bob ]]
	run "$OUTBOX" --drop="$carol"
	assert_success
	assert_equal "$(entries)" 1
	[[ -e $QDIR/$dave ]]
	run --separate-stderr "$OUTBOX" --drop=no-such-id
	assert_equal "$status" 64
	assert_regex "$stderr" 'no queue entry no-such-id'
	run "$OUTBOX" -C "$RC" -qR other
	assert_equal "$(entries)" 1
	run "$OUTBOX" -C "$RC" -qR default
	assert_success
	assert_equal "$(entries)" 0
	maildir_wait catchall 1
	sleep 0.3
	assert_equal "$(maildir_count catchall)" 1
	assert_equal "$(maildir_count bob)" 1
	# An id that names no entry is an error, as for --drop.
	run --separate-stderr "$OUTBOX" -C "$RC" -qI 20991231T000000-1-00000000
	assert_equal "$status" 64
	assert_regex "$stderr" 'no queue entry 20991231T000000-1-00000000'

}

@test "queue always: returns at once, then the message arrives" {
	outbox_config "$RC" "queue always"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
	for i in $(seq 50); do (( $(entries) == 0 )) && break; sleep 0.1; done
	assert_equal "$(entries)" 0
}

@test "a successful send also delivers what is due for the account, on one connection" {
	down_config
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	export OUTBOX_NOW=$(( $(date +%s) + 600 ))
	outbox_config "$RC"
	mta_log_mark
	run "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: second\n\nx\n')
	assert_success
	maildir_wait bob 2
	assert_equal "$(entries)" 0
	mta_log_wait 'disconnect from'
	run mta_log_since_mark
	assert_output --regexp 'disconnect from .* mail=2 rcpt=2 bdat=2 quit=1'
}

@test "queue always: a permanent refusal after the caller was told 0 goes to failed/" {
	fault_start <<-'EOF2'
		send 220 hi
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		send 554 5.7.1 rejected as spam
		expect QUIT
		send 221 bye
	EOF2
	fault_config "queue always"
	run "$OUTBOX" -C "$RC" b@example.org <"$MSG"
	assert_success
	fault_wait
	for i in $(seq 50); do [[ -n $(ls "$QDIR"/failed/*/env 2>/dev/null) ]] && break; sleep 0.1; done
	run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp '\(failed\) .*error=".*554 5\.7\.1 rejected as spam"'
}

@test "all_or_nothing with the queue: nothing sent, every recipient kept" {
	fault_start <<-'EOF2'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT TO:<b@example.org>
		send 250 ok
		expect RCPT TO:<c@example.org>
		send 451 4.7.1 later
		expect QUIT
		send 221 bye
	EOF2
	fault_config "all_or_nothing on"
	run --separate-stderr "$OUTBOX" -C "$RC" b@example.org c@example.org <"$MSG"
	assert_success
	fault_wait
	refute grep -q '^DATA' "$FAULT_LOG"
	run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp '-> <b@example.org>, <c@example.org>  attempts=1'
}

@test "250, 451 and 550 at once: queued for the 451, exit for the 550" {
	fault_start <<-'EOF2'
		send 220 hi
		ehlo
		mail_ok
		expect RCPT TO:<b@example.org>
		send 250 ok
		expect RCPT TO:<c@example.org>
		send 451 4.7.1 later
		expect RCPT TO:<d@example.org>
		send 550 5.7.1 never
		data_ok
		data
		send 250 ok
		expect QUIT
		send 221 bye
	EOF2
	fault_config
	run --separate-stderr "$OUTBOX" -C "$RC" b@example.org c@example.org d@example.org <"$MSG"
	assert_equal "$status" 69
	assert_regex "$stderr" 'RCPT TO:<d@example.org>: 550 5.7.1 never'
	assert_regex "$stderr" 'queued as'
	run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp '-> <c@example.org>  attempts=1'
}

@test "-q15m sends only what is due; -q sends everything" {
	down_config
	export OUTBOX_NOW=1800000000
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	outbox_config "$RC"
	OUTBOX_NOW=1800000100 run "$OUTBOX" -C "$RC" -q15m
	assert_success
	assert_equal "$(entries)" 1
	OUTBOX_NOW=1800000400 run "$OUTBOX" -C "$RC" -q15m
	assert_success
	assert_equal "$(entries)" 0
	maildir_wait bob 1
}

@test "an entry whose account is gone does not block the others" {
	down_config
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	sed -i 's/^account default/account gone/' "$RC"
	printf 'account gone2\nhost localhost\n' >>"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -qR somethingelse
	assert_success
	outbox_config "$RC"
	sed -i 's/^account default/account other/' "$RC"
	"$OUTBOX" -C "$RC" -a other carol@example.org <"$MSG"
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_equal "$status" 75
	assert_regex "$stderr" "no account 'default'.*left in the queue"
	maildir_wait catchall 1
}

@test "an entry in the layout of outbox 0.1 (ID.msg and ID.env) is taken over and sent" {
	outbox_config "$RC"
	mkdir -p "$QDIR"
	chmod 700 "$XDG_STATE_HOME/outbox" "$QDIR"
	printf 'Subject: old layout\nMessage-ID: <legacy@example.org>\n\nfrom 0.1\n' | sed 's/$/\r/' >"$QDIR/20260101T000000-1-aabbccdd.msg"
	cat >"$QDIR/20260101T000000-1-aabbccdd.env" <<-EOF
		version: 1
		account: default
		sender: alice@example.org
		rcpt: bob@example.org
		msgid: <legacy@example.org>
		queued: $(date +%s)
		next: $(date +%s)
		attempts: 1
		8bit: 0
		size: $(stat -c %s "$QDIR/20260101T000000-1-aabbccdd.msg")
	EOF
	run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp '^20260101T000000-1-aabbccdd  .* <alice@example.org> -> <bob@example.org>  attempts=1'
	assert [ -e "$QDIR/20260101T000000-1-aabbccdd/env" ]
	assert [ ! -e "$QDIR/20260101T000000-1-aabbccdd.env" ]
	run "$OUTBOX" -C "$RC" -q
	assert_success
	maildir_wait bob 1
	run maildir_last bob
	assert_output --partial 'from 0.1'
	assert_equal "$(entries)" 0
}

@test "-qH holds an entry: no flush sends it until -qU; mailq marks held and delayed" {
	down_config
	export OUTBOX_NOW=1800000000
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>/dev/null
	id=$(basename "$(dirname "$(ls "$QDIR"/*/env)")")
	run --separate-stderr "$OUTBOX" -C "$RC" -qH "$id"
	assert_success
	assert_equal "$stderr" "outbox: $id is held: no more attempts until outbox -qU"
	outbox_config "$RC"
	run "$OUTBOX" -C "$RC" -q
	assert_success
	assert_equal "$(entries)" 1
	assert_equal "$(maildir_count bob)" 0
	OUTBOX_NOW=$((1800000000 + 5 * 3600)) run "$OUTBOX" -C "$RC" -bp
	assert_output --regexp "^$id \(held\) \(delayed\)  .*attempts=1  error="
	refute_output --partial 'next='
	run --separate-stderr "$OUTBOX" -C "$RC" -qU "$id"
	assert_success
	assert_equal "$stderr" "outbox: $id is released: it goes with the next flush"
	run "$OUTBOX" -C "$RC" -q
	assert_success
	maildir_wait bob 1
	assert_equal "$(entries)" 0
	run --separate-stderr "$OUTBOX" -C "$RC" -qH "$id"
	assert_equal "$status" 64
	assert_equal "$stderr" "outbox: no queue entry $id"
}
