#!/usr/bin/env bats
# SCRAM with channel binding (-PLUS) against the scriptable server, which
# checks the binding against its own end of the TLS session: tls-unique on
# TLS 1.2, tls-exporter on TLS 1.3.  The test Dovecot offers no -PLUS.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load 'lib/faultsmtp'
bats_require_minimum_version 1.5.0

setup_file() {
	fault_make_cert
}

setup() {
	fault_make_cert # re-exports FAULT_CERT/FAULT_KEY (made in setup_file)
	OUTBOX=${OUTBOX:-$BATS_TEST_DIRNAME/../outbox}
	export XDG_STATE_HOME=$BATS_TEST_TMPDIR/state XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'From: alice@example.org\nTo: bob@example.org\nSubject: cb\n\nbody\n' >"$MSG"
	PASS='wonder land-42'
	SPASS='wonder\x20land-42' # the same, for a script step (words split on spaces)
}

teardown() {
	fault_stop
}

# scram_server AUTHCAPS AUTHSTEP [faultsmtp options...]: STARTTLS, EHLO offering
# AUTH AUTHCAPS (words joined by _), the AUTHSTEP, then one delivery.
scram_server() {
	local caps=$1 step=$2
	shift 2
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" "$@" <<-EOF
		send 220 hi
		ehlo STARTTLS
		expect STARTTLS
		send 220 go
		starttls
		ehlo AUTH=$caps
		$step
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 2.0.0 queued
		expect QUIT
		send 221 bye
	EOF
}

# rc [LINES...]: the account on the scriptable server (STARTTLS, no
# certificate check), user alice, password $PASS, plus LINES.
rc() {
	RC=$BATS_TEST_TMPDIR/rc
	{
		echo "account default"
		echo "host 127.0.0.1"
		echo "port $FAULT_PORT"
		echo "tls on"
		echo "tls_certcheck off"
		echo "user alice"
		echo "password \"$PASS\""
		echo "auth on"
		echo "from alice@example.org"
		echo "timeout 5"
		echo "queue off"
		printf '%s\n' "$@"
	} >"$RC"
	chmod 600 "$RC"
}

send() {
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
}

# The TLS 1.3 cases need faultsmtp to read tls-exporter through OpenSSL
# (ctypes).  Where it cannot, the test is skipped; under CI (CI=true or
# OUTBOX_STRICT=1) that fails, so a CI run never passes without them.
exporter_or_skip() {
	grep -q 'cannot get tls-exporter' "$FAULT_ERR" || return 0
	if [[ ${CI:-} == true || ${OUTBOX_STRICT:-0} == 1 ]]; then
		fail "faultsmtp cannot read tls-exporter from this Python/OpenSSL (strict mode)"
	fi
	skip "faultsmtp cannot read tls-exporter from this Python/OpenSSL"
}

# The client-first message outbox sent, decoded.
client_first() {
	sed -n 's/^AUTH SCRAM-[A-Z0-9-]* \([A-Za-z0-9+/=]*\)\r$/\1/p' "$FAULT_LOG" | base64 -d
}

@test "(a) auth on picks SCRAM-SHA-256-PLUS and binds to tls-unique on TLS 1.2" {
	scram_server SCRAM-SHA-256-PLUS_SCRAM-SHA-256_PLAIN "auth_scram SCRAM-SHA-256-PLUS alice $SPASS" --tls-max 1.2
	rc
	send
	assert_success
	assert_regex "$stderr" '--> AUTH SCRAM-SHA-256-PLUS \[hidden\]'
	fault_wait
	assert grep -q '^TLS start (TLSv1.2, ' "$FAULT_TRACE"
	assert grep -q '^SCRAM channel binding: tls-unique (TLSv1.2, 12 octets)$' "$FAULT_TRACE"
	assert_equal "$(client_first | cut -d, -f1-3)" 'p=tls-unique,,n=alice'
	assert grep -q '^Subject: cb' "$FAULT_LOG"
}

@test "(b) auth scram-sha-1-plus binds with SCRAM-SHA-1-PLUS" {
	scram_server SCRAM-SHA-256-PLUS_SCRAM-SHA-1-PLUS_SCRAM-SHA-256 "auth_scram SCRAM-SHA-1-PLUS alice $SPASS" --tls-max 1.2
	rc "auth scram-sha-1-plus"
	send
	assert_success
	assert_regex "$stderr" '--> AUTH SCRAM-SHA-1-PLUS \[hidden\]'
	fault_wait
	assert grep -q '^SCRAM channel binding: tls-unique (TLSv1.2, 12 octets)$' "$FAULT_TRACE"
}

@test "(c) a server without -PLUS: plain SCRAM-SHA-256 (GS2 flag n or y)" {
	scram_server SCRAM-SHA-256_PLAIN "auth_scram SCRAM-SHA-256 alice $SPASS" --tls-max 1.2
	rc
	send
	assert_success
	assert_regex "$stderr" '--> AUTH SCRAM-SHA-256 \[hidden\]'
	fault_wait
	assert grep -qE '^SCRAM channel binding: none \(GS2 flag [ny]\)$' "$FAULT_TRACE"
	assert_regex "$(client_first)" '^[ny],,n=alice,r='
}

@test "(c') plain SCRAM-SHA-1 when asked for, on TLS 1.3 too" {
	scram_server SCRAM-SHA-1_SCRAM-SHA-256 "auth_scram SCRAM-SHA-1 alice $SPASS"
	rc "auth scram-sha-1"
	send
	assert_success
	assert_regex "$stderr" '--> AUTH SCRAM-SHA-1 \[hidden\]'
	fault_wait
	assert grep -q '^TLS start (TLSv1.3, ' "$FAULT_TRACE"
}

@test "(d) a wrong password: 77, and the message names the mechanism" {
	scram_server SCRAM-SHA-256-PLUS_SCRAM-SHA-256 "auth_scram SCRAM-SHA-256-PLUS alice right-pass" --tls-max 1.2
	rc
	send
	assert_equal "$status" 77
	assert_regex "$stderr" "outbox: account default: 127\.0\.0\.1:$FAULT_PORT: authentication with SCRAM-SHA-256-PLUS failed: 535 5\.7\.8 authentication failed"
	run fault_wait
	assert_equal "$status" 1
	assert grep -q 'SCRAM-SHA-256-PLUS: authentication failed: the client proof does not verify' "$FAULT_ERR"
	refute grep -q '^MAIL FROM' "$FAULT_LOG"
}

@test "(e) a man in the middle (other TLS session) cannot bind: refused, 77" {
	scram_server SCRAM-SHA-256-PLUS_SCRAM-SHA-256 "auth_scram SCRAM-SHA-256-PLUS alice $SPASS" --tls-max 1.2 --cb-corrupt
	rc
	send
	assert_equal "$status" 77
	assert_regex "$stderr" 'authentication with SCRAM-SHA-256-PLUS failed: 535 5\.7\.8 channel binding data mismatch'
	run fault_wait
	assert_equal "$status" 1
	assert grep -q "SCRAM-SHA-256-PLUS: channel binding data mismatch" "$FAULT_ERR"
	assert grep -q 'corrupted by --cb-corrupt' "$FAULT_TRACE"
	refute grep -q '^MAIL FROM' "$FAULT_LOG"
}

@test "(f) TLS 1.3: SCRAM-SHA-256-PLUS binds to tls-exporter" {
	scram_server SCRAM-SHA-256-PLUS_SCRAM-SHA-256 "auth_scram SCRAM-SHA-256-PLUS alice $SPASS"
	rc
	send
	exporter_or_skip
	assert_success
	assert_regex "$stderr" '--> AUTH SCRAM-SHA-256-PLUS \[hidden\]'
	fault_wait
	assert grep -q '^SCRAM channel binding: tls-exporter (TLSv1.3, 32 octets)$' "$FAULT_TRACE"
	assert_equal "$(client_first | cut -d, -f1-3)" 'p=tls-exporter,,n=alice'
}

@test "(g) TLS 1.3 man in the middle: refused, 77" {
	scram_server SCRAM-SHA-256-PLUS_SCRAM-SHA-256 "auth_scram SCRAM-SHA-256-PLUS alice $SPASS" --cb-corrupt
	rc
	send
	exporter_or_skip
	assert_equal "$status" 77
	assert_regex "$stderr" 'authentication with SCRAM-SHA-256-PLUS failed: 535 5\.7\.8 channel binding data mismatch'
}

@test "(h) a resumed TLS 1.2 session still binds (tls-unique of the new handshake)" {
	scram_server SCRAM-SHA-256-PLUS_SCRAM-SHA-256 "auth_scram SCRAM-SHA-256-PLUS alice $SPASS" --tls-max 1.2 --connections 2
	rc
	send
	assert_success
	send
	assert_success
	assert_regex "$stderr" 'session resumed'
	assert_regex "$stderr" '--> AUTH SCRAM-SHA-256-PLUS \[hidden\]'
	fault_wait
	assert_equal "$(grep -c '^SCRAM channel binding: tls-unique (TLSv1.2, 12 octets)$' "$FAULT_TRACE")" 2
}

@test "(i) a false server signature (v=): outbox aborts with *, 77" {
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" --tls-max 1.2 --scram-final wrong <<-EOF
		send 220 hi
		ehlo STARTTLS
		expect STARTTLS
		send 220 go
		starttls
		ehlo AUTH=SCRAM-SHA-256-PLUS
		auth_scram SCRAM-SHA-256-PLUS alice $SPASS
		wait_close
	EOF
	rc
	send
	assert_equal "$status" 77
	assert_regex "$stderr" "outbox: account default: 127\.0\.0\.1:$FAULT_PORT: AUTH SCRAM-SHA-256-PLUS: "
	fault_wait
	assert grep -q '^SCRAM: the client rejected the false server signature$' "$FAULT_TRACE"
	refute grep -q '^MAIL FROM' "$FAULT_LOG"
}

@test "(j) 235 without the server signature (an impostor): no mail is sent" {
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" --tls-max 1.2 --scram-final skip <<-EOF
		send 220 hi
		ehlo STARTTLS
		expect STARTTLS
		send 220 go
		starttls
		ehlo AUTH=SCRAM-SHA-256-PLUS
		auth_scram SCRAM-SHA-256-PLUS alice $SPASS
		loop_until_quit
	EOF
	rc
	send
	assert_failure
	assert_regex "$stderr" 'SCRAM-SHA-256-PLUS'
	run fault_wait # the server may see the client's abort or close as it likes
	refute grep -q '^MAIL FROM' "$FAULT_LOG"
}

@test "(k) a server asking for 2000000 SCRAM iterations is refused: 76, no mail" {
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" --scram-iter 2000000 <<-EOF
		send 220 hi
		ehlo STARTTLS
		expect STARTTLS
		send 220 go
		starttls
		ehlo AUTH=SCRAM-SHA-256
		auth_scram SCRAM-SHA-256 alice $SPASS
		loop_until_quit
	EOF
	rc
	send
	assert_equal "$status" 76
	assert_regex "$stderr" "outbox: account default: 127\.0\.0\.1:$FAULT_PORT: .*the server asks for 2000000 SCRAM iterations \(outbox allows at most 1000000\)"
	run fault_wait
	refute grep -q '^MAIL FROM' "$FAULT_LOG"
}

@test "(l) SCRAM prepares the password with SASLprep: a soft hyphen in it is dropped" {
	scram_server SCRAM-SHA-256_PLAIN "auth_scram SCRAM-SHA-256 alice $SPASS" --scram-iter 5000
	PASS=$'wonder land\xc2\xad-42'
	rc
	send
	assert_success
	assert_regex "$stderr" '--> AUTH SCRAM-SHA-256 \[hidden\]'
	fault_wait
	assert grep -q '^SCRAM server-first: r=.*,i=5000$' "$FAULT_TRACE"
}
