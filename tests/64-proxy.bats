#!/usr/bin/env bats
# proxy_host/proxy_port: SMTP through a real SOCKS5 server (microsocks) to
# the test bed's Postfix, with the mail server's name resolved by the proxy
# and TLS checked against the mail server, as msmtp's proxy_host does.

load 'lib/testbed'
load 'lib/faultsmtp'
bats_require_minimum_version 1.5.0

setup_file() {
	mta_setup_file
	if ! command -v microsocks >/dev/null; then
		testbed_unavailable "microsocks not installed (run tests/lib/deps.sh)"
		return
	fi
	[[ -z ${TESTBED_SKIP_REASON:-} ]] || return 0
	# One open proxy, one that wants a user name and password.
	"$TESTBED_LIB/socks.sh" start "$BATS_FILE_TMPDIR/open"
	"$TESTBED_LIB/socks.sh" start "$BATS_FILE_TMPDIR/auth" "" -u proxyuser -P proxypass
	# shellcheck disable=SC1091
	AUTH_PROXY_PORT=$(. "$BATS_FILE_TMPDIR/auth/socks.env" && echo "$SOCKS_PORT")
	export AUTH_PROXY_PORT
}

teardown_file() {
	"$TESTBED_LIB/socks.sh" stop "$BATS_FILE_TMPDIR/open"
	"$TESTBED_LIB/socks.sh" stop "$BATS_FILE_TMPDIR/auth"
	mta_teardown_file
}

setup() {
	# shellcheck disable=SC1091
	. "$BATS_FILE_TMPDIR/open/socks.env"
	RC=$BATS_TEST_TMPDIR/rc
	outbox_config "$RC" "proxy_host 127.0.0.1" "proxy_port $SOCKS_PORT"
	maildir_clear bob
	: >"$SOCKS_LOG"
}

teardown() {
	fault_stop
	local pid
	for pid in ${TOK_PID:-} ${FAKE_PID:-}; do
		kill "$pid" 2>/dev/null || true
	done
	if [[ -n ${LATE_PROXY:-} ]]; then
		"$TESTBED_LIB/socks.sh" stop "$LATE_PROXY"
	fi
}

whole_message() {
	printf 'From: Alice <alice@example.org>\nTo: bob@example.org\n'
	printf 'Date: Mon, 07 Dec 2026 10:00:00 +0000\n'
	printf 'Message-ID: <%s@example.org>\nSubject: %s\n\n' "$1" "$2"
	printf 'Hello Bob,\n\nthrough the proxy.\n.\n-- \nAlice\n'
}

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

@test "STARTTLS through the SOCKS5 proxy: delivered byte for byte; the proxy resolved the name" {
	whole_message p1 "proxied starttls" >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$OUTBOX" -C "$RC" -i -v bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_regex "$stderr" "--- through the SOCKS5 proxy 127\.0\.0\.1:$SOCKS_PORT"
	assert_regex "$stderr" '--> STARTTLS'
	maildir_wait bob 1
	diff <(maildir_last bob) "$BATS_TEST_TMPDIR/in"
	# microsocks logs the name as the client sent it: the proxy, not
	# outbox, looked up "localhost".
	run cat "$SOCKS_LOG"
	assert_line --regexp "^client\[[0-9]+\] 127\.0\.0\.1: connected to localhost:$SUBMISSION_PORT\$"
	assert_equal "${#lines[@]}" 1
}

@test "implicit TLS through the SOCKS5 proxy: delivered byte for byte" {
	whole_message p2 "proxied implicit tls" >"$BATS_TEST_TMPDIR/in"
	outbox_config "$RC" "port $SMTPS_PORT" "tls_starttls off" "proxy_host 127.0.0.1" "proxy_port $SOCKS_PORT"
	run --separate-stderr "$OUTBOX" -C "$RC" -i bob@example.org <"$BATS_TEST_TMPDIR/in"
	assert_success
	maildir_wait bob 1
	diff <(maildir_last bob) "$BATS_TEST_TMPDIR/in"
	run cat "$SOCKS_LOG"
	assert_line --regexp "connected to localhost:$SMTPS_PORT\$"
}

@test "--proxy-host and --proxy-port on the command line, the proxy named localhost (Happy Eyeballs)" {
	outbox_config "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" --proxy-host=localhost --proxy-port="$SOCKS_PORT" \
		bob@example.org < <(printf 'Subject: cmdline proxy\n\nhi\n')
	assert_success
	maildir_wait bob 1
	run grep -c '^Subject: cmdline proxy$' "$(maildir_newest bob)"
	assert_output 1
	run cat "$SOCKS_LOG"
	assert_line --regexp "connected to localhost:$SUBMISSION_PORT\$"
}

@test "the certificate is checked against the mail server's name, not the proxy's" {
	outbox_config "$RC" "port $WRONGNAME_PORT" "tls_starttls off" "proxy_host 127.0.0.1" \
		"proxy_port $SOCKS_PORT" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 76
	assert_regex "$stderr" 'TLS certificate refused: it is not valid for the name localhost'
	run cat "$SOCKS_LOG"
	assert_line --regexp "connected to localhost:$WRONGNAME_PORT\$"
	assert_equal "$(maildir_count bob)" 0
}

@test "-S through the proxy says so; -P shows the proxy, port 1080 by default and TLS on for the proxy's localhost" {
	run "$OUTBOX" -C "$RC" -S
	assert_success
	assert_line "SMTP server at localhost, port $SUBMISSION_PORT, through the SOCKS5 proxy 127.0.0.1:$SOCKS_PORT:"
	assert_line --regexp '^    version +TLS1\.[23]$'
	printf 'account default\nhost localhost\nproxy_host 127.0.0.1\nfrom a@example.org\n' >"$RC"
	run "$OUTBOX" -C "$RC" -P
	assert_success
	assert_output --regexp 'proxy_host += 127\.0\.0\.1 +\(.*rc:3\)'
	assert_output --regexp 'proxy_port += 1080 +\(default\)'
	assert_output --regexp 'tls += on +\(default\)'
	assert_output --regexp 'port += 587 +\(default\)'
}

@test "proxy down, queue off: exit 75 naming the proxy" {
	port=$(free_port)
	outbox_config "$RC" "proxy_host 127.0.0.1" "proxy_port $port" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 75
	assert_equal "$stderr" "outbox: account default: localhost:$SUBMISSION_PORT: cannot connect to the SOCKS5 proxy 127.0.0.1:$port: Connection refused"
}

@test "proxy down: the message is queued, and goes out through the proxy once it is up" {
	port=$(free_port)
	outbox_config "$RC" "proxy_host 127.0.0.1" "proxy_port $port"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: wait for the proxy\n\nx\n')
	assert_success
	assert_regex "$stderr" 'SOCKS5 proxy 127\.0\.0\.1:'"$port"'.*Connection refused'
	assert_regex "$stderr" 'queued as'
	assert_equal "$(maildir_count bob)" 0
	LATE_PROXY=$BATS_TEST_TMPDIR/late
	"$TESTBED_LIB/socks.sh" start "$LATE_PROXY" "$port"
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_success
	maildir_wait bob 1
	run grep -c '^Subject: wait for the proxy$' "$(maildir_newest bob)"
	assert_output 1
	run cat "$LATE_PROXY/socks.log"
	assert_line --regexp "connected to localhost:$SUBMISSION_PORT\$"
}

@test "the proxy cannot reach the server: exit 75 with the SOCKS reply" {
	port=$(free_port)
	outbox_config "$RC" "port $port" "proxy_host 127.0.0.1" "proxy_port $SOCKS_PORT" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 75
	assert_equal "$stderr" "outbox: account default: localhost:$port: SOCKS5 proxy 127.0.0.1:$SOCKS_PORT: the server refused the connection (SOCKS5 reply 5)"
}

@test "a proxy that wants a password refuses outbox: exit 69, one clear line" {
	outbox_config "$RC" "proxy_host 127.0.0.1" "proxy_port $AUTH_PROXY_PORT" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 69
	assert_equal "$stderr" "outbox: account default: localhost:$SUBMISSION_PORT: SOCKS5 proxy 127.0.0.1:$AUTH_PROXY_PORT: it wants authentication, and outbox offers none (SOCKS5 method 0 only)"
	assert_equal "$(maildir_count bob)" 0
}

@test "a port that is no SOCKS5 proxy (an SMTP server): exit 76, nothing sent" {
	outbox_config "$RC" "proxy_host 127.0.0.1" "proxy_port $PLAIN_PORT" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 76
	assert_regex "$stderr" "SOCKS5 proxy 127\.0\.0\.1:$PLAIN_PORT: not a SOCKS5 answer to the greeting"
}

# fake_proxy MODE: a listener on a free port (FAKE_PORT) that, for each
# connection, says nothing (silent) or hangs up at once (close).
fake_proxy() {
	FAKE_PORT=$(free_port)
	/usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
if sys.argv[2] == "silent":
    time.sleep(30)
while True:
    c, _ = s.accept(); c.close()' "$FAKE_PORT" "$1" </dev/null >/dev/null 2>&1 3>&- &
	FAKE_PID=$!
	for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$FAKE_PORT") 2>/dev/null && break; sleep 0.05; done
}

@test "a proxy that accepts and says nothing: the timeout applies, exit 75" {
	fake_proxy silent
	outbox_config "$RC" "proxy_host 127.0.0.1" "proxy_port $FAKE_PORT" "timeout 1" "queue off"
	start=$SECONDS
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 75
	assert_regex "$stderr" "SOCKS5 proxy 127\.0\.0\.1:$FAKE_PORT: no answer: timed out"
	((SECONDS - start < 5))
	# With no timeout, session_timeout still bounds the wait.
	outbox_config "$RC" "proxy_host 127.0.0.1" "proxy_port $FAKE_PORT" "timeout off" \
		"session_timeout 1" "queue off"
	start=$SECONDS
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 75
	assert_regex "$stderr" "no answer: timed out"
	((SECONDS - start < 5))
}

@test "a proxy that hangs up at once: exit 75, not a protocol error" {
	fake_proxy close
	outbox_config "$RC" "proxy_host 127.0.0.1" "proxy_port $FAKE_PORT" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_equal "$status" 75
	assert_regex "$stderr" "SOCKS5 proxy 127\.0\.0\.1:$FAKE_PORT: it closed the connection without an answer"
}

@test "an empty proxy_host unsets the proxy of the defaults; a bad proxy_port is a config error" {
	printf 'defaults\nproxy_host 127.0.0.1\nproxy_port 1\naccount default\nhost localhost\nport %s\nfrom alice@example.org\nuser alice\npassword "wonder land-42"\ntls on\ntls_trust_file %s\nproxy_host\nqueue off\n' \
		"$SUBMISSION_PORT" "$MTA_CA" >"$RC"
	chmod 600 "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: direct\n\nx\n')
	assert_success
	maildir_wait bob 1
	run cat "$SOCKS_LOG"
	assert_output ''
	printf 'account default\nhost localhost\nproxy_host 127.0.0.1\nproxy_port 99999\n' >"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_equal "$status" 78
	assert_regex "$stderr" ":4: invalid value '99999' for proxy_port"
}

@test "OAuth 2.0: the token endpoint is reached through the proxy too, by name" {
	/usr/bin/python3 "$BATS_TEST_DIRNAME/lib/tokenserver.py" --port-file "$BATS_TEST_TMPDIR/tok.port" \
		--log "$BATS_TEST_TMPDIR/tok.log" --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key" \
		--refresh 'refresh-1' --client-id cid --tokens AT-1 </dev/null >/dev/null 2>&1 3>&- &
	TOK_PID=$!
	for _ in $(seq 50); do [[ -s $BATS_TEST_TMPDIR/tok.port ]] && break; sleep 0.1; done
	tok_port=$(<"$BATS_TEST_TMPDIR/tok.port")
	fault_start "$(printf 'send 220 hi\nehlo STARTTLS\nexpect STARTTLS\nsend 220 go\nstarttls\nehlo AUTH=XOAUTH2\nexpect AUTH XOAUTH2 %s\nsend 235 ok\nmail_ok\nrcpt_ok\ndata_ok\ndata\nsend 250 ok\nexpect QUIT\nsend 221 bye\n' \
		"$(printf 'user=alice@example.org\001auth=Bearer AT-1\001\001' | base64 -w0)")" \
		--cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key"
	printf 'account default\nhost localhost\nport %s\ntls on\ntls_trust_file %s\nuser alice@example.org\nauth xoauth2\nfrom alice@example.org\noauth_token_url https://localhost:%s/token\noauth_client_id cid\noauth_tls_trust_file %s\npasswordeval "echo refresh-1"\nproxy_host 127.0.0.1\nproxy_port %s\nqueue off\n' \
		"$FAULT_PORT" "$MTA_CA" "$tok_port" "$MTA_CA" "$SOCKS_PORT" >"$RC"
	chmod 600 "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org < <(printf 'Subject: x\n\nx\n')
	assert_success
	fault_wait
	run cat "$BATS_TEST_TMPDIR/tok.log"
	assert_output 'grant_type=refresh_token&refresh_token=refresh-1&client_id=cid'
	run cat "$SOCKS_LOG"
	assert_line --index 0 --regexp "connected to localhost:$tok_port\$"
	assert_line --index 1 --regexp "connected to localhost:$FAULT_PORT\$"
}
