#!/usr/bin/env bats
# outbox --authorize against our own OAuth 2.0 authorization server
# (tests/lib/authserver.py, HTTPS with the test CA): the device grant, the
# authorization code with PKCE and a loopback redirect (the test plays the
# browser), client credentials; the refresh token lands in the keyring and
# later sends refresh (and rotate) it.

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
	MSG=$BATS_TEST_TMPDIR/msg
	printf 'Subject: oauth\n\nhi\n' >"$MSG"
	AS_LOG=$BATS_TEST_TMPDIR/as.log
}

teardown() {
	fault_stop
	[[ -z ${AS_PID:-} ]] || kill "$AS_PID" 2>/dev/null || true
	[[ -z ${OB_PID:-} ]] || kill "$OB_PID" 2>/dev/null || true
	secret-tool clear service smtp user alice@example.org 2>/dev/null || true
}

auth_server() {	# auth_server [args]: start authserver.py, set AS_PORT
	/usr/bin/python3 "$BATS_TEST_DIRNAME/lib/authserver.py" --port-file "$BATS_TEST_TMPDIR/as.port" \
		--log "$AS_LOG" --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key" \
		--client-id cid "$@" </dev/null >"$BATS_TEST_TMPDIR/as.err" 2>&1 3>&- &
	AS_PID=$!
	for i in $(seq 50); do [[ -s $BATS_TEST_TMPDIR/as.port ]] && break; sleep 0.1; done
	AS_PORT=$(cat "$BATS_TEST_TMPDIR/as.port")
}

config() {	# config [extra lines]: an account on port $1 using the server
	local port=$1
	shift
	{
		printf 'account default\nhost localhost\nport %s\ntls on\ntls_trust_file %s\n' "$port" "$MTA_CA"
		printf 'user alice@example.org\nauth xoauth2\nfrom alice@example.org\nqueue off\n'
		printf 'oauth_client_id cid\noauth_tls_trust_file %s\n' "$MTA_CA"
		printf 'oauth_token_url https://localhost:%s/token\n' "$AS_PORT"
		printf 'oauth_device_url https://localhost:%s/device\n' "$AS_PORT"
		printf 'oauth_auth_url https://localhost:%s/authorize\n' "$AS_PORT"
		printf '%s\n' "$@"
	} >"$RC"
	chmod 600 "$RC"
}

wait_for() {	# wait_for FILE ERE: until a line of FILE matches
	for i in $(seq 100); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	cat "$1" >&2
	return 1
}

# GET a URL with the test CA; prints the Location of a redirect, or the body.
get() {
	/usr/bin/python3 - "$1" "$MTA_CA" <<-'PY'
		import http.client, ssl, sys, urllib.parse
		u = urllib.parse.urlparse(sys.argv[1])
		if u.scheme == "https":
		    c = http.client.HTTPSConnection(u.hostname, u.port,
		        context=ssl.create_default_context(cafile=sys.argv[2]))
		else:
		    c = http.client.HTTPConnection(u.hostname, u.port)
		c.request("GET", u.path + ("?" + u.query if u.query else ""))
		r = c.getresponse()
		print(r.getheader("Location") or r.read().decode(), end="")
	PY
}

keyring_token() {
	secret-tool lookup service smtp user alice@example.org
}

@test "--authorize, device grant: the code is shown, the approval is polled, the refresh token stored" {
	auth_server
	config 587 'oauth_flow device'
	"$OUTBOX" -C "$RC" --authorize 2>"$BATS_TEST_TMPDIR/err" &
	OB_PID=$!
	wait_for "$BATS_TEST_TMPDIR/err" 'and enter the code'
	run cat "$BATS_TEST_TMPDIR/err"
	assert_line --regexp "^outbox: to authorize account default, open https://localhost:$AS_PORT/approve and enter the code [0-9A-F]{6}$"
	code=$(sed -n 's/.*enter the code //p' "$BATS_TEST_TMPDIR/err")
	sleep 1.5
	get "https://localhost:$AS_PORT/approve?user_code=$code"
	st=0
	wait "$OB_PID" || st=$?
	OB_PID=
	assert_equal "$st" 0
	run cat "$BATS_TEST_TMPDIR/err"
	assert_line "outbox: stored the refresh token for alice@example.org at localhost:587 (account default) in the keyring"
	run keyring_token
	assert_output --regexp '^RT\.'
	# It polled at least twice: pending, then the token.
	(($(grep -c 'grant-type%3Adevice_code' "$AS_LOG") >= 2))
}

@test "--authorize, device grant: slow_down stretches the interval" {
	auth_server --slow-down 1
	config 587 'oauth_flow device'
	"$OUTBOX" -C "$RC" --authorize 2>"$BATS_TEST_TMPDIR/err" &
	OB_PID=$!
	wait_for "$BATS_TEST_TMPDIR/err" 'and enter the code'
	code=$(sed -n 's/.*enter the code //p' "$BATS_TEST_TMPDIR/err")
	get "https://localhost:$AS_PORT/approve?user_code=$code"
	start=$SECONDS
	st=0
	wait "$OB_PID" || st=$?
	OB_PID=
	assert_equal "$st" 0
	# Polls at 1 s (slow_down), then 1 + 5 s later.
	(($(grep -c 'grant-type%3Adevice_code' "$AS_LOG") == 2))
	((SECONDS - start >= 5))
}

@test "--authorize, device grant: access_denied is a clear one-line error, 77" {
	auth_server --deny
	config 587 'oauth_flow device'
	run --separate-stderr "$OUTBOX" -C "$RC" --authorize
	assert_equal "$status" 77
	assert_regex "$stderr" 'account default: --authorize: the sign-in was refused \(access_denied\)$'
	run keyring_token
	assert_failure
}

@test "--authorize, browser: PKCE, state, the loopback redirect; then a send refreshes and rotates" {
	auth_server
	config 587 'oauth_flow browser'
	env -u DISPLAY -u WAYLAND_DISPLAY "$OUTBOX" -C "$RC" --authorize 2>"$BATS_TEST_TMPDIR/err" &
	OB_PID=$!
	wait_for "$BATS_TEST_TMPDIR/err" '^https://'
	url=$(grep '^https://' "$BATS_TEST_TMPDIR/err")
	[[ $url == *code_challenge_method=S256* && $url == *redirect_uri=http%3A%2F%2F127.0.0.1%3A* ]]
	loc=$(get "$url")
	[[ $loc == http://127.0.0.1:*code=* ]]
	# A redirect with another state is refused and ignored.
	bad=$(sed 's/state=[^&]*/state=forged/' <<<"$loc")
	run get "$bad"
	assert_output --partial 'wrong state'
	run get "$loc"
	assert_output --partial 'authorized'
	st=0
	wait "$OB_PID" || st=$?
	OB_PID=
	assert_equal "$st" 0
	first=$(keyring_token)
	[[ $first == RT.* ]]
	# A send: the access token from --authorize is cached; drop it, so
	# that the refresh token is used, and rotated.
	rm -f "$XDG_CACHE_HOME/outbox/oauth-default"
	fault_start - --cert "$MTA_DIR/pki/server.pem" --key "$MTA_DIR/pki/server.key" <<-'EOF'
		send 220 hi
		ehlo STARTTLS
		expect STARTTLS
		send 220 go
		starttls
		ehlo AUTH=XOAUTH2
		expect AUTH XOAUTH2 .*
		send 235 ok
		mail_ok
		rcpt_ok
		data_ok
		data
		send 250 ok
		expect QUIT
		send 221 bye
	EOF
	config "$FAULT_PORT" 'oauth_flow browser'
	"$OUTBOX" -C "$RC" --store-password <<<"$first"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_success
	fault_wait
	run secret-tool lookup host localhost port "$FAULT_PORT" service smtp user alice@example.org
	assert_output --regexp '^RT\.'
	refute_output "$first"
	grep -q "refresh_token=$first" "$AS_LOG"
}

@test "--authorize, browser: the provider's error comes back as a clear error" {
	auth_server --deny
	config 587 'oauth_flow browser'
	env -u DISPLAY -u WAYLAND_DISPLAY "$OUTBOX" -C "$RC" --authorize 2>"$BATS_TEST_TMPDIR/err" &
	OB_PID=$!
	wait_for "$BATS_TEST_TMPDIR/err" '^https://'
	get "$(get "$(grep '^https://' "$BATS_TEST_TMPDIR/err")")" >/dev/null
	st=0
	wait "$OB_PID" || st=$?
	OB_PID=
	assert_equal "$st" 77
	run cat "$BATS_TEST_TMPDIR/err"
	assert_line --partial 'the provider sent back an error instead of a code: access_denied'
}

@test "--authorize, client credentials: checked, nothing to store; sends get tokens with the secret" {
	auth_server --client-secret s3cr3t
	config 587 'oauth_flow client_credentials' 'oauth_client_secret s3cr3t' 'oauth_scope https://outlook.office365.com/.default'
	run --separate-stderr "$OUTBOX" -C "$RC" --authorize
	assert_success
	assert_equal "$stderr" "outbox: account default: the client credentials work; there is no refresh token to keep"
	grep -q 'grant_type=client_credentials&client_id=cid&client_secret=s3cr3t&scope=https' "$AS_LOG"
	sed -i 's/^oauth_client_secret .*/oauth_client_secret wrong/' "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" --authorize
	assert_equal "$status" 78
	assert_regex "$stderr" 'HTTP 401 invalid_client'
}

@test "--authorize says what is missing: no client id" {
	auth_server
	config 587
	sed -i '/^oauth_client_id/d' "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" --authorize
	assert_equal "$status" 78
	assert_regex "$stderr" "account default: OAuth 2.0 needs oauth_client_id: register a client with the provider"
}

@test "--authorize with passwordeval: outbox says where the token goes" {
	auth_server
	config 587 'oauth_flow device' 'passwordeval "cat ~/.token"'
	"$OUTBOX" -C "$RC" --authorize >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	OB_PID=$!
	wait_for "$BATS_TEST_TMPDIR/err" 'and enter the code'
	code=$(sed -n 's/.*enter the code //p' "$BATS_TEST_TMPDIR/err")
	get "https://localhost:$AS_PORT/approve?user_code=$code"
	st=0
	wait "$OB_PID" || st=$?
	OB_PID=
	assert_equal "$st" 0
	run cat "$BATS_TEST_TMPDIR/err"
	assert_line --regexp "^outbox: account default takes its refresh token from passwordeval \(.*/rc:[0-9]+\): put the token printed on standard output there"
	run cat "$BATS_TEST_TMPDIR/out"
	assert_output --regexp '^RT\.'
}

@test "oauth_provider microsoft: endpoints with the tenant, scope, host, mechanism, device flow" {
	printf 'account work\nuser me@contoso.com\noauth_provider microsoft\noauth_tenant contoso.com\noauth_client_id abc\n' >"$RC"
	run "$OUTBOX" -C "$RC" -a work -P
	assert_success
	assert_line --regexp '^    host += smtp\.office365\.com  \(default\)$'
	assert_line --regexp '^    auth += xoauth2  \(default\)$'
	assert_line --regexp '^    oauth_token_url += https://login\.microsoftonline\.com/contoso\.com/oauth2/v2\.0/token  \(default\)$'
	assert_line --regexp '^    oauth_device_url += https://login\.microsoftonline\.com/contoso\.com/oauth2/v2\.0/devicecode  \(default\)$'
	assert_line --regexp '^    oauth_scope += https://outlook\.office\.com/SMTP\.Send offline_access  \(default\)$'
	assert_line --regexp '^    oauth_flow += device  \(default\)$'
	# App-only: the .default scope; the secret is required.
	printf 'oauth_flow client_credentials\n' >>"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -a work -P
	assert_equal "$status" 78
	assert_regex "$stderr" 'oauth_flow client_credentials needs oauth_client_secret'
	printf 'oauth_client_secret x\n' >>"$RC"
	chmod 600 "$RC"
	run "$OUTBOX" -C "$RC" -a work -P
	assert_line --regexp '^    oauth_scope += https://outlook\.office365\.com/\.default  \(default\)$'
}

@test "oauth_provider google: Google's endpoints, the mail scope, the browser flow; values set by hand win" {
	printf 'account g\nuser me@gmail.com\noauth_provider google\noauth_client_id abc\noauth_scope x\nhost smtp.example\n' >"$RC"
	run "$OUTBOX" -C "$RC" -a g -P
	assert_success
	assert_line --regexp '^    host += smtp\.example  \('
	assert_line --regexp '^    oauth_token_url += https://oauth2\.googleapis\.com/token  \(default\)$'
	assert_line --regexp '^    oauth_auth_url += https://accounts\.google\.com/o/oauth2/v2/auth  \(default\)$'
	assert_line --regexp '^    oauth_scope += x  \('
	assert_line --regexp '^    oauth_flow += browser  \(default\)$'
	printf 'oauth_provider yahoo\n' >>"$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -a g -P
	assert_equal "$status" 78
	assert_regex "$stderr" 'oauth_provider: google or microsoft, not .yahoo.'
}

@test "real Postfix + Dovecot: a 3 KB token from --authorize, checked by introspection, the message arrives byte for byte" {
	maildir_clear bob
	AS_PORT=$AUTHSERVER_PORT
	AS_LOG=$MTA_DIR/log/authserver.log
	for mech in xoauth2 oauthbearer; do
		config "$OAUTH_PORT" 'oauth_flow device' "auth $mech"
		sed -i -e 's/^user .*/user alice/' -e 's/^oauth_client_id .*/oauth_client_id outbox-test/' "$RC"
		"$OUTBOX" -C "$RC" --authorize 2>"$BATS_TEST_TMPDIR/err" &
		OB_PID=$!
		wait_for "$BATS_TEST_TMPDIR/err" 'and enter the code'
		code=$(sed -n 's/.*enter the code //p' "$BATS_TEST_TMPDIR/err")
		get "https://localhost:$AS_PORT/approve?user_code=$code" >/dev/null
		st=0
		wait "$OB_PID" || st=$?
		OB_PID=
		assert_equal "$st" 0
		printf 'From: alice@example.org\nTo: bob@example.org\nDate: Mon, 7 Dec 2026 17:00:00 +0000\nMessage-ID: <b.%s@example.org>\nSubject: bearer\n\nline one\n\n.dot\n' "$mech" >"$MSG"
		mta_log_mark
		run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
		assert_success
		maildir_wait bob 1
		cmp "$MSG" <(maildir_last bob)
		mta_log_wait "sasl_method=${mech^^}, sasl_username=alice"
		maildir_clear bob
		rm -f "$XDG_CACHE_HOME/outbox/oauth-default"
		secret-tool clear host localhost port "$OAUTH_PORT" service smtp user alice 2>/dev/null || true
	done
	# A token the server never issued is refused by introspection: 77.
	config "$OAUTH_PORT" 'auth xoauth2' 'password AT.forged'
	sed -i -e 's/^user .*/user alice/' -e '/^oauth_token_url/d' "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" bob@example.org <"$MSG"
	assert_equal "$status" 77
	assert_regex "$stderr" 'authentication with XOAUTH2 failed: 535'
}

@test "--configure offers --authorize for Gmail and Microsoft addresses, with no DNS" {
	run "$OUTBOX" --configure me@gmail.com
	assert_success
	assert_line 'oauth_provider google'
	assert_line '#   outbox --authorize -a gmail.com'
	run "$OUTBOX" --configure me@contoso.onmicrosoft.com
	assert_success
	assert_line 'oauth_provider microsoft'
	assert_line '#   outbox --authorize -a contoso.onmicrosoft.com'
	# The printed block is a working account once the id is filled in.
	"$OUTBOX" --configure me@outlook.com | sed 's/YOUR-CLIENT-ID/abc/' >"$RC"
	run "$OUTBOX" -C "$RC" -a outlook.com -P
	assert_success
	assert_line --regexp '^    host += smtp\.office365\.com  \(default\)$'
}
