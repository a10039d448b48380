#!/usr/bin/env bats
# Self-test of tests/lib/faultsmtp.py (the hostile SMTP server) and its bats helpers.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'lib/faultsmtp'

setup_file() {
	fault_make_cert
}

setup() {
	fault_make_cert # re-exports FAULT_CERT/FAULT_KEY (the file was made in setup_file)
}

teardown() {
	fault_stop
}

# A tiny scripted SMTP client.  Ops, in order:
#   w:TEXT   write TEXT (Python escapes: \r \n \x00 ...) in one send
#   reply    read one (multi-line) reply and print its lines
#   chunk    print what one recv() returns, escaped
#   tls      start client-side TLS (no verification)
#   eof      read until the server closes, print "EOF:" + the bytes escaped
client() {
	/usr/bin/python3 - "$FAULT_PORT" "$@" <<'PY'
import socket, ssl, sys
esc = lambda b: b.decode("latin-1").encode("unicode_escape").decode()
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
buf = b""
def recv():
    global buf
    data = sock.recv(65536)
    buf += data
    return data
for op in sys.argv[2:]:
    if op.startswith("w:"):
        sock.sendall(op[2:].encode("latin-1").decode("unicode_escape").encode("latin-1"))
    elif op == "reply":
        while True:
            while b"\r\n" not in buf:
                if not recv(): sys.exit("client: EOF inside a reply")
            line, buf = buf.split(b"\r\n", 1)
            print(line.decode())
            if line[3:4] != b"-": break
    elif op == "chunk":
        print("CHUNK:" + esc(buf or recv())); buf = b""
    elif op == "tls":
        if buf: print("client: plaintext left before TLS: " + esc(buf))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
        print("TLS:" + sock.version())
    elif op == "eof":
        while recv(): pass
        print("EOF:" + esc(buf)); buf = b""
PY
}

@test "simple session: greeting, EHLO caps, AUTH PLAIN, DATA, QUIT; log is byte-exact" {
	fault_start <<-'EOF'
		# a comment, then a blank line

		send 220 faultsmtp ESMTP
		ehlo PIPELINING SIZE=1000 AUTH=PLAIN_LOGIN 8BITMIME
		auth_plain alice s3cr\x20t
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 2.0.0 queued as X
		loop_until_quit
	EOF
	run client reply 'w:EHLO me\r\n' reply 'w:AUTH PLAIN AGFsaWNlAHMzY3IgdA==\r\n' reply \
		'w:MAIL FROM:<a@x>\r\n' reply 'w:RCPT TO:<b@y>\r\n' reply 'w:DATA\r\n' reply \
		'w:Subject: hi\r\n\r\nbody\r\n.\r\n' reply 'w:QUIT\r\n' reply eof
	assert_success
	assert_output - <<-'EOF'
		220 faultsmtp ESMTP
		250-faultsmtp.test
		250-PIPELINING
		250-SIZE 1000
		250-AUTH PLAIN LOGIN
		250 8BITMIME
		235 2.7.0 Authentication successful
		250 2.1.0 Ok
		250 2.1.5 Ok
		354 End data with <CR><LF>.<CR><LF>
		250 2.0.0 queued as X
		221 2.0.0 Bye
		EOF:
	EOF
	fault_wait
	printf 'EHLO me\r\nAUTH PLAIN AGFsaWNlAHMzY3IgdA==\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n' >"$BATS_TEST_TMPDIR/want"
	cmp "$BATS_TEST_TMPDIR/want" "$FAULT_LOG"
	run cat "$FAULT_TRACE"
	assert_line --index 0 --regexp '^connect 1 from 127\.0\.0\.1:'
	assert_line 'S: 220 faultsmtp ESMTP'
	assert_line 'C: MAIL FROM:<a@x>'
	assert_line 'C: .'
	assert_line 'EOF'
	assert_line --index -1 'close'
}

@test "pipelined commands in one write are all read, in order, nothing lost" {
	fault_start <<-'EOF'
		send 220 hi
		ehlo PIPELINING
		mail_ok
		rcpt_ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		expect QUIT
		send 221 bye
	EOF
	run client reply 'w:EHLO me\r\n' reply \
		'w:MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n' chunk \
		'w:x\r\n..y\r\n.\r\nQUIT\r\n' reply reply eof
	assert_success
	# the four replies were queued and left in one write
	assert_line 'CHUNK:250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n'
	assert_output --partial $'250 ok\n221 bye\nEOF:'
	fault_wait
	printf 'EHLO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\nx\r\n..y\r\n.\r\nQUIT\r\n' >"$BATS_TEST_TMPDIR/want"
	cmp "$BATS_TEST_TMPDIR/want" "$FAULT_LOG"
}

@test "starttls: handshake, EHLO again, log holds the decrypted bytes" {
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" <<-'EOF'
		send 220 hi
		ehlo STARTTLS
		expect STARTTLS$
		send 220 2.0.0 go ahead
		starttls
		ehlo AUTH=PLAIN
		loop_until_quit
	EOF
	run client reply 'w:EHLO me\r\n' reply 'w:STARTTLS\r\n' reply tls 'w:EHLO again\r\n' reply \
		'w:NOOP\r\nQUIT\r\n' reply reply eof
	assert_success
	assert_line --regexp '^TLS:TLSv1\.[23]$'
	assert_line '250 AUTH PLAIN'
	refute_line --partial 'plaintext left'
	fault_wait
	printf 'EHLO me\r\nSTARTTLS\r\nEHLO again\r\nNOOP\r\nQUIT\r\n' >"$BATS_TEST_TMPDIR/want"
	cmp "$BATS_TEST_TMPDIR/want" "$FAULT_LOG"
	run cat "$FAULT_TRACE"
	assert_line --regexp '^TLS start \(TLSv1\.[23], '
	refute_line --partial 'plaintext after STARTTLS'
}

@test "starttls works with openssl s_client -starttls smtp" {
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" <<-'EOF'
		send 220 hi
		ehlo PIPELINING STARTTLS
		expect STARTTLS
		send 220 go ahead
		starttls
		loop_until_quit
	EOF
	run bash -c 'printf "NOOP\r\nQUIT\r\n" |
		timeout 10 openssl s_client -quiet -starttls smtp -connect "127.0.0.1:$FAULT_PORT" 2>/dev/null'
	assert_success
	assert_output --partial '221 2.0.0 Bye'
	fault_wait
	run cat "$FAULT_LOG"
	assert_output --regexp $'^EHLO [^\r]+\r\nSTARTTLS\r\nNOOP\r\nQUIT\r$'
}

@test "plaintext pipelined after STARTTLS is reported in the trace and dropped" {
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" <<-'EOF'
		send 220 hi
		expect STARTTLS
		send 220 go ahead
		starttls
		loop_until_quit
	EOF
	run client reply 'w:STARTTLS\r\nMAIL FROM:<evil@x>\r\n' reply tls 'w:QUIT\r\n' reply eof
	assert_success
	assert_output --partial '221 2.0.0 Bye'
	fault_wait
	run grep 'plaintext after STARTTLS' "$FAULT_TRACE"
	assert_output 'plaintext after STARTTLS: 20 bytes: MAIL FROM:<evil@x>\r\n'
	grep -q 'warning: plaintext after STARTTLS: 20 bytes' "$FAULT_ERR"
	refute grep -q '^C: MAIL' "$FAULT_TRACE"
}

@test "starttls_inject puts extra text in the same segment as the 220" {
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" <<-'EOF'
		send 220 hi
		expect STARTTLS
		send 220 go ahead
		starttls_inject 250 injected
		loop_until_quit
	EOF
	run client reply 'w:STARTTLS\r\n' chunk tls 'w:QUIT\r\n' reply eof
	assert_success
	assert_line 'CHUNK:220 go ahead\r\n250 injected\r\n'
	assert_line '221 2.0.0 Bye'
	fault_wait
	run cat "$FAULT_TRACE"
	assert_line 'S: 250 injected'
}

@test "sendraw sends exactly the decoded bytes, with no CRLF added" {
	fault_start <<-'EOF'
		sendraw 220-a\r\n220 b\nc\0\x7f\\
		flush
		sleep 0.1
		sendraw tail
		close
	EOF
	run client eof
	assert_success
	assert_output 'EOF:220-a\r\n220 b\nc\x00\x7f\\tail'
	fault_wait
	run cat "$FAULT_TRACE"
	# shellcheck disable=SC1003 # the trailing \\ is the escaped backslash
	assert_line 'S: 220-a\r\n220 b\nc\x00\x7f\\'
}

@test "trickle, bdat and two connections in a row" {
	fault_start - --connections 2 <<-'EOF'
		trickle 0.01 220 slow
		ehlo CHUNKING
		mail_ok
		rcpt_ok
		bdat
		send 250 got it
		loop_until_quit
	EOF
	for _ in 1 2; do
		run client reply 'w:EHLO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 9\r\nab\r\n.\r\ncd' \
			reply reply reply reply 'w:BDAT 3 LAST\r\nabcQUIT\r\n' reply reply eof
		assert_success
		assert_output --partial $'250 got it\n250 2.0.0 Ok\n221 2.0.0 Bye'
	done
	fault_wait
	run grep -c '^connect ' "$FAULT_TRACE"
	assert_output 2
	run grep -c 'C: \[9 octets of BDAT chunk\]' "$FAULT_TRACE"
	assert_output 2
}

@test "a failed expect exits 1, says why, and tells the client with a 421" {
	fault_start <<-'EOF'
		send 220 hi
		expect EHLO
		send 250 never
	EOF
	run client reply 'w:HELO me\r\n' reply eof
	assert_success
	assert_line --regexp "^421 4\.3\.0 faultsmtp: connection 1: .*:2: expect EHLO: expected /EHLO/, got 'HELO me'$"
	run fault_wait
	assert_failure 1
	assert_output --partial "FAIL connection 1:"
	assert_output --partial "expected /EHLO/, got 'HELO me'"
}

@test "wrong AUTH PLAIN credentials get 535 and fail the script" {
	fault_start <<-'EOF'
		send 220 hi
		auth_plain alice right
	EOF
	# no initial response: the server sends "334 " and reads the credentials
	run client reply 'w:AUTH PLAIN\r\n' reply 'w:AGFsaWNlAHdyb25n\r\n' reply eof
	assert_success
	assert_line '334 '
	assert_line '535 5.7.8 Authentication credentials invalid'
	run fault_wait
	assert_failure 1
	assert_output --partial "AUTH PLAIN credentials"
}

@test "hard timeout: a silent client, and no client at all, end the server" {
	fault_start - --max-seconds 1 <<-'EOF'
		send 220 hi
		expect EHLO
	EOF
	SECONDS=0
	run client reply eof
	assert_success
	assert_line 'EOF:'
	run fault_wait 10
	assert_failure 124
	assert_output --partial 'hard timeout after 1.0s in connection 1:'
	((SECONDS < 5))
	grep -q '^timeout in connection 1' "$FAULT_TRACE"

	fault_start - --max-seconds 0.5 <<<'send 220 nobody listens'
	run fault_wait 10
	assert_failure 124
	assert_output --partial 'hard timeout after 0.5s in accept'
}

@test "a bad script is rejected before the port is published" {
	run fault_start 'sned 220 typo'
	assert_failure
	assert_output --partial "unknown step 'sned'"
	run fault_start 'starttls'
	assert_failure
	assert_output --partial 'TLS needs both --cert and --key'
}

@test "implicit TLS" {
	fault_start - --implicit-tls --cert "$FAULT_CERT" --key "$FAULT_KEY" <<-'EOF'
		send 220 tls from the start
		loop_until_quit
	EOF
	run client tls reply 'w:QUIT\r\n' reply eof
	assert_success
	assert_line '220 tls from the start'
	fault_wait
}
