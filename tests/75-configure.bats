#!/usr/bin/env bats
# outbox --configure: the server from DNS SRV records, probed, and an
# account block ready to paste; a template when DNS knows nothing.

load 'lib/testbed'
bats_require_minimum_version 1.5.0

setup_file() {
	mta_setup_file
}

teardown_file() {
	mta_teardown_file
}

teardown() {
	[[ -n ${DNS_PID:-} ]] && kill "$DNS_PID" 2>/dev/null || true
}

dns_start() {	# dns_start --srv NAME=PRIO:WEIGHT:PORT:TARGET ...
	/usr/bin/python3 "$BATS_TEST_DIRNAME/lib/fakedns.py" --port-file "$BATS_TEST_TMPDIR/dns.port" "$@" \
		</dev/null >/dev/null 2>&1 3>&- &
	DNS_PID=$!
	for i in $(seq 50); do [[ -s $BATS_TEST_TMPDIR/dns.port ]] && break; sleep 0.1; done
	export OUTBOX_DNS=127.0.0.1:$(cat "$BATS_TEST_TMPDIR/dns.port")
}

@test "_submissions (implicit TLS) is preferred, probed, and printed ready to use" {
	dns_start --srv "_submissions._tcp.example.org=0:1:$SMTPS_PORT:localhost" \
		--srv "_submission._tcp.example.org=0:1:$SUBMISSION_PORT:localhost"
	run --separate-stderr "$OUTBOX" --configure=alice@example.org --trust-srv --tls-trust-file="$MTA_CA"
	assert_success
	assert_line '# example.org: found by DNS (_submissions._tcp.example.org)'
	assert_line 'account example.org'
	assert_line 'host localhost'
	assert_line "port $SMTPS_PORT"
	assert_line 'tls_starttls off'
	assert_line 'user alice@example.org'
	assert_line '#   outbox --store-password -a example.org'
	assert_regex "$stderr" 'AUTH +PLAIN LOGIN'
	# The block works as it is.
	{ echo "$output" | grep -v '^#'; echo "tls_trust_file $MTA_CA"; echo 'user alice'; echo 'password "wonder land-42"'; } >"$BATS_TEST_TMPDIR/rc"
	chmod 600 "$BATS_TEST_TMPDIR/rc"
	maildir_clear bob
	run "$OUTBOX" -C "$BATS_TEST_TMPDIR/rc" -a example.org bob@example.org < <(printf 'Subject: configured\n\nhi\n')
	assert_success
	maildir_wait bob 1
}

@test "only _submission: STARTTLS on that port" {
	# The target is the address's own domain: no question asked.
	dns_start --srv "_submission._tcp.localhost=0:1:$SUBMISSION_PORT:localhost"
	run --separate-stderr "$OUTBOX" --configure=bob@localhost --tls-trust-file="$MTA_CA"
	assert_success
	assert_line "port $SUBMISSION_PORT"
	assert_line 'tls_starttls on'
}

@test "no SRV records: a template with the usual hosts, exit 68" {
	dns_start --srv "_other._tcp.example.com=0:1:1:x"
	run --separate-stderr "$OUTBOX" --configure=carol@example.com
	assert_equal "$status" 68
	assert_line 'host smtp.example.com'
	assert_line '# host mail.example.com'
	assert_regex "$stderr" 'no SRV records for example.com'
}

@test "a server that fails the probe is named, the block still printed" {
	dns_start --srv "_submissions._tcp.localhost=0:1:$SELFSIGNED_PORT:localhost"
	run --separate-stderr "$OUTBOX" --configure=alice@localhost --tls-trust-file="$MTA_CA"
	assert_equal "$status" 76
	assert_regex "$stderr" 'TLS certificate refused'
	assert_line "port $SELFSIGNED_PORT"
}

@test "not an address: 64" {
	run --separate-stderr "$OUTBOX" --configure=nonsense
	assert_equal "$status" 64
}

@test "an SRV target outside the address's domain is not used without asking (RFC 6186)" {
	dns_start --srv "_submissions._tcp.example.org=0:1:$SMTPS_PORT:localhost"
	mta_log_mark
	run --separate-stderr "$OUTBOX" --configure=alice@example.org --tls-trust-file="$MTA_CA" </dev/null
	assert_equal "$status" 68
	assert_regex "$stderr" 'the DNS record for example.org names the server localhost, which is outside example.org'
	assert_regex "$stderr" 'localhost is outside example.org: not used; if your provider says it is right, run again with --trust-srv'
	refute_output --partial 'account example.org'
	# Nothing was probed: no connection reached the server.
	sleep 0.5
	run mta_log_since_mark
	refute_output --partial 'connect from'
}

@test "asked on the terminal: yes takes the server, no does not" {
	dns_start --srv "_submissions._tcp.example.org=0:1:$SMTPS_PORT:localhost"
	WITHTTY_PROMPT='[y/N]' run /usr/bin/python3 "$BATS_TEST_DIRNAME/lib/withtty.py" y \
		"$OUTBOX" --configure=alice@example.org --tls-trust-file="$MTA_CA"
	assert_success
	assert_output --partial 'Is localhost the right server for example.org? [y/N]'
	assert_output --partial "port $SMTPS_PORT"
	WITHTTY_PROMPT='[y/N]' run /usr/bin/python3 "$BATS_TEST_DIRNAME/lib/withtty.py" n \
		"$OUTBOX" --configure=alice@example.org --tls-trust-file="$MTA_CA"
	assert_equal "$status" 68
	refute_output --partial "port $SMTPS_PORT"
}
