#!/usr/bin/env bats
# SASL against Dovecot through Postfix, and every source of the password.

load 'lib/testbed'
bats_require_minimum_version 1.5.0

setup_file() {
	mta_setup_file
	keyring_setup_file
}

teardown_file() {
	keyring_teardown_file
	mta_teardown_file
}

setup() {
	RC=$BATS_TEST_TMPDIR/rc
	maildir_clear bob
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'Subject: auth\n\nhi\n' >"$MSG"
}

# The test config without a password line, plus $@.
config_without_password() {
	outbox_config --no-password "$RC" "$@"
}

@test "auth on picks SCRAM-SHA-256 and delivers" {
	outbox_config "$RC"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" '--> AUTH SCRAM-SHA-256 \[hidden\]'
	maildir_wait bob 1
}

@test "each mechanism Dovecot offers works when asked for" {
	for mech in plain login cram-md5 scram-sha-1 scram-sha-256; do
		outbox_config "$RC" "auth $mech"
		run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
		assert_success
		assert_regex "$stderr" "AUTH ${mech^^}"
	done
	maildir_wait bob 5
}

@test "a wrong password: 77, names the mechanism and the reply" {
	outbox_config "$RC"
	sed -i 's/^password .*/password "wrong"/' "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 77
	assert_regex "$stderr" "^outbox: account default: localhost:$SUBMISSION_PORT: authentication with SCRAM-SHA-256 failed: 535 5\.7\.8 .*authentication failed"
}

@test "a mechanism the server lacks: 69 with what it offers" {
	outbox_config "$RC" "auth external"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 69
	assert_regex "$stderr" 'does not offer AUTH EXTERNAL \(it offers: PLAIN LOGIN'
}

@test "PLAIN is never sent without TLS, even when configured" {
	outbox_config "$RC" "port $PLAIN_PORT" "tls off" "auth plain"
	mta_log_mark
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 78
	assert_regex "$stderr" 'auth plain would send the password unencrypted; outbox refuses'
	mta_log_wait 'disconnect from'
	run mta_log_since_mark
	refute_output --partial 'auth='
	refute_output --partial 'sasl_method'
}

@test "without TLS, auth on uses only a mechanism that hides the password" {
	outbox_config "$RC" "port $PLAIN_PORT" "tls off"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	# Postfix may still refuse to relay; what matters is what was tried.
	assert_regex "$stderr" '--> AUTH SCRAM-SHA-256'
	[[ $stderr != *'--> AUTH PLAIN'* && $stderr != *'--> AUTH LOGIN'* ]]
}

@test "password from passwordeval" {
	config_without_password "passwordeval \"printf '%s\\\\n' 'wonder land-42'\""
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
}

@test "a failing passwordeval: 75 with its exit status (queue off)" {
	config_without_password 'passwordeval "exit 3"' "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 75
	assert_regex "$stderr" "account default: localhost:$SUBMISSION_PORT: passwordeval failed \(exit status 3\)"
}

@test "a passwordeval that prints nothing: 75 (queue off)" {
	config_without_password 'passwordeval "true"' "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 75
	assert_regex "$stderr" "passwordeval printed no password"
}

@test "password from the keyring, stored the way msmtp users store it" {
	config_without_password
	printf '%s' 'wonder land-42' | secret-tool store --label=msmtp \
		host localhost service smtp user alice
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
	secret-tool clear host localhost service smtp user alice
}

@test "password from the keyring under the old network-password schema" {
	config_without_password
	printf '%s' 'wonder land-42' | secret-tool store --label=old \
		user alice protocol smtp server localhost
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	secret-tool clear user alice protocol smtp server localhost
}

@test "no password anywhere and no terminal: 78, says where it looked" {
	config_without_password
	run --separate-stderr setsid "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 78
	assert_regex "$stderr" "no password: none in the config \(password, passwordeval\), none in the keyring for host localhost user alice, and no terminal to ask on; store one with: outbox --store-password -a default"
}

@test "no keyring at all: 75, and the cause is named (queue off)" {
	config_without_password "queue off"
	run --separate-stderr env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR=/nonexistent \
		setsid "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 75
	assert_regex "$stderr" "account default: localhost:$SUBMISSION_PORT: cannot read the keyring: no D-Bus session bus \(log in to a desktop session, or use passwordeval\)"
}

@test "the password is looked up before connecting" {
	config_without_password 'passwordeval "exit 1"' "port 9" "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 75
	assert_regex "$stderr" "passwordeval failed"
	[[ $stderr != *"cannot connect"* ]]
}

@test "the prompt reads the password from the terminal, not stdin" {
	config_without_password
	run --separate-stderr /usr/bin/python3 "$BATS_TEST_DIRNAME/lib/withtty.py" 'wonder land-42' \
		"$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_output --partial 'password for alice at localhost: '
	maildir_wait bob 1
}

@test "the password never shows: not in -v, not in errors, not in -P" {
	outbox_config "$RC"
	run "$OUTBOX" -v -C "$RC" --auth=plain bob@example.org <"$MSG"
	[[ $output != *"wonder land-42"* ]]
	run "$OUTBOX" -v -C "$RC" --auth=login bob@example.org <"$MSG"
	[[ $output != *"wonder land-42"* ]]
	[[ $output != *"$(printf 'wonder land-42' | base64)"* ]]
	run "$OUTBOX" -P -C "$RC"
	[[ $output != *"wonder land-42"* ]]
	sed -i 's/^password .*/password "wrong-secret-99"/' "$RC"
	run "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 77
	[[ $output != *"wrong-secret-99"* ]]
}

@test "AUTH PLAIN pipelined with the envelope: a wrong password still delivers nothing" {
	outbox_config "$RC" "auth plain"
	sed -i 's/^password .*/password "wrong"/' "$RC"
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 77
	assert_regex "$stderr" $'--> AUTH PLAIN \\[hidden\\]\n--- AUTH -> MAIL\n--> MAIL FROM'
	assert_regex "$stderr" 'authentication with PLAIN failed: 535'
	sleep 0.5
	assert_equal "$(maildir_count bob)" 0
}

@test "libgsasl is loaded only for AUTH, libsecret only for the keyring" {
	local ld=$BATS_TEST_TMPDIR/ld
	outbox_config "$RC"
	LD_DEBUG=files "$OUTBOX" -C "$RC" bob@example.org <"$MSG" 2>"$ld"
	assert grep -q 'file=libgsasl\.so\.18 .*dynamically loaded by' "$ld"
	refute grep -q 'libsecret' "$ld"
	maildir_wait bob 1
	# a session without AUTH (which this server refuses): neither
	run --separate-stderr env LD_DEBUG=files "$OUTBOX" -C "$RC" --auth=off \
	    --queue=off bob@example.org <"$MSG"
	assert_equal "$status" 69
	printf '%s\n' "$stderr" >"$ld"
	assert grep -q 'file=libgnutls\.so\.30 .*needed by' "$ld"
	assert grep -q 'RCPT TO:<bob@example.org>: 5' "$ld"
	refute grep -qE 'libgsasl|libsecret' "$ld"
}

@test "a libgsasl that cannot serve: 70, says which function, --version too" {
	local lib=$BATS_TEST_TMPDIR/lib
	mkdir -p "$lib"
	echo 'int not_gsasl;' >"$lib/fake.c"
	cc -shared -fPIC -o "$lib/libgsasl.so.18" "$lib/fake.c"
	outbox_config "$RC" "queue off"
	run --separate-stderr env LD_LIBRARY_PATH="$lib" "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 70
	assert_regex "$stderr" "^outbox: account default: localhost:$SUBMISSION_PORT: .*libgsasl lacks gsasl_init"
	run env LD_LIBRARY_PATH="$lib" "$OUTBOX" --version
	assert_success
	assert_line 'SASL: GNU SASL (libgsasl lacks gsasl_init) (loaded when a server asks for AUTH)'
	sleep 0.3
	assert_equal "$(maildir_count bob)" 0
}
