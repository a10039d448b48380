#!/usr/bin/env bats
# Credentials: the keyring managed by outbox itself, found from cron,
# passwordeval as users write it, OAuth2 bearer tokens, and no secret in
# any output.

load 'lib/testbed'
load 'lib/faultsmtp'
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
	outbox_config --no-password "$RC"
	maildir_clear bob
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'Subject: creds\n\nhi\n' >"$MSG"
}

teardown() {
	fault_stop
	"$OUTBOX" -C "$RC" --forget-password >/dev/null 2>&1 || true
	secret-tool clear host localhost service smtp user alice 2>/dev/null || true
}

@test "--store-password stores it (read from stdin), and sending uses it" {
	run --separate-stderr "$OUTBOX" -C "$RC" --store-password <<<'wonder land-42'
	assert_success
	assert_equal "$stderr" "outbox: stored the password for alice at localhost:$SUBMISSION_PORT (account default) in the keyring"
	# msmtp's lookup attributes find it too.
	run secret-tool lookup host localhost service smtp user alice
	assert_output 'wonder land-42'
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
	run "$OUTBOX" -C "$RC" -P
	assert_line --regexp '^    \(password source\) += keyring$'
}

@test "--store-password asks on the terminal without echo" {
	run /usr/bin/python3 "$BATS_TEST_DIRNAME/lib/withtty.py" 'wonder land-42' \
		/bin/sh -c 'exec "$0" -C "$1" --store-password </dev/tty' "$OUTBOX" "$RC"
	assert_success
	assert_output --partial "password for alice at localhost (account default): "
	refute_output --partial 'wonder land-42'
	run secret-tool lookup host localhost service smtp user alice
	assert_output 'wonder land-42'
}

@test "--store-password refuses when the config has a password" {
	outbox_config "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" --store-password <<<'x'
	assert_equal "$status" 78
	assert_regex "$stderr" "account default has a password in the config \($RC:[0-9]+\): remove it to use the keyring"
	outbox_config --no-password "$RC" 'passwordeval "echo x"'
	run --separate-stderr "$OUTBOX" -C "$RC" --store-password <<<'x'
	assert_equal "$status" 78
	assert_regex "$stderr" "takes its password from passwordeval"
}

@test "--forget-password removes it" {
	"$OUTBOX" -C "$RC" --store-password <<<'wonder land-42' 2>/dev/null
	run --separate-stderr "$OUTBOX" -C "$RC" --forget-password
	assert_success
	assert_regex "$stderr" '^outbox: removed the password for alice at localhost'
	run secret-tool lookup host localhost service smtp user alice
	assert_failure
	run --separate-stderr "$OUTBOX" -C "$RC" --forget-password
	assert_regex "$stderr" 'the keyring had no outbox item'
}

@test "cron: no session bus address, the keyring is found at XDG_RUNTIME_DIR/bus" {
	"$OUTBOX" -C "$RC" --store-password <<<'wonder land-42' 2>/dev/null
	sock=${DBUS_SESSION_BUS_ADDRESS#unix:path=}
	sock=${sock%%,*}
	mkdir -p "$BATS_TEST_TMPDIR/run"
	ln -s "$sock" "$BATS_TEST_TMPDIR/run/bus"
	run env -i PATH=/usr/bin:/bin HOME="$HOME" XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/run" \
		XDG_STATE_HOME="$XDG_STATE_HOME" setsid "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
}

@test "cron without any keyring: queued, with the cause named" {
	run --separate-stderr env -i PATH=/usr/bin:/bin HOME="$HOME" XDG_RUNTIME_DIR=/nonexistent \
		XDG_STATE_HOME="$XDG_STATE_HOME" setsid "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" 'cannot read the keyring: no D-Bus session bus|cannot read the keyring: '
	assert_regex "$stderr" 'queued as'
}

@test "cron without XDG_RUNTIME_DIR: the keyring is found at /run/user/UID/bus" {
	"$OUTBOX" -C "$RC" --store-password <<<'wonder land-42' 2>/dev/null
	sock=${DBUS_SESSION_BUS_ADDRESS#unix:path=}
	sock=${sock%%,*}
	# A mount namespace of its own: the real /run/user is not touched.
	run --separate-stderr unshare --mount /bin/bash -c '
		mount -t tmpfs tmpfs /run/user 2>/dev/null || { mkdir -p /run/user && mount -t tmpfs tmpfs /run/user; }
		mkdir -m 700 "/run/user/$(id -u)"
		ln -s "$1" "/run/user/$(id -u)/bus"
		exec env -i PATH=/usr/bin:/bin HOME="$HOME" XDG_STATE_HOME="$XDG_STATE_HOME" \
			setsid "$2" -C "$3" --queue=off bob@example.org' _ "$sock" "$OUTBOX" "$RC" <"$MSG"
	assert_success
	maildir_wait bob 1
}

@test "a locked keyring collection: the documented message, 75 or queued" {
	local kr=$BATS_TEST_TMPDIR/kr
	"$TESTBED_LIB/keyring.sh" start "$kr" >/dev/null 2>&1
	(
		. "$kr/keyring.env"
		secret-tool store --label=msmtp host localhost service smtp user alice <<<'wonder land-42'
		gdbus call --session --dest org.freedesktop.secrets --object-path /org/freedesktop/secrets \
			--method org.freedesktop.Secret.Service.Lock "['/org/freedesktop/secrets/collection/login']" >/dev/null
	)
	run --separate-stderr env DBUS_SESSION_BUS_ADDRESS="unix:path=$kr/bus" \
		"$OUTBOX" -C "$RC" --queue=off bob@example.org <"$MSG"
	local st=$status err=$stderr
	run --separate-stderr env DBUS_SESSION_BUS_ADDRESS="unix:path=$kr/bus" \
		"$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	"$TESTBED_LIB/keyring.sh" stop "$kr" >/dev/null 2>&1
	assert_equal "$st" 75
	assert_regex "$err" 'cannot read the keyring: the keyring is locked \(unlock it'
	assert_success
	assert_regex "$stderr" 'the keyring is locked.*queued as '
}

@test "no Secret Service provider on the session bus: the documented message, 75 or queued" {
	local d=$BATS_TEST_TMPDIR/bus
	mkdir -p "$d"
	cat >"$d/bus.conf" <<-EOF
	<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
	 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
	<busconfig><type>session</type><listen>unix:path=$d/bus</listen>
	<policy context="default"><allow send_destination="*" eavesdrop="true"/>
	<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>
	EOF
	local pid
	pid=$(dbus-daemon --config-file="$d/bus.conf" --fork --print-pid </dev/null 3>&-)
	run --separate-stderr env DBUS_SESSION_BUS_ADDRESS="unix:path=$d/bus" \
		"$OUTBOX" -C "$RC" --queue=off bob@example.org <"$MSG"
	local st=$status err=$stderr
	run --separate-stderr env DBUS_SESSION_BUS_ADDRESS="unix:path=$d/bus" \
		"$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	kill "$pid"
	assert_equal "$st" 75
	assert_regex "$err" 'cannot read the keyring: no Secret Service provider is running'
	assert_success
	assert_regex "$stderr" 'no Secret Service provider is running.*queued as '
}

@test "passwordeval with secret-tool, as msmtp users write it" {
	printf '%s' 'wonder land-42' | secret-tool store --label=msmtp host localhost service smtp user alice
	outbox_config --no-password "$RC" 'passwordeval "secret-tool lookup host localhost service smtp user alice"'
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	maildir_wait bob 1
}

@test "a passwordeval that hangs is stopped after the account's timeout" {
	outbox_config --no-password "$RC" 'passwordeval "sleep 30"' "timeout 1" "queue off"
	SECONDS=0
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 75
	assert_regex "$stderr" "account default: localhost:$SUBMISSION_PORT: passwordeval did not finish within 1 s"
	(( SECONDS < 10 ))
}

@test "auth external: the client certificate is the login" {
	fault_start - --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key" <<-'EOF'
		send 220 hi
		ehlo STARTTLS
		expect STARTTLS
		send 220 go
		starttls
		ehlo AUTH=EXTERNAL
		expect AUTH EXTERNAL =$
		send 235 ok
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		expect QUIT
		send 221 bye
	EOF
	printf 'account default
host localhost
port %s
tls on
tls_trust_file %s
auth external
tls_cert_file %s
tls_key_file %s
from alice@example.org
queue off
' 		"$FAULT_PORT" "$MTA_CA" "$MTA_DIR/pki/client.pem" "$MTA_DIR/pki/client.key" >"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	fault_wait
}

@test "passwordeval's stderr reaches the user; a failure is named" {
	outbox_config --no-password "$RC" 'passwordeval "echo gpg: decryption failed >&2; exit 2"' "queue off"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 75
	assert_regex "$stderr" 'gpg: decryption failed'
	assert_regex "$stderr" 'passwordeval failed \(exit status 2\): temporary'
}

@test "a passwordeval that cannot work (not found, not executable, syntax error): 78, not queued" {
	export XDG_STATE_HOME=$BATS_TEST_TMPDIR/state
	local cmd want
	for cmd in 'nosuch-command-4711 --decrypt' "$BATS_TEST_TMPDIR" 'if then fi'; do
		outbox_config --no-password "$RC" "passwordeval \"$cmd\""
		run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
		assert_equal "$status" 78
		assert_regex "$stderr" 'passwordeval failed \(exit status [0-9]+, (command not found|command not executable|shell syntax error)\): a configuration error; fix the command'
		[[ $stderr != *"queued as"* ]]
		run "$OUTBOX" -C "$RC" -bp
		assert_output 'Mail queue is empty'
	done
}

@test "a passwordeval that fails otherwise is temporary: queued, exit 0" {
	export XDG_STATE_HOME=$BATS_TEST_TMPDIR/state
	outbox_config --no-password "$RC" 'passwordeval "echo agent locked >&2; exit 2"'
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" 'passwordeval failed \(exit status 2\): temporary, it may work later'
	assert_regex "$stderr" 'queued as '
	run "$OUTBOX" -C "$RC" -bp
	refute_output 'Mail queue is empty'
}

@test "no secret in any output channel: stdout, stderr, -v, the log file" {
	outbox_config "$RC" "logfile $BATS_TEST_TMPDIR/log" "auth plain"
	run "$OUTBOX" -v -C "$RC" bob@example.org <"$MSG"
	assert_success
	run "$OUTBOX" -d -C "$RC" -P
	sed -i 's/^password .*/password "bad-secret-77"/' "$RC"
	run "$OUTBOX" -v -C "$RC" --auth=login bob@example.org <"$MSG"
	for f in "$BATS_TEST_TMPDIR/log"; do
		run cat "$f"
		refute_output --partial 'wonder land-42'
		refute_output --partial 'bad-secret-77'
		refute_output --partial "$(printf 'wonder land-42' | base64)"
	done
	run "$OUTBOX" -v -C "$RC" --auth=plain bob@example.org <"$MSG"
	refute_output --partial 'bad-secret-77'
	refute_output --partial "$(printf '\0alice\0bad-secret-77' | base64)"
}

oauth_server() {	# oauth_server MECH REPLY...
	fault_make_cert
	fault_start - --cert "$FAULT_CERT" --key "$FAULT_KEY" <<-EOF
		send 220 hi
		ehlo STARTTLS
		expect STARTTLS
		send 220 go
		starttls
		ehlo AUTH=XOAUTH2_OAUTHBEARER
		expect AUTH $1 .*
		$2
	EOF
	printf 'account default\nhost 127.0.0.1\nport %s\ntls on\ntls_certcheck off\nuser alice@example.org\nauth %s\nfrom alice@example.org\npasswordeval "echo ya29.TOKEN"\nqueue off\n' \
		"$FAULT_PORT" "${1,,}" >"$RC"
}

@test "XOAUTH2: the token goes in the initial response" {
	oauth_server XOAUTH2 $'send 235 ok\nmail_ok\nrcpt_ok\ndata_ok\ndata\nsend 250 ok\nexpect QUIT\nsend 221 bye'
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	fault_wait
	b64=$(sed -n 's/^AUTH XOAUTH2 \(.*\)\r$/\1/p' "$FAULT_LOG")
	assert_equal "$(printf '%s' "$b64" | base64 -d | cat -v)" 'user=alice@example.org^Aauth=Bearer ya29.TOKEN^A^A'
}

@test "OAUTHBEARER: a refused token is acknowledged, then 77" {
	oauth_server OAUTHBEARER $'send 334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\nexpect AQ==\nsend 535 5.7.8 invalid token\nexpect QUIT\nsend 221 bye'
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 77
	assert_regex "$stderr" 'authentication with OAUTHBEARER failed: 535 5.7.8 invalid token'
	fault_wait
	b64=$(sed -n 's/^AUTH OAUTHBEARER \(.*\)\r$/\1/p' "$FAULT_LOG")
	assert_equal "$(printf '%s' "$b64" | base64 -d | cat -v)" 'n,a=alice@example.org,^Aauth=Bearer ya29.TOKEN^A^A'
}

@test "a bearer token is never sent without TLS, to a server that offers it AUTH in clear" {
	local mech
	for mech in xoauth2 oauthbearer on; do
		fault_start - <<-'EOF'
		send 220 fault ESMTP
		ehlo AUTH=XOAUTH2_OAUTHBEARER_PLAIN PIPELINING
		wait_close
		EOF
		printf 'account default\nhost 127.0.0.1\nport %s\ntls off\nuser u\nauth %s\npassword ya29.SECRET-TOKEN\nfrom u@example.org\n' \
			"$FAULT_PORT" "$mech" >"$RC"
		chmod 600 "$RC"
		run --separate-stderr "$OUTBOX" -C "$RC" --queue=off bob@example.org <"$MSG"
		assert_failure
		fault_wait
		# The server was reached, and heard no AUTH and no token.
		run cat "$FAULT_LOG"
		assert_output --partial 'EHLO '
		refute_output --partial 'AUTH'
		refute_output --partial 'SECRET'
		refute_output --partial "$(printf 'user=u\001auth=Bearer ya29' | base64 | cut -c1-16)"
	done
}

token_server() {	# token_server TOKENS [args]: an HTTPS token endpoint
	/usr/bin/python3 "$BATS_TEST_DIRNAME/lib/tokenserver.py" --port-file "$BATS_TEST_TMPDIR/tok.port" \
		--log "$BATS_TEST_TMPDIR/tok.log" --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key" \
		--refresh 'refresh/TOKEN+1' --client-id cid --tokens "$@" </dev/null >/dev/null 2>&1 3>&- &
	TOK_PID=$!
	for i in $(seq 50); do [[ -s $BATS_TEST_TMPDIR/tok.port ]] && break; sleep 0.1; done
	TOK_PORT=$(cat "$BATS_TEST_TMPDIR/tok.port")
}

# An XOAUTH2 server on TLS with the test bed's certificate; $1: per-connection script tails
oauth_refresh_setup() {
	printf 'account default\nhost localhost\nport %s\ntls on\ntls_trust_file %s\nuser alice@example.org\nauth xoauth2\nfrom alice@example.org\noauth_token_url https://localhost:%s/token\noauth_client_id cid\noauth_tls_trust_file %s\npasswordeval "echo refresh/TOKEN+1"\nqueue off\n' \
		"$FAULT_PORT" "$MTA_CA" "$TOK_PORT" "$MTA_CA" >"$RC"
}

xoauth_ok() {	# the script of one connection that accepts token $1
	printf 'send 220 hi\nehlo STARTTLS\nexpect STARTTLS\nsend 220 go\nstarttls\nehlo AUTH=XOAUTH2\nexpect AUTH XOAUTH2 %s\nsend 235 ok\nmail_ok\nrcpt_ok\ndata_ok\ndata\nsend 250 ok\nexpect QUIT\nsend 221 bye\n' \
		"$(printf 'user=alice@example.org\001auth=Bearer %s\001\001' "$1" | base64 -w0)"
}

@test "OAuth2: the refresh token buys an access token, which is cached" {
	token_server AT-1,AT-2
	fault_start "$(xoauth_ok AT-1)" --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key"
	oauth_refresh_setup
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	fault_wait
	run cat "$BATS_TEST_TMPDIR/tok.log"
	assert_output 'grant_type=refresh_token&refresh_token=refresh%2FTOKEN%2B1&client_id=cid'
	cache=$XDG_CACHE_HOME/outbox/oauth-default
	assert_equal "$(stat -c %a "$cache")" 600
	# The second send uses the cached token: no new request.
	fault_start "$(xoauth_ok AT-1)" --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key"
	oauth_refresh_setup
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	fault_wait
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/tok.log")" 1
	kill "$TOK_PID"
}

@test "OAuth2: a refused cached token is refreshed and AUTH tried once more" {
	token_server AT-1,AT-2
	refused=$(printf 'send 220 hi\nehlo STARTTLS\nexpect STARTTLS\nsend 220 go\nstarttls\nehlo AUTH=XOAUTH2\nexpect AUTH XOAUTH2 .*\nsend 334 eyJzdGF0dXMiOiI0MDEifQ==\nexpect ^$\nsend 535 5.7.8 token expired\nexpect QUIT\nsend 221 bye')
	fault_start "$(xoauth_ok AT-1)" --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key"
	oauth_refresh_setup
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	fault_wait
	# Now the server refuses every token: outbox refreshes once (AT-2),
	# tries again on a new connection, and then gives up with 77.
	fault_start - --connections 2 --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key" <<<"$refused"
	oauth_refresh_setup
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 77
	assert_regex "$stderr" 'authentication with XOAUTH2 failed: 535 5.7.8 token expired'
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/tok.log")" 2
	grep -a -q "AUTH XOAUTH2 $(printf 'user=alice@example.org\001auth=Bearer AT-2\001\001' | base64 -w0)" "$FAULT_LOG"
	kill "$TOK_PID"
}

@test "OAuth2: invalid_grant with the queue off: 75, the fix named, the message not sent" {
	token_server AT-1
	fault_start "$(xoauth_ok AT-1)" --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key"
	oauth_refresh_setup
	sed -i 's|echo refresh/TOKEN+1|echo wrong|' "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 75
	assert_regex "$stderr" "account default: [^ ]+: the refresh token is no longer valid \(revoked, unused too long, or the password changed\): run outbox --authorize -a default; the message was not sent \(queue off\)"
	[[ $stderr != *wrong* ]]
	kill "$TOK_PID"
}

@test "OAuth2: invalid_grant with the queue on: the message is queued, the fix named, and sent once authorized again" {
	token_server AT-1
	FAULT_PORT=9
	oauth_refresh_setup
	sed -i -e 's|echo refresh/TOKEN+1|echo wrong|' -e 's/^queue off$/queue on/' "$RC"
	export XDG_STATE_HOME=$BATS_TEST_TMPDIR/state
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	assert_regex "$stderr" "run outbox --authorize -a default"
	assert_regex "$stderr" "queued as "
	run "$OUTBOX" -C "$RC" -bp
	assert_output --partial 'bob@example.org'
	# The user authorizes again (here: the right refresh token); the
	# next flush sends the message, once.
	fault_start "$(xoauth_ok AT-1)" --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key"
	sed -i -e 's|echo wrong|echo refresh/TOKEN+1|' -e "s/^port 9$/port $FAULT_PORT/" "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -q
	assert_success
	fault_wait
	run "$OUTBOX" -C "$RC" -bp
	assert_output 'Mail queue is empty'
	kill "$TOK_PID"
}

@test "OAuth2: the token endpoint's error text is sanitised" {
	# ESC, BEL and the C1 control CSI (U+009B), which some terminals obey.
	token_server AT-1 --error '{"error":"bad\u001b[31mred\u009b1m","error_description":"x\u0007y\u009b2J\u00e9"}'
	FAULT_PORT=9
	oauth_refresh_setup
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 77
	assert_regex "$stderr" 'HTTP 400 bad.\[31mred\?\?1m: x.y\?\?2J'$'\xc3\xa9'
	[[ $stderr != *$'\e'* && $stderr != *$'\a'* && $stderr != *$'\x9b'* ]]
	kill "$TOK_PID"
}

@test "OAuth2: the token endpoint ignores the mail account's relaxed TLS" {
	token_server AT-1
	FAULT_PORT=9
	oauth_refresh_setup
	# The mail server check is off, its trust file is the test CA; the
	# token endpoint gets neither: the system store refuses the test CA.
	sed -i -e '/^oauth_tls_trust_file/d' "$RC"
	printf 'tls_certcheck off\n' >>"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 76
	assert_regex "$stderr" 'OAuth token refresh: localhost: TLS certificate refused'
	[[ ! -s $BATS_TEST_TMPDIR/tok.log ]]
	kill "$TOK_PID"
}

@test "OAuth2: a token endpoint with a certificate for another name is refused" {
	/usr/bin/python3 "$BATS_TEST_DIRNAME/lib/tokenserver.py" --port-file "$BATS_TEST_TMPDIR/tok.port" \
		--log "$BATS_TEST_TMPDIR/tok.log" --cert "$MTA_DIR/pki/wrongname.pem" --key "$MTA_DIR/pki/wrongname.key" \
		--refresh 'refresh/TOKEN+1' --client-id cid --tokens AT-1 </dev/null >/dev/null 2>&1 3>&- &
	TOK_PID=$!
	for i in $(seq 50); do [[ -s $BATS_TEST_TMPDIR/tok.port ]] && break; sleep 0.1; done
	TOK_PORT=$(cat "$BATS_TEST_TMPDIR/tok.port")
	FAULT_PORT=9
	oauth_refresh_setup
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 76
	assert_regex "$stderr" 'OAuth token refresh: localhost: TLS certificate refused'
	[[ ! -s $BATS_TEST_TMPDIR/tok.log ]]
	kill "$TOK_PID"
}

@test "OAuth2: a token endpoint that is slow, huge, redirecting or plaintext: a clear error, no token sent" {
	FAULT_PORT=9
	# Slow: the account's timeout bounds the refresh.
	token_server AT-1 --delay 20
	oauth_refresh_setup
	printf 'timeout 2\n' >>"$RC"
	SECONDS=0
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 75
	assert_regex "$stderr" 'OAuth token refresh: .*(timed out|no answer)'
	(( SECONDS < 15 ))
	kill "$TOK_PID"; rm -f "$BATS_TEST_TMPDIR/tok.port"
	# Huge: the answer is cut off at its limit, not read to the end.
	token_server AT-1 --huge 200000
	oauth_refresh_setup
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 76
	assert_regex "$stderr" 'OAuth token refresh: localhost: the answer is larger than 65536 bytes'
	kill "$TOK_PID"; rm -f "$BATS_TEST_TMPDIR/tok.port"
	# Redirecting: not followed; the refresh token goes nowhere else.
	: >"$BATS_TEST_TMPDIR/tok.log"
	token_server AT-1 --redirect "https://localhost:9/elsewhere"
	oauth_refresh_setup
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 76
	assert_regex "$stderr" 'OAuth token refresh: .*302.*(redirect|not followed)'
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/tok.log")" 1
	kill "$TOK_PID"
	# Plaintext: refused before anything is sent.
	oauth_refresh_setup
	sed -i 's|^oauth_token_url https:|oauth_token_url http:|' "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 78
	assert_regex "$stderr" "https:// URL, not 'http://localhost"
	refute_regex "$stderr" 'refresh/TOKEN'
}

@test "OAuth2: a 4 KB access token goes after the 334, in the two-step form" {
	big=$(head -c 3072 /dev/urandom | base64 -w0)
	token_server "$big"
	b64=$(printf 'user=alice@example.org\001auth=Bearer %s\001\001' "$big" | base64 -w0)
	fault_start "$(printf 'send 220 hi\nehlo STARTTLS\nexpect STARTTLS\nsend 220 go\nstarttls\nehlo AUTH=XOAUTH2\nexpect ^AUTH XOAUTH2$\nsend 334 \nexpect %s$\nsend 235 ok\nmail_ok\nrcpt_ok\ndata_ok\ndata\nsend 250 ok\nexpect QUIT\nsend 221 bye\n' "$b64")" \
		--cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key"
	oauth_refresh_setup
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	fault_wait
	((${#big} == 4096))
	kill "$TOK_PID"
}

@test "XOAUTH2: a 504 to the one-line form, then the two-step form" {
	b64=$(printf 'user=alice@example.org\001auth=Bearer ya29.TOKEN\001\001' | base64 -w0)
	oauth_server XOAUTH2 "$(printf 'send 504 5.7.4 Unrecognized authentication type\nexpect ^AUTH XOAUTH2$\nsend 334 \nexpect %s$\nsend 235 ok\nmail_ok\nrcpt_ok\ndata_ok\ndata\nsend 250 ok\nexpect QUIT\nsend 221 bye' "$b64")"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	fault_wait
}

@test "OAUTHBEARER: the server's JSON status and scope are in the error" {
	chal=$(printf '{"status":"invalid_token","scope":"https://mail.example/ \\u001b","openid-configuration":"x"}' | base64 -w0)
	oauth_server OAUTHBEARER "$(printf 'send 334 %s\nexpect ^AQ==$\nsend 535 5.7.8 invalid\nexpect QUIT\nsend 221 bye' "$chal")"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 77
	assert_regex "$stderr" 'authentication with OAUTHBEARER failed: 535 5.7.8 invalid \(status invalid_token, scope https://mail.example/ .\)$'
	[[ $stderr != *$'\e'* ]]
	fault_wait
}

@test "OAuth2: a token cache others can write is ignored, with a warning" {
	token_server AT-1,AT-2
	fault_start - --connections 2 --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key" <<<"$(xoauth_ok AT-1)"
	oauth_refresh_setup
	run "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	cache=$XDG_CACHE_HOME/outbox/oauth-default
	printf '%s AT-1\n' $(( $(date +%s) + 3000 )) >"$cache"
	chmod 666 "$cache"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	# The cache was not trusted: a new token (AT-2) was fetched, which
	# this server refuses; what matters is the warning and the request.
	assert_regex "$stderr" "warning: the OAuth token cache file $cache is open to other users \(mode 666\); ignoring it"
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/tok.log")" 2
	kill "$TOK_PID"
}

@test "OAuth2: two processes at once refresh once; the second reuses the token" {
	token_server AT-1,AT-2 --delay 1
	fault_start - --connections 2 --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key" <<<"$(xoauth_ok AT-1)"
	oauth_refresh_setup
	rm -f "$XDG_CACHE_HOME/outbox/oauth-default"
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" &
	p1=$!
	"$OUTBOX" -C "$RC" bob@example.org <"$MSG" &
	p2=$!
	wait $p1
	wait $p2
	fault_wait
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/tok.log")" 1
	kill "$TOK_PID"
}

@test "OAuth2: a rotated refresh token replaces the one in the keyring" {
	token_server AT-1 --rotate 'refresh/NEW'
	fault_start "$(xoauth_ok AT-1)" --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key"
	oauth_refresh_setup
	sed -i '/^passwordeval/d' "$RC"
	"$OUTBOX" -C "$RC" --store-password <<<'refresh/TOKEN+1'
	rm -f "$XDG_CACHE_HOME/outbox/oauth-default"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	fault_wait
	port=$(sed -n 's/^port //p' "$RC")
	run secret-tool lookup host localhost port "$port" service smtp user alice@example.org
	assert_output 'refresh/NEW'
	kill "$TOK_PID"
}
