#!/usr/bin/env bats
# Proves the test bed (tests/lib/) with a known-good client: Debian's msmtp.
# If this file fails, the other suites' failures say nothing about outbox.

load lib/testbed

setup_file() {
	if ! command -v msmtp >/dev/null; then
		testbed_unavailable "msmtp not installed (run tests/lib/deps.sh)"
		return
	fi
	mta_setup_file
	keyring_setup_file
	# no ~/.msmtprc or ~/.netrc of the person running the tests
	export HOME=$BATS_FILE_TMPDIR/home
	mkdir -p "$HOME"
}

teardown_file() {
	keyring_teardown_file
	mta_teardown_file
}

setup() {
	maildir_clear bob
	maildir_clear catchall
	rc=$BATS_TEST_TMPDIR/msmtprc
	msg=$BATS_TEST_TMPDIR/msg
}

# write_msg FILE: a message with the headers msmtp would otherwise add (Date,
# Message-ID), a dot-stuffed line, trailing blanks, a long line and 8-bit text
write_msg() {
	local long
	long=$(printf 'x%.0s' {1..1500})
	{
		printf 'Date: Thu, 01 Jan 2026 10:00:00 +0000\n'
		printf 'Message-ID: <testbed-%s@example.org>\n' "$RANDOM"
		printf 'From: Alice <alice@example.org>\n'
		printf 'To: bob@example.org\n'
		printf 'Subject: test bed check\n'
		printf 'MIME-Version: 1.0\n'
		printf 'Content-Type: text/plain; charset=utf-8\n'
		printf 'Content-Transfer-Encoding: 8bit\n'
		printf '\n'
		printf 'Hello Bob,\n'
		printf '.a line starting with a dot\n'
		printf '.\n'
		printf 'trailing blanks  \t\n'
		printf '%s\n' "$long"
		printf 'gr\xc3\xbc\xc3\x9fe, \xe2\x82\xac\n'
		printf '\n'
		printf -- '-- \nAlice\n'
	} >"$1"
}

@test "submission port: STARTTLS + AUTH, content arrives byte for byte" {
	outbox_config "$rc"
	write_msg "$msg"
	run msmtp -C "$rc" bob@example.org <"$msg"
	assert_success
	maildir_wait bob 1
	maildir_last bob >"$BATS_TEST_TMPDIR/got"
	cmp "$msg" "$BATS_TEST_TMPDIR/got"
	# what Postfix put on top is what maildir_last strips
	run head -n 4 "$(maildir_newest bob)"
	assert_line --index 0 'Return-Path: <alice@example.org>'
	assert_line --index 1 'X-Original-To: bob@example.org'
	assert_line --index 2 'Delivered-To: bob@example.org'
	assert_line --index 3 --regexp '^Received: from '
}

@test "smtps port: implicit TLS, other recipients land in catchall" {
	outbox_config "$rc" "port $SMTPS_PORT" "tls_starttls off"
	write_msg "$msg"
	run msmtp -C "$rc" carol@example.net dave@elsewhere.test <"$msg"
	assert_success
	maildir_wait catchall 2
	maildir_last catchall >"$BATS_TEST_TMPDIR/got"
	cmp "$msg" "$BATS_TEST_TMPDIR/got"
	[ "$(maildir_count bob)" -eq 0 ]
}

@test "submission port: the certificate is server.pem (fingerprint files match)" {
	run openssl s_client -connect "127.0.0.1:$SUBMISSION_PORT" -starttls smtp \
		-CAfile "$MTA_CA" -verify_return_error -verify_hostname localhost </dev/null
	assert_success
	local fp
	fp=$(openssl s_client -connect "127.0.0.1:$SUBMISSION_PORT" -starttls smtp </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256)
	[ "${fp#*=}" = "$(cat "$MTA_DIR/pki/server.sha256")" ]
	# msmtp pins the same fingerprint (no CA)
	outbox_config "$rc" "tls_trust_file" "tls_fingerprint $(cat "$MTA_DIR/pki/server.sha256")"
	write_msg "$msg"
	run msmtp -C "$rc" bob@example.org <"$msg"
	assert_success
	maildir_wait bob 1
}

@test "client certificate from pki.sh is verified by the server" {
	outbox_config "$rc" "tls_cert_file $MTA_PKI/client.pem" "tls_key_file $MTA_PKI/client.key"
	write_msg "$msg"
	mta_log_mark
	run msmtp -C "$rc" bob@example.org <"$msg"
	assert_success
	mta_log_wait 'submission/smtpd.*Trusted TLS connection established'
}

@test "bad certificate ports: rejected with verification, fine without" {
	local port
	write_msg "$msg"
	for port in "$WRONGNAME_PORT" "$EXPIRED_PORT" "$SELFSIGNED_PORT"; do
		outbox_config "$rc" "port $port" "tls_starttls off"
		run msmtp -C "$rc" bob@example.org <"$msg"
		assert_failure
		assert_output --partial 'TLS'
		outbox_config "$rc" "port $port" "tls_starttls off" "tls_certcheck off"
		run msmtp -C "$rc" bob@example.org <"$msg"
		assert_success
	done
	maildir_wait bob 3
}

@test "plain port: no STARTTLS, AUTH offered in clear; TLS-requiring client refuses" {
	outbox_config "$rc" "port $PLAIN_PORT"
	write_msg "$msg"
	mta_log_mark
	run msmtp -C "$rc" bob@example.org <"$msg"
	assert_failure
	assert_output --partial 'STARTTLS'
	# the session is over (logged), and it never authenticated
	mta_log_wait 'plain/smtpd.*disconnect from'
	run mta_log_since_mark
	refute_output --partial 'sasl_'
	[ "$(maildir_count bob)" -eq 0 ]
	run smtp_ehlo "$PLAIN_PORT"
	assert_success
	assert_line --regexp '^250-AUTH .*PLAIN'
	refute_line --partial 'STARTTLS'
}

@test "submission port: no AUTH before STARTTLS, no sending without AUTH" {
	run smtp_ehlo "$SUBMISSION_PORT"
	assert_success
	assert_line '250-STARTTLS'
	refute_line --partial 'AUTH'
	outbox_config "$rc" "auth off"
	write_msg "$msg"
	run msmtp -C "$rc" bob@example.org <"$msg"
	assert_failure
	assert_output --partial 'Access denied'
	[ "$(maildir_count bob)" -eq 0 ]
}

@test "wrong password is refused quickly" {
	outbox_config "$rc" 'password "wonder land-41"'
	write_msg "$msg"
	local start=$SECONDS
	run msmtp -C "$rc" bob@example.org <"$msg"
	assert_failure 77
	assert_output --partial 'authentication failed'
	# no Dovecot failure delay or penalty
	[ $((SECONDS - start)) -le 2 ]
	[ "$(maildir_count bob)" -eq 0 ]
}

@test "bob can log in too" {
	outbox_config "$rc" "user bob" 'password "b0b-pass"' "from bob@example.org"
	write_msg "$msg"
	run msmtp -C "$rc" carol@example.net <"$msg"
	assert_success
	maildir_wait catchall 1
}

@test "small port: a message over 10000 bytes is refused" {
	run smtp_ehlo "$SMALL_PORT"
	assert_line '250-SIZE 10000'
	outbox_config "$rc" "port $SMALL_PORT"
	write_msg "$msg"
	head -c 20000 /dev/zero | tr '\0' 'y' | fold -w 70 >>"$msg"
	run msmtp -C "$rc" bob@example.org <"$msg"
	assert_failure
	assert_output --partial '552 5.3.4'
	[ "$(maildir_count bob)" -eq 0 ]
}

@test "keyring: msmtp takes the password from the Secret Service" {
	printf '%s' 'wonder land-42' |
		secret-tool store --label=msmtp host localhost service smtp user alice
	run secret-tool lookup host localhost service smtp user alice
	assert_output 'wonder land-42'
	outbox_config --no-password "$rc"
	write_msg "$msg"
	run msmtp -C "$rc" bob@example.org <"$msg"
	assert_success
	maildir_wait bob 1
	maildir_last bob >"$BATS_TEST_TMPDIR/got"
	cmp "$msg" "$BATS_TEST_TMPDIR/got"
}

@test "keyring: a wrong stored password fails" {
	printf '%s' 'not the password' |
		secret-tool store --label=msmtp host localhost service smtp user alice
	outbox_config --no-password "$rc"
	write_msg "$msg"
	run msmtp -C "$rc" bob@example.org <"$msg"
	assert_failure 77
	assert_output --partial 'authentication failed'
	[ "$(maildir_count bob)" -eq 0 ]
}
