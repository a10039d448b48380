#!/usr/bin/env bats
# Delivery through a real Postfix with Dovecot SASL: what arrives is what
# was piped in, on the STARTTLS port and the implicit-TLS port.

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
	outbox_config "$RC"
	maildir_clear bob
	maildir_clear catchall
}

# A message that needs nothing added: it must arrive byte for byte.
whole_message() {
	printf 'From: Alice <alice@example.org>\nTo: bob@example.org\n'
	printf 'Date: Sat, 28 Nov 2026 10:00:00 +0000\n'
	printf 'Message-ID: <%s@example.org>\nSubject: %s\n\n' "$1" "$2"
	printf 'Hello Bob,\n\nthis is line one.\n-- \nAlice\n'
}

@test "STARTTLS on the submission port: delivered byte for byte, exit 0" {
	whole_message m1 "over starttls" >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$stderr" ""
	maildir_wait bob 1
	diff <(maildir_last bob) "$BATS_TEST_TMPDIR/in"
}

@test "implicit TLS on port 465-style: delivered byte for byte" {
	whole_message m2 "over implicit tls" >"$BATS_TEST_TMPDIR/in"
	outbox_config "$RC" "port $SMTPS_PORT" "tls_starttls off"
	run "$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	maildir_wait bob 1
	diff <(maildir_last bob) "$BATS_TEST_TMPDIR/in"
}

@test "the issue's example: -t with a minimal message gets From, Date and Message-ID" {
	run "$OUTBOX" -C "$RC" -t < <(printf 'To: bob@example.org\nSubject: hi\n\nhello\n')
	assert_success
	maildir_wait bob 1
	mapfile -t L < <(maildir_last bob)
	assert_equal "${#L[@]}" 7
	assert_equal "${L[0]}" 'To: bob@example.org'
	assert_equal "${L[1]}" 'Subject: hi'
	assert_equal "${L[2]}" 'From: alice@example.org'
	assert_regex "${L[3]}" '^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} [A-Z][a-z]{2} 20[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}$'
	assert_regex "${L[4]}" '^Message-ID: <[0-9]{14}\.[0-9a-f]{24}@example\.org>$'
	assert_equal "${L[5]}" ''
	assert_equal "${L[6]}" 'hello'
}

@test "-F sets the full name of an added From; the envelope sender is -f" {
	run "$OUTBOX" -C "$RC" -F 'Cron Daemon' -f alice@example.org bob@example.org \
		< <(printf 'Subject: x\n\nbody\n')
	assert_success
	maildir_wait bob 1
	run maildir_last bob
	assert_line 'From: Cron Daemon <alice@example.org>'
	run maildir_raw bob
	assert_line --index 0 'Return-Path: <alice@example.org>'
}

@test "-t: To, Cc and Bcc all receive it; Bcc is gone from every copy" {
	printf 'To: bob@example.org\nCc: carol@example.org\nBcc: dave@example.org\nSubject: t\n\nhi\n' >"$BATS_TEST_TMPDIR/in"
	run "$OUTBOX" -C "$RC" -t <"$BATS_TEST_TMPDIR/in"
	assert_success
	maildir_wait bob 1
	maildir_wait catchall 2
	for box in bob catchall; do
		for f in "$MTA_MAILDIR/$box"/new/*; do
			run grep -ci '^bcc:' "$f"
			assert_output 0
		done
	done
	grep -qh '^X-Original-To: dave@example.org' "$MTA_MAILDIR"/catchall/new/*
	grep -qh '^X-Original-To: carol@example.org' "$MTA_MAILDIR"/catchall/new/*
}

@test "-t with Resent- headers sends to the Resent- recipients only" {
	printf 'Resent-To: carol@example.org\nTo: bob@example.org\nSubject: fwd\n\nhi\n' |
		"$OUTBOX" -C "$RC" -t
	maildir_wait catchall 1
	sleep 0.5
	assert_equal "$(maildir_count bob)" 0
}

@test "recipients as one argument, as cron passes MAILTO, with display names" {
	run "$OUTBOX" -C "$RC" 'bob@example.org, "Carol C." <carol@example.org>' \
		< <(printf 'Subject: list\n\nhi\n')
	assert_success
	maildir_wait bob 1
	maildir_wait catchall 1
}

@test "8-bit body arrives intact" {
	{
		printf 'From: alice@example.org\nTo: bob@example.org\nSubject: 8bit\n'
		printf 'Date: Sat, 28 Nov 2026 10:00:00 +0000\nMessage-ID: <8@x>\n'
		printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n'
		printf 'Content-Transfer-Encoding: 8bit\n\n'
		printf 'Grüße aus Köln — ✓\n\xff\xfe raw bytes\n'
	} >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_regex "$stderr" 'MAIL FROM:<alice@example.org> SIZE=[0-9]+ BODY=8BITMIME'
	maildir_wait bob 1
	cmp <(maildir_last bob) "$BATS_TEST_TMPDIR/in"
}

@test "a 20 MB message with 998-byte lines arrives intact" {
	whole_message big "big" >"$BATS_TEST_TMPDIR/in"
	/usr/bin/python3 -c '
import sys
line = b"x" * 997 + b"\n"
sys.stdout.buffer.write(line * 21000)' >>"$BATS_TEST_TMPDIR/in"
	run "$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	maildir_wait bob 1 30
	cmp <(maildir_last bob) "$BATS_TEST_TMPDIR/in"
}

@test "CRLF and bare CR line ends are normalised" {
	printf 'From: a@example.org\r\nTo: bob@example.org\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\rMessage-ID: <cr@x>\r\nSubject: ends\r\n\r\none\rtwo\r\nthree\n' |
		"$OUTBOX" -C "$RC" bob@example.org
	maildir_wait bob 1
	expected=$'From: a@example.org\nTo: bob@example.org\nDate: Sat, 28 Nov 2026 10:00:00 +0000\nMessage-ID: <cr@x>\nSubject: ends\n\none\ntwo\nthree'
	assert_equal "$(maildir_last bob)" "$expected"
}

@test "without -i a lone dot with more input after it is content: everything arrives" {
	printf 'From: a@example.org\nDate: Sat, 28 Nov 2026 10:00:00 +0000\nSubject: dot\nMessage-ID: <d1@x>\n\nbefore\n.\nafter\n' >"$BATS_TEST_TMPDIR/in"
	run "$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	maildir_wait bob 1
	diff <(maildir_last bob) "$BATS_TEST_TMPDIR/in"
	maildir_clear bob
	# Through a pipe, and with the rest in a later write.
	{ printf 'From: a@example.org\nDate: Sat, 28 Nov 2026 10:00:00 +0000\nSubject: dot\nMessage-ID: <d3@x>\n\nbefore\n.\r\n'; sleep 0.3; printf 'after\n'; } |
		"$OUTBOX" -C "$RC" bob@example.org
	maildir_wait bob 1
	assert_equal "$(maildir_last bob)" $'From: a@example.org\nDate: Sat, 28 Nov 2026 10:00:00 +0000\nSubject: dot\nMessage-ID: <d3@x>\n\nbefore\n.\nafter'
	maildir_clear bob
	printf 'From: a@example.org\nDate: Sat, 28 Nov 2026 10:00:00 +0000\nSubject: dot\nMessage-ID: <d2@x>\n\nbefore\n.\n..\n.after\nafter\n' |
		"$OUTBOX" -i -C "$RC" bob@example.org
	maildir_wait bob 1
	run maildir_last bob
	assert_output --partial $'\n\nbefore\n.\n..\n.after\nafter'
}

@test "without -i a lone dot as the last line ends the message and is not sent" {
	printf 'From: a@example.org\nDate: Sat, 28 Nov 2026 10:00:00 +0000\nSubject: dot\nMessage-ID: <d4@x>\n\nbefore\n.\n' | "$OUTBOX" -C "$RC" bob@example.org
	maildir_wait bob 1
	assert_equal "$(maildir_last bob)" $'From: a@example.org\nDate: Sat, 28 Nov 2026 10:00:00 +0000\nSubject: dot\nMessage-ID: <d4@x>\n\nbefore'
	maildir_clear bob
	"$OUTBOX" -C "$RC" bob@example.org <<-EOF
	From: a@example.org
	Date: Sat, 28 Nov 2026 10:00:00 +0000
	Subject: here-document
	Message-ID: <d5@x>

	typed
	.
	EOF
	maildir_wait bob 1
	assert_equal "$(maildir_last bob)" $'From: a@example.org\nDate: Sat, 28 Nov 2026 10:00:00 +0000\nSubject: here-document\nMessage-ID: <d5@x>\n\ntyped'
}

@test "a caller that writes the dot and keeps the pipe open is not waited for" {
	# The writer holds the pipe for 30 s; outbox must be done long before.
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	( printf 'From: a@example.org\nDate: Sat, 28 Nov 2026 10:00:00 +0000\nSubject: dot\nMessage-ID: <d6@x>\n\nbefore\n.\n'; exec sleep 30 ) >"$BATS_TEST_TMPDIR/fifo" &
	writer=$!
	start=$SECONDS
	run timeout 10 "$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/fifo"
	kill "$writer"
	assert_success
	(( SECONDS - start < 5 ))
	maildir_wait bob 1
	assert_equal "$(maildir_last bob)" $'From: a@example.org\nDate: Sat, 28 Nov 2026 10:00:00 +0000\nSubject: dot\nMessage-ID: <d6@x>\n\nbefore'
}

@test "-oi is -i" {
	printf 'Subject: dot\n\nbefore\n.\nafter\n' | "$OUTBOX" -oi -C "$RC" bob@example.org
	maildir_wait bob 1
	run maildir_last bob
	assert_line 'after'
}

@test "a leading mbox From_ line is dropped" {
	printf 'From alice@example.org Sat Nov 28 10:00:00 2026\nSubject: mbox\n\nhi\n' |
		"$OUTBOX" -C "$RC" bob@example.org
	maildir_wait bob 1
	run maildir_last bob
	assert_line --index 0 'Subject: mbox'
}

@test "a message without a header section gets its separator" {
	printf 'just a line of text\nand another\n' | "$OUTBOX" -C "$RC" bob@example.org
	maildir_wait bob 1
	run maildir_last bob
	assert_regex "$output" $'^From: alice@example.org\nDate: [^\n]+\nMessage-ID: [^\n]+\n\njust a line of text\nand another$'
}

@test "larger than the server's SIZE: 69, nothing delivered" {
	outbox_config "$RC" "port $SMALL_PORT"
	{ printf 'Subject: big\n\n'; head -c 20000 /dev/zero | tr '\0' 'z' | fold -w 76; } >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_equal "$status" 69
	assert_regex "$stderr" "^outbox: account default: localhost:$SMALL_PORT: the message is [0-9]+ bytes; the server accepts at most 10000$"
}

@test "DSN: NOTIFY and RET reach the server and it accepts them" {
	run --separate-stderr "$OUTBOX" -v -N success,failure -R hdrs -V env123 -C "$RC" bob@example.org \
		< <(printf 'Subject: dsn\n\nhi\n')
	assert_success
	assert_regex "$stderr" 'RET=HDRS ENVID=env123'
	assert_regex "$stderr" 'RCPT TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE'
	maildir_wait bob 1
}

@test "a non-ASCII address goes with SMTPUTF8" {
	run --separate-stderr "$OUTBOX" -v -C "$RC" 'jörg@example.org' < <(printf 'Subject: utf8\n\nhi\n')
	assert_success
	assert_regex "$stderr" 'SMTPUTF8'
	maildir_wait catchall 1
}

@test "PIPELINING and CHUNKING: the envelope and the body go in one flight" {
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org carol@example.org \
		< <(printf 'Subject: flight\n\nhi\n')
	assert_success
	# Sent: MAIL, RCPT, RCPT, BDAT with the data, QUIT; then the replies.
	run grep -E '^(-->|<--) ' <<<"$stderr"
	assert_regex "$output" $'--> MAIL FROM:<alice@example.org> SIZE=[0-9]+\n--> RCPT TO:<bob@example.org>\n--> RCPT TO:<carol@example.org>\n--> BDAT [0-9]+ LAST\n--> \\[message data\\]\n--> QUIT\n<-- 250'
}

@test "a 4xx-free transcript hides the AUTH data" {
	run --separate-stderr "$OUTBOX" -v -C "$RC" --auth=plain bob@example.org < <(printf 'Subject: x\n\nhi\n')
	assert_success
	assert_regex "$stderr" '--> AUTH PLAIN \[hidden\]'
	[[ $stderr != *"wonder land-42"* ]]
	[[ $stderr != *"$(printf '\0alice\0wonder land-42' | base64)"* ]]
}

@test "the log line: account, TLS, mechanism, recipients' outcome, ids, duration" {
	outbox_config "$RC" "logfile $BATS_TEST_TMPDIR/log"
	run "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: log\nMessage-ID: <log1@example.org>\n\nhi\n')
	assert_success
	run cat "$BATS_TEST_TMPDIR/log"
	assert_line --regexp "^[A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} account=default host=localhost port=$SUBMISSION_PORT tls=TLS1\.3 cipher=\"?\(TLS1\.3\)[^ ]* auth=SCRAM-SHA-256 from=<alice@example\.org> rcpts=\"<bob@example\.org>=250\" size=[0-9]+ msgid=<log1@example\.org> reply=\"250 2\.0\.0 Ok: [0-9 a-z]*queued as [A-Z0-9]+\" serverid=[A-Z0-9]+ duration=[0-9]+\.[0-9]{3}s result=sent exitcode=0$"
	# A queued one says so, with the reason, and never a secret.
	outbox_config "$RC" "logfile $BATS_TEST_TMPDIR/log" "port 9"
	run "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: log2\n\nhi\n')
	assert_success
	run tail -1 "$BATS_TEST_TMPDIR/log"
	assert_output --regexp 'result=queued exitcode=0 queueid=[^ ]+ error="cannot connect to localhost:9'
	run cat "$BATS_TEST_TMPDIR/log"
	refute_output --partial 'wonder land-42'
}

@test "round trips: 7 on STARTTLS and 5 on implicit TLS with AUTH PLAIN pipelined" {
	run --separate-stderr "$OUTBOX" -v --auth=plain -C "$RC" bob@example.org < <(printf 'Subject: rt\n\nx\n')
	assert_success
	assert_regex "$stderr" $'--- 7 round trips waited for\n'
	outbox_config "$RC" "port $SMTPS_PORT" "tls_starttls off"
	run --separate-stderr "$OUTBOX" -v --auth=plain -C "$RC" bob@example.org < <(printf 'Subject: rt\n\nx\n')
	assert_success
	assert_regex "$stderr" $'--- 5 round trips waited for\n'
	maildir_wait bob 2
}

@test "round trips with auth on (SCRAM-SHA-256 here): 10 and 8, SCRAM's three exchanges more" {
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org < <(printf 'Subject: rt\n\nx\n')
	assert_success
	assert_regex "$stderr" '--> AUTH SCRAM-SHA-256 \[hidden\]'
	assert_regex "$stderr" $'--- 10 round trips waited for\n'
	outbox_config "$RC" "port $SMTPS_PORT" "tls_starttls off"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org < <(printf 'Subject: rt\n\nx\n')
	assert_success
	assert_regex "$stderr" $'--- 8 round trips waited for\n'
	maildir_wait bob 2
}

@test "an msmtp user's ~/.msmtprc is used as it is, with no -C" {
	export HOME=$BATS_TEST_TMPDIR/home XDG_CONFIG_HOME=
	mkdir -p "$HOME"
	cp "$RC" "$HOME/.msmtprc"
	run "$OUTBOX" bob@example.org < <(printf 'Subject: from msmtprc\n\nhi\n')
	assert_success
	maildir_wait bob 1
	run maildir_last bob
	assert_line 'Subject: from msmtprc'
}

# ---------------------------------------------------------------- long lines
# A line over 998 bytes is made to fit, never refused: the body becomes
# quoted-printable when that keeps its meaning (no MIME, or one text part in
# 7bit or 8bit), else the line is folded as Postfix folds it. What a mail
# reader decodes (Python's email package) is what was piped in.

# no_long_lines FILE: every line of the arrived file within 998 bytes
no_long_lines() {
	run awk 'length($0) > 998 { print FILENAME ": line " NR ": " length($0) }' "$1"
	assert_output ''
}

@test "a 100 KB line without MIME: sent as quoted-printable, decoded it is the input" {
	outbox_config "$RC" "logfile $BATS_TEST_TMPDIR/log"
	python3 -c '
import json, sys
rec = {"event": "backup", "files": ["/srv/data/file-%05d.bin" % i for i in range(4000)]}
line = json.dumps(rec)
assert len(line) > 100000
sys.stdout.write("a=b and trailing blanks  \n" + line + "\n=41 not an escape\n\tend\n")' >"$BATS_TEST_TMPDIR/body"
	{ printf 'Subject: json log\n\n'; cat "$BATS_TEST_TMPDIR/body"; } >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_regex "$stderr" 'outbox: line 4 is longer than 998 bytes: the body is sent as quoted-printable'
	maildir_wait bob 1
	f=$(maildir_newest bob)
	no_long_lines "$f"
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" Content-Transfer-Encoding)" 'quoted-printable'
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" Content-Type)" 'text/plain; charset=us-ascii'
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" MIME-Version)" '1.0'
	cmp <("$TESTBED_LIB/decode.py" "$f") "$BATS_TEST_TMPDIR/body"
	run cat "$BATS_TEST_TMPDIR/log"
	assert_output --regexp ' reshaped=quoted-printable .*result=sent exitcode=0$'
}

@test "one text part in 8bit with a long line late in the body: charset kept, CTE replaced" {
	python3 -c '
import sys
out = sys.stdout.buffer
out.write(b"Subject: latin\nMIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\nX-After: kept\n\n")
for i in range(3000):
    out.write(b"short line %d \xe9t\xe9 = x\n" % i)
out.write(b"\xe9" * 5000 + b"\n.\nlast\n")' >"$BATS_TEST_TMPDIR/in"
	sed '1,/^$/d' "$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/body"
	run "$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	maildir_wait bob 1
	f=$(maildir_newest bob)
	no_long_lines "$f"
	run grep -c -i '^Content-Transfer-Encoding:' "$f"
	assert_output 1
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" Content-Transfer-Encoding)" 'quoted-printable'
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" Content-Type)" 'text/plain; charset=iso-8859-1'
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" X-After)" 'kept'
	run grep -c -i '^MIME-Version:' "$f"
	assert_output 1
	cmp <("$TESTBED_LIB/decode.py" "$f") "$BATS_TEST_TMPDIR/body"
}

@test "no MIME, 8-bit text and a long line: text/plain; charset=utf-8" {
	{ printf 'Subject: utf8\n\nGrüße\n'; printf 'é%.0s' {1..700}; printf '\n'; } >"$BATS_TEST_TMPDIR/in"
	sed '1,/^$/d' "$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/body"
	run "$OUTBOX" -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	maildir_wait bob 1
	f=$(maildir_newest bob)
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" Content-Type)" 'text/plain; charset=utf-8'
	cmp <("$TESTBED_LIB/decode.py" "$f") "$BATS_TEST_TMPDIR/body"
}

@test "a long line in a multipart message: folded as Postfix does, the rest byte for byte" {
	outbox_config "$RC" "logfile $BATS_TEST_TMPDIR/log"
	long=$(head -c 2500 /dev/zero | tr '\0' 'Q')
	{
		printf 'Subject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n'
		printf -- '--b\nContent-Type: text/plain\n\nhello\n%s\n--b--\n' "$long"
	} >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_regex "$stderr" 'outbox: line 9 is longer than 998 bytes and the message is MIME: folded'
	maildir_wait bob 1
	f=$(maildir_newest bob)
	no_long_lines "$f"
	# CRLF SPACE after 998 bytes, then after each 997 more
	expect=$(printf '%s\n %s\n %s' "${long:0:998}" "${long:998:997}" "${long:1995}")
	run grep -A2 '^QQQ' "$f"
	assert_output "$expect"
	run cat "$BATS_TEST_TMPDIR/log"
	assert_output --regexp ' reshaped=folded '
}

@test "a header line over 998 bytes: folded at white space, the value unchanged" {
	subj=$(for i in $(seq 1 400); do printf 'word%d ' "$i"; done)
	subj=${subj% }
	to=$(for i in $(seq 1 60); do printf 'user%d@example.net, ' "$i"; done)
	to="${to}bob@example.org"
	printf 'Subject: %s\nTo: %s\n\nbody\n' "$subj" "$to" >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$OUTBOX" -v -C "$RC" -t <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_regex "$stderr" 'outbox: header line 1 is longer than 998 bytes: folded at white space'
	maildir_wait bob 1
	f=$(maildir_newest bob)
	no_long_lines "$f"
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" Subject)" "$subj"
	assert_equal "$("$TESTBED_LIB/decode.py" "$f" To)" "$to"
	assert_equal "$("$TESTBED_LIB/decode.py" "$f")" body
}

# ---------------------------------------------------------------- -B, -O, -L

@test "-B 8BITMIME and -O smtputf8 ask for them in MAIL FROM; -B 7BIT says BODY=7BIT" {
	run --separate-stderr "$OUTBOX" -v -C "$RC" -B 8BITMIME -O smtputf8 bob@example.org < <(printf 'Subject: ascii\n\nhi\n')
	assert_success
	assert_regex "$stderr" '--> MAIL FROM:<alice@example\.org> SIZE=[0-9]+ BODY=8BITMIME SMTPUTF8'
	run --separate-stderr "$OUTBOX" -v -C "$RC" -B7BIT -OSmtpUtf8=false bob@example.org < <(printf 'Subject: ascii\n\nhi\n')
	assert_success
	assert_regex "$stderr" $'--> MAIL FROM:<alice@example\\.org> SIZE=[0-9]+ BODY=7BIT\n'
	# Without them, as before: nothing for a 7-bit ASCII message.
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org < <(printf 'Subject: ascii\n\nhi\n')
	assert_regex "$stderr" $'--> MAIL FROM:<alice@example\\.org> SIZE=[0-9]+\n'
	maildir_wait bob 3
}

@test "-L LABEL tags the log line; a queued message keeps -L, -B and -O for its retry" {
	outbox_config "$RC" "logfile $BATS_TEST_TMPDIR/log"
	run "$OUTBOX" -C "$RC" -L cron-backup bob@example.org < <(printf 'Subject: label\n\nhi\n')
	assert_success
	run cat "$BATS_TEST_TMPDIR/log"
	assert_output --regexp '^[A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} label=cron-backup account=default '
	outbox_config "$RC" "logfile $BATS_TEST_TMPDIR/log" "port 9"
	run "$OUTBOX" -C "$RC" -L later -B 8BITMIME -O smtputf8 bob@example.org < <(printf 'Subject: later\n\nhi\n')
	assert_success
	outbox_config "$RC" "logfile $BATS_TEST_TMPDIR/log"
	run --separate-stderr "$OUTBOX" -C "$RC" -q -v
	assert_success
	assert_regex "$stderr" '--> MAIL FROM:<alice@example\.org> SIZE=[0-9]+ BODY=8BITMIME SMTPUTF8'
	run tail -1 "$BATS_TEST_TMPDIR/log"
	assert_output --regexp ' label=later account=default .* result=sent '
	maildir_wait bob 2
}
