#!/usr/bin/env bats
# SCRAM's salted password kept in the keyring beside the password (RFC 5802
# section 5.1): the second session runs no PBKDF2, a stale or wrong key is
# never used and never loses a message, and nothing is kept for a password
# from the config or passwordeval.  carol's and dave's SCRAM credentials
# are stored with one salt on the test bed, alice's are salted anew at
# every login.

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
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'Subject: scram key\n\nhi\n' >"$MSG"
	maildir_clear bob
	carol_config
}

teardown() {
	secret-tool clear service smtp-scram 2>/dev/null || true
	for u in alice carol dave; do
		secret-tool clear host localhost service smtp user "$u" 2>/dev/null || true
	done
}

# carol with SCRAM-SHA-256 and her password in the keyring, plus $@.
carol_config() {
	outbox_config --no-password "$RC" "user carol" "auth scram-sha-256" \
		"queue off" "$@"
}

store_password() {
	"$OUTBOX" -C "$RC" --store-password <<<"$1" 2>/dev/null
}

# The kept items of user $1: "mech salt iter" per item, and the secret.
kept_items() {
	secret-tool search --all service smtp-scram user "$1" 2>&1 |
		sed -n 's/^attribute\.\(mech\|salt\|iter\) = //p' | paste -sd' '
}

kept_secret() {
	secret-tool lookup service smtp-scram user "$1" mech "$2"
}

# SaltedPassword := PBKDF2-HMAC(password, salt, iter), computed here.
pbkdf2() {
	/usr/bin/python3 -c 'import base64, hashlib, sys
print(hashlib.pbkdf2_hmac(sys.argv[1], sys.argv[2].encode(),
    base64.b64decode(sys.argv[3]), int(sys.argv[4])).hex())' "$@"
}

send() {
	run --separate-stderr "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
}

@test "the first SCRAM-SHA-256 session keeps the salted password, the second uses it" {
	store_password 'c4rol scram-7'
	send
	assert_success
	assert_regex "$stderr" 'SCRAM: salted password computed \(PBKDF2\) and kept'
	maildir_wait bob 1
	# One item: the hash, the server's salt and count as attributes...
	run kept_items carol
	assert_output 'SCRAM-SHA-256 ZIX4O6j8KzQd2bTRyW95vQ== 4096'
	# ...and the key itself as the secret, followed by the password's check.
	run kept_secret carol SCRAM-SHA-256
	assert_success
	key=$(pbkdf2 sha256 'c4rol scram-7' ZIX4O6j8KzQd2bTRyW95vQ== 4096)
	assert_regex "$output" "^$key [0-9a-f]{64}\$"
	# msmtp's lookup of the password does not find the key.
	run secret-tool lookup host localhost service smtp user carol
	assert_output 'c4rol scram-7'

	send
	assert_success
	assert_regex "$stderr" 'SCRAM: used the kept salted password \(no PBKDF2\)'
	refute_regex "$stderr" 'computed'
	maildir_wait bob 2
	run kept_items carol
	assert_output 'SCRAM-SHA-256 ZIX4O6j8KzQd2bTRyW95vQ== 4096'
}

@test "SCRAM-SHA-1 keeps a key of its own" {
	outbox_config --no-password "$RC" "user dave" "auth scram-sha-1" "queue off"
	store_password 'd4ve scram-1'
	send
	assert_success
	assert_regex "$stderr" 'SCRAM: salted password computed'
	run kept_secret dave SCRAM-SHA-1
	key=$(pbkdf2 sha1 'd4ve scram-1' PuMFgEFwWs0tQRao2OM/jQ== 4096)
	assert_regex "$output" "^$key [0-9a-f]{64}\$"
	send
	assert_success
	assert_regex "$stderr" 'SCRAM: used the kept salted password'
	maildir_wait bob 2
}

@test "the kept key never shows in -v, the log or the message" {
	store_password 'c4rol scram-7'
	carol_config "logfile $BATS_TEST_TMPDIR/log"
	send
	send
	assert_success
	assert_regex "$stderr" 'used the kept salted password'
	maildir_wait bob 2
	key=$(pbkdf2 sha256 'c4rol scram-7' ZIX4O6j8KzQd2bTRyW95vQ== 4096)
	refute_regex "$stderr" "$key|${key:0:16}"
	run grep -rc "${key:0:16}" "$BATS_TEST_TMPDIR/log" "$MTA_MAILDIR/bob"
	assert_failure
}

@test "--store-password and --forget-password drop the kept keys" {
	store_password 'c4rol scram-7'
	send
	assert_success
	run kept_items carol
	assert_output --partial SCRAM-SHA-256
	# The same password again: the keys go all the same.
	store_password 'c4rol scram-7'
	run kept_items carol
	assert_output ''
	send
	assert_success
	assert_regex "$stderr" 'SCRAM: salted password computed'
	run kept_items carol
	assert_output --partial SCRAM-SHA-256
	"$OUTBOX" -C "$RC" --forget-password 2>/dev/null
	run kept_items carol
	assert_output ''
}

@test "a password changed behind outbox's back: the old key is dropped, never used" {
	store_password 'c4rol scram-7'
	send
	assert_success
	maildir_wait bob 1
	maildir_clear bob
	# As a user would with secret-tool: the same item, another password.
	printf '%s' 'not carols' | secret-tool store --label=x xdg:schema org.outbox.Password \
		host localhost port "$SUBMISSION_PORT" service smtp user carol
	run secret-tool lookup host localhost service smtp user carol
	assert_output 'not carols'
	# The kept key would log in; the check against the password stops it.
	send
	assert_equal "$status" 77
	refute_regex "$stderr" 'used the kept'
	assert_regex "$stderr" '535'
	run kept_items carol
	assert_output ''
	run maildir_count bob
	assert_output 0
}

@test "a wrong kept key does not lose the message: dropped, the password used, the right key kept" {
	store_password 'c4rol scram-7'
	send
	assert_success
	# A damaged key whose check still matches the password.
	v=$(kept_secret carol SCRAM-SHA-256)
	printf '%064d %s' 0 "${v#* }" | secret-tool store --label=x xdg:schema org.outbox.ScramKey \
		host localhost port "$SUBMISSION_PORT" service smtp-scram user carol \
		mech SCRAM-SHA-256 salt ZIX4O6j8KzQd2bTRyW95vQ== iter 4096
	run kept_secret carol SCRAM-SHA-256
	assert_output --regexp '^0{64} '
	maildir_clear bob
	send
	assert_success
	assert_regex "$stderr" '<-- 535 '
	assert_regex "$stderr" 'the server refused the kept SCRAM key .*; dropped it, authenticating with the password'
	assert_regex "$stderr" 'SCRAM: salted password computed \(PBKDF2\) and kept'
	maildir_wait bob 1
	run maildir_count bob
	assert_output 1
	run kept_secret carol SCRAM-SHA-256
	assert_output --regexp "^$(pbkdf2 sha256 'c4rol scram-7' ZIX4O6j8KzQd2bTRyW95vQ== 4096) "
	# Without -v, nothing is said: the message went.
	printf '%064d %s' 0 "${v#* }" | secret-tool store --label=x xdg:schema org.outbox.ScramKey \
		host localhost port "$SUBMISSION_PORT" service smtp-scram user carol \
		mech SCRAM-SHA-256 salt ZIX4O6j8KzQd2bTRyW95vQ== iter 4096
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_equal "$stderr" ''
	maildir_wait bob 2
}

@test "a wrong password with no key kept is tried once" {
	store_password 'not carols'
	mta_log_mark
	send
	assert_equal "$status" 77
	refute_regex "$stderr" 'refused the kept'
	run kept_items carol
	assert_output ''
	mta_log_wait 'disconnect from'
	run mta_log_since_mark
	assert_equal "$(grep -c 'SASL SCRAM-SHA-256 authentication failed' <<<"$output")" 1
}

@test "a password from the config or passwordeval keeps nothing" {
	carol_config 'password "c4rol scram-7"'
	send
	send
	assert_success
	refute_regex "$stderr" 'SCRAM: (used|salted)'
	printf '%s' 'c4rol scram-7' | secret-tool store --label=x host localhost service pw user carol
	carol_config 'passwordeval "secret-tool lookup host localhost service pw user carol"'
	send
	send
	assert_success
	refute_regex "$stderr" 'SCRAM: (used|salted)'
	maildir_wait bob 4
	run kept_items carol
	assert_output ''
	secret-tool clear host localhost service pw user carol
}

@test "a server that salts anew at every login: one key kept, replaced each time" {
	outbox_config --no-password "$RC" "auth scram-sha-256" "queue off"
	store_password 'wonder land-42'
	for i in 1 2 3; do
		send
		assert_success
		assert_regex "$stderr" 'SCRAM: salted password computed'
	done
	maildir_wait bob 3
	run kept_items alice
	assert_regex "$output" '^SCRAM-SHA-256 [A-Za-z0-9+/=]+ 4096$'
}
