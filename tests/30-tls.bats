#!/usr/bin/env bats
# TLS against a real Postfix: certificates are verified, names checked,
# and a refusal means nothing was sent.

load 'lib/testbed'
load 'lib/faultsmtp'
bats_require_minimum_version 1.5.0

setup_file() {
	mta_setup_file
}

teardown_file() {
	mta_teardown_file
}

teardown() {
	fault_stop
}

setup() {
	RC=$BATS_TEST_TMPDIR/rc
	maildir_clear bob
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'Subject: tls\n\nhi\n' >"$MSG"
}

# implicit TLS on PORT with the test CA trusted, plus extra lines
tls_config() {
	local port=$1
	shift
	outbox_config "$RC" "port $port" "tls_starttls off" "$@"
}

refused() {	# refused REGEX: exit 76, the reason, nothing delivered
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 76
	assert_regex "$stderr" "$1"
	sleep 0.3
	assert_equal "$(maildir_count bob)" 0
}

@test "a certificate from an unknown issuer is refused" {
	tls_config "$SELFSIGNED_PORT"
	refused 'TLS certificate refused: .*(issuer is unknown|not trusted)'
}

@test "the system trust store does not know the test CA: refused" {
	tls_config "$SMTPS_PORT" "tls_trust_file system"
	refused 'TLS certificate refused'
}

@test "a certificate for another name is refused" {
	tls_config "$WRONGNAME_PORT"
	refused 'TLS certificate refused: it is not valid for the name localhost'
}

@test "an expired certificate is refused and says so" {
	tls_config "$EXPIRED_PORT"
	refused 'TLS certificate refused: it has expired'
}

@test "tls_host_override checks the certificate against another name" {
	tls_config "$WRONGNAME_PORT" "tls_host_override wrong.example"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
}

@test "no STARTTLS offered: refused before AUTH, nothing sent" {
	outbox_config "$RC" "port $PLAIN_PORT"
	mta_log_mark
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 76
	assert_regex "$stderr" "localhost:$PLAIN_PORT: the server does not offer STARTTLS, and outbox never sends in plaintext"
	mta_log_wait 'disconnect from'
	run mta_log_since_mark
	refute_output --partial 'sasl_username'
	assert_output --regexp 'disconnect from .* ehlo=1 quit=1 commands=2'
}

@test "a pinned fingerprint is accepted without any CA" {
	tls_config "$SELFSIGNED_PORT" "tls_trust_file system" \
		"tls_fingerprint $(pin_of selfsigned.pem)"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
}

@test "a wrong fingerprint is refused and the real one is shown" {
	tls_config "$SMTPS_PORT" "tls_fingerprint $(pin_of selfsigned.pem)"
	refused "fingerprint $(pin_of server.pem) does not match tls_fingerprint"
}

@test "a public-key pin (sha256//) is accepted, a wrong one refused" {
	tls_config "$SMTPS_PORT" "tls_trust_file system" "tls_fingerprint sha256//$(cat "$MTA_DIR/pki/server.spki")"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
	maildir_clear bob
	tls_config "$SMTPS_PORT" "tls_fingerprint sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	refused 'does not match tls_fingerprint'
}

@test "tls_certcheck off accepts any certificate, when asked" {
	tls_config "$SELFSIGNED_PORT" "tls_certcheck off"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
}

@test "TLS 1.1 is never used, even when tls_priorities asks for it" {
	tls_config "$SMTPS_PORT" "tls_priorities NORMAL:-VERS-ALL:+VERS-TLS1.1"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 78
	assert_regex "$stderr" 'tls_priorities: .*outbox uses TLS 1.2 or later only'
	tls_config "$SMTPS_PORT" "tls_priorities NORMAL:-VERS-TLS1.3"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_success
}

@test "a client certificate is presented when configured" {
	mta_log_mark
	tls_config "$SMTPS_PORT" "tls_cert_file $MTA_DIR/pki/client.pem" "tls_key_file $MTA_DIR/pki/client.key"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
	mta_log_wait 'Trusted TLS connection established'
}

@test "--serverinfo shows TLS, the certificate and the extensions" {
	outbox_config "$RC"
	run "$OUTBOX" -C "$RC" --serverinfo
	assert_success
	assert_line "SMTP server at localhost, port $SUBMISSION_PORT:"
	assert_line --regexp '^    version +TLS1\.[23]$'
	assert_line --regexp '^    subject +.*CN=localhost'
	assert_line --regexp "^    SHA-256 +$(pin_of server.pem)$"
	assert_line --regexp '^    PIPELINING +yes$'
	assert_line --regexp '^    CHUNKING +yes$'
	assert_line --regexp '^    AUTH +.*SCRAM-SHA-256'
}

@test "TLS 1.3 sessions are resumed from a per-account cache (0600)" {
	tls_config "$SMTPS_PORT"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_success
	refute_regex "$stderr" 'session resumed'
	cache=$XDG_CACHE_HOME/outbox/tls-default-localhost-$SMTPS_PORT
	[[ -s $cache ]]
	assert_equal "$(stat -c %a "$cache")" 600
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" 'session resumed'
	# Another port has its own cache: nothing is offered there.
	outbox_config "$RC"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_success
	refute_regex "$stderr" 'session resumed'
	maildir_wait bob 3
}

@test "a TLS session cache others can write, or in a folder others can write, is ignored with a warning" {
	tls_config "$SMTPS_PORT"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_success
	cache=$XDG_CACHE_HOME/outbox/tls-default-localhost-$SMTPS_PORT
	[[ -s $cache ]]
	chmod 666 "$cache"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" "outbox: warning: the TLS session cache file $cache is open to other users \(mode 666\); ignoring it"
	refute_regex "$stderr" 'session resumed'
	chmod 600 "$cache"
	chmod 777 "$XDG_CACHE_HOME/outbox"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" "warning: the TLS session cache folder $XDG_CACHE_HOME/outbox is open to other users \(mode 777\)"
	refute_regex "$stderr" 'session resumed'
	chmod 700 "$XDG_CACHE_HOME/outbox"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_regex "$stderr" 'session resumed'
	maildir_wait bob 4
}

@test "a session made with tls_certcheck off is not resumed once checks are on" {
	tls_config "$WRONGNAME_PORT" "tls_certcheck off"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
	[[ -s $XDG_CACHE_HOME/outbox/tls-default-localhost-$WRONGNAME_PORT ]]
	maildir_clear bob
	# the saved session would skip the name check: it must not be offered
	tls_config "$WRONGNAME_PORT"
	refused 'TLS certificate refused: it is not valid for the name localhost'
}

@test "the trust file is read only when a certificate is checked" {
	cp "$MTA_CA" "$BATS_TEST_TMPDIR/ca.pem"
	tls_config "$SMTPS_PORT" "tls_trust_file $BATS_TEST_TMPDIR/ca.pem"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	rm "$BATS_TEST_TMPDIR/ca.pem"
	# resumed: the server sends no certificate, nothing to check it with
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" 'session resumed'
	maildir_wait bob 2
	# a full handshake needs the file, and says so
	rm -r "$XDG_CACHE_HOME/outbox"
	run --separate-stderr "$OUTBOX" -C "$RC" --queue=off bob@example.org <"$MSG"
	assert_equal "$status" 78
	assert_regex "$stderr" "cannot load trusted certificates from $BATS_TEST_TMPDIR/ca.pem"
}

@test "port 465 alone means implicit TLS; tls_starttls on still wins" {
	fault_make_cert
	fault_start - --implicit-tls --listen-port 465 --cert "$FAULT_CERT" --key "$FAULT_KEY" <<-'EOF'
		send 220 tls from the start
		ehlo
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 2.0.0 queued
		expect QUIT
		send 221 bye
	EOF
	printf 'account default\nhost 127.0.0.1\nport 465\nauth off\ntls_certcheck off\nfrom a@example.org\ntimeout 5\nqueue off\n' >"$RC"
	run "$OUTBOX" -C "$RC" -P
	assert_line --regexp '^    tls += on  \(default\)$'
	assert_line --regexp '^    tls_starttls += off  \(default\)$'
	assert_line '    tls_starttls = off, as port 465 wants (msmtp: on)'
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	fault_wait
	echo 'tls_starttls on' >>"$RC"
	run "$OUTBOX" -C "$RC" -P
	assert_line --regexp "^    tls_starttls += on  \($RC:9\)$"
}

@test "port and mode mismatches are named with the fix" {
	# Implicit TLS against a STARTTLS port.
	outbox_config "$RC" "tls_starttls off" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 76
	assert_regex "$stderr" "TLS handshake failed: .*this port wants STARTTLS; set 'tls_starttls on', or use port 465 for implicit TLS"
	# STARTTLS against an implicit-TLS port: the server waits, silent.
	outbox_config "$RC" "port $SMTPS_PORT" "timeout 2" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 75
	assert_regex "$stderr" "no greeting \(does this port expect implicit TLS\? then set 'tls_starttls off'\): timed out"
}

@test "a certificate not valid yet is refused and says so" {
	tls_config "$FUTURE_PORT"
	refused 'TLS certificate refused: it is not valid yet'
}

@test "a certificate signed with SHA-1 is refused as insecure" {
	tls_config "$WEAK_PORT"
	refused 'TLS certificate refused: .*insecure'
}

@test "a certificate whose key purpose is not serverAuth is refused" {
	fault_start - --implicit-tls --cert "$MTA_PKI/clientonly.pem" --key "$MTA_PKI/clientonly.key" <<-'EOF2'
	send 220 fault ESMTP
	wait_close
	EOF2
	outbox_config "$RC" "host localhost" "port $FAULT_PORT" "tls_starttls off" "auth off" "timeout 5" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 76
	assert_regex "$stderr" 'TLS certificate refused: .*(purpose|usage)'
	# The same certificate with the right purpose passes: the CA and the
	# name are fine, only the purpose is wrong.
	fault_start - --implicit-tls --cert "$MTA_PKI/server.pem" --key "$MTA_PKI/server.key" <<-'EOF2'
	send 220 fault ESMTP
	ehlo
	mail_ok
	rcpt_ok
	data_ok
	data
	send 250 ok
	expect QUIT
	send 221 bye
	EOF2
	outbox_config "$RC" "host localhost" "port $FAULT_PORT" "tls_starttls off" "auth off" "timeout 5" "queue off"
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
}

tlsdrip() {	# tlsdrip keyupdate|ticket: a server that drips records, no data
	cc -o "$BATS_TEST_TMPDIR/tlsdrip" "$BATS_TEST_DIRNAME/lib/tlsdrip.c" -lgnutls
	"$BATS_TEST_TMPDIR/tlsdrip" "$BATS_TEST_TMPDIR/drip.port" "$MTA_PKI/server.pem" \
		"$MTA_PKI/server.key" "$1" 300 20 >"$BATS_TEST_TMPDIR/drip.out" 2>&1 3>&- &
	DRIP_PID=$!
	for _ in $(seq 50); do [[ -s $BATS_TEST_TMPDIR/drip.port ]] && break; sleep 0.1; done
	DRIP_PORT=$(<"$BATS_TEST_TMPDIR/drip.port")
}

drip_run() {	# outbox against the dripping server: it must give up on time
	outbox_config "$RC" "port $DRIP_PORT" "tls_starttls off" "auth off" "timeout 2" "queue off"
	local t0=$SECONDS
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	local took=$((SECONDS - t0))
	kill "$DRIP_PID" 2>/dev/null || true
	wait "$DRIP_PID" 2>/dev/null || true
	assert_equal "$status" 75
	assert_regex "$stderr" 'timed out'
	(( took <= 5 )) || fail "outbox took ${took}s with timeout 2"
}

@test "a server that drips TLS 1.3 KeyUpdates cannot hold outbox past its timeout" {
	tlsdrip keyupdate
	drip_run
}

@test "a server that drips TLS 1.3 session tickets cannot hold outbox past its timeout" {
	tlsdrip ticket
	drip_run
}

# A free TCP port on 127.0.0.1
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# dhe_server PORT: openssl's TLS 1.2 server that only does DHE-RSA (a
# 2048-bit prime), with a throwaway RSA certificate pinned in $RC
dhe_server() {
	local d=$BATS_TEST_TMPDIR fp
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/dh.key" -out "$d/dh.pem" \
		-days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
	fp=$(openssl x509 -in "$d/dh.pem" -noout -fingerprint -sha256 | cut -d= -f2)
	(sleep 20 | timeout 20 openssl s_server -accept "127.0.0.1:$1" -cert "$d/dh.pem" \
		-key "$d/dh.key" -cipher DHE-RSA-AES128-GCM-SHA256 -no_tls1_3 -quiet \
		>/dev/null 2>&1 &)
	for _ in $(seq 50); do
		(: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && break
		sleep 0.1
	done
	printf 'account a\nhost 127.0.0.1\nport %s\ntls on\ntls_starttls off\ntls_fingerprint %s\ntimeout 2\nqueue off\n' \
		"$1" "$fp" >"$RC"
	chmod 600 "$RC"
}

@test "tls_min_dh_prime_bits: a DH prime below it fails the handshake, one above it passes" {
	port=$(free_port)
	dhe_server "$port"
	echo 'tls_min_dh_prime_bits 4096' >>"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -a a -S
	assert_equal "$status" 76
	assert_regex "$stderr" 'TLS handshake failed: The Diffie-Hellman prime sent by the server is not acceptable'
	port=$(free_port)
	dhe_server "$port"
	echo 'tls_min_dh_prime_bits 1024' >>"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -a a -S
	# The handshake is done; this server then says nothing.
	refute_regex "$stderr" 'TLS|Diffie-Hellman'
	assert_regex "$stderr" 'timed out waiting for the server'
}

@test "tls_crl_file: a revoked server certificate is refused, nothing sent" {
	/usr/bin/python3 - "$MTA_PKI" "$BATS_TEST_TMPDIR/crl.pem" <<-'PY'
		import datetime, sys
		from cryptography import x509
		from cryptography.hazmat.primitives import hashes, serialization
		pki, out = sys.argv[1], sys.argv[2]
		ca = x509.load_pem_x509_certificate(open(pki + "/ca.pem", "rb").read())
		key = serialization.load_pem_private_key(open(pki + "/ca.key", "rb").read(), None)
		srv = x509.load_pem_x509_certificate(open(pki + "/server.pem", "rb").read())
		now = datetime.datetime.now(datetime.timezone.utc)
		rev = x509.RevokedCertificateBuilder().serial_number(srv.serial_number) \
			.revocation_date(now - datetime.timedelta(hours=1)).build()
		crl = x509.CertificateRevocationListBuilder().issuer_name(ca.subject) \
			.last_update(now - datetime.timedelta(hours=1)) \
			.next_update(now + datetime.timedelta(days=1)).add_revoked_certificate(rev) \
			.sign(key, hashes.SHA256())
		open(out, "wb").write(crl.public_bytes(serialization.Encoding.PEM))
	PY
	outbox_config "$RC" "tls_crl_file $BATS_TEST_TMPDIR/crl.pem"
	refused 'revoked'
}
