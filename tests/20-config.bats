#!/usr/bin/env bats
# The config file (msmtprc syntax) and the command line: every mistake is a
# one-line error with FILE:LINE or the option, and the right exit code.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
bats_require_minimum_version 1.5.0

setup() {
	OUTBOX=${OUTBOX:-$BATS_TEST_DIRNAME/../outbox}
	export HOME=$BATS_TEST_TMPDIR/home XDG_CONFIG_HOME= OUTBOX_SYSCONF= OUTBOX_NO_RETRIER=1
	mkdir -p "$HOME"
	RC=$BATS_TEST_TMPDIR/rc
}

# write the config from stdin, mode 0600
rc() {
	cat >"$RC"
	chmod 600 "$RC"
}

bad() {	# bad LINE_NO MESSAGE: -P must fail with 78 and "RC:LINE: MESSAGE"
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_equal "$status" 78
	assert_equal "$stderr" "outbox: $RC:$1: $2"
}

@test "unknown command: 78 with file:line" {
	printf 'account a\nhost h\n\nbogus 1\n' | rc
	bad 4 "unknown command 'bogus'"
}

@test "missing value" {
	printf 'account a\nhost\n' | rc
	bad 2 "host needs a value"
}

@test "malformed values are named" {
	printf 'account a\nhost h\nport 99999\n' | rc
	bad 3 "invalid value '99999' for port"
	printf 'account a\nhost h\ntls maybe\n' | rc
	bad 3 "invalid value 'maybe' for tls"
	printf 'account a\nhost h\ntimeout soon\n' | rc
	bad 3 "invalid value 'soon' for timeout"
	printf 'account a\nhost h\nauth magic\n' | rc
	bad 3 "invalid value 'magic' for auth"
	printf 'account a\nhost h\ndsn_notify sometimes\n' | rc
	bad 3 "invalid value 'sometimes' for dsn_notify"
}

@test "queue times take a unit; a bad one is named: file:line and 78, or 64 as an option" {
	printf 'account a\nhost h\nqueue_retry 5x\n' | rc
	bad 3 "invalid value '5x' for queue_retry: expected a time such as 30s, 5m, 4h or 5d"
	printf 'account a\nhost h\n\nqueue_warn 0\n' | rc
	bad 4 "queue_warn: the time must be more than 0 (or off)"
	printf 'account a\nhost h\nqueue_lifetime 2w\n' | rc
	bad 3 "invalid value '2w' for queue_lifetime: expected a time such as 30s, 5m, 4h or 5d (a bare number is days)"
	printf 'account a\nhost h\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -a a --queue-retry-max=soon -P
	assert_equal "$status" 64
	assert_regex "$stderr" "invalid value 'soon' for queue_retry_max"
}

@test "queue times: defaults, units as written, a bare lifetime in days" {
	printf 'account a\nhost h\n' | rc
	run "$OUTBOX" -C "$RC" -a a -P
	assert_success
	assert_line --regexp '^    queue_lifetime += 5d  \(default\)$'
	assert_line --regexp '^    queue_retry += 5m  \(default\)$'
	assert_line --regexp '^    queue_retry_max += 4h  \(default\)$'
	assert_line --regexp '^    queue_warn += 4h  \(default\)$'
	printf 'account a\nhost h\nqueue_lifetime 3\nqueue_retry 30s\nqueue_warn off\n' | rc
	run "$OUTBOX" -C "$RC" -a a --queue-retry-max=90m -P
	assert_success
	assert_line --regexp "^    queue_lifetime += 3d  \\($RC:3\\)$"
	assert_line --regexp "^    queue_retry += 30s  \\($RC:4\\)$"
	assert_line --regexp "^    queue_warn += off  \\($RC:5\\)$"
	assert_line --regexp '^    queue_retry_max += 90m  \(command line\)$'
}

@test "a bad fingerprint says what it expects" {
	printf 'account a\nhost h\ntls_fingerprint AB:CD\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_equal "$status" 78
	assert_regex "$stderr" "^outbox: $RC:3: tls_fingerprint: expected a SHA-256 fingerprint"
}

@test "unknown parent account" {
	printf 'account a : nope\nhost h\n' | rc
	bad 1 "account a: unknown parent account 'nope'"
}

@test "duplicate account" {
	printf 'account a\nhost h\naccount b\nhost i\naccount a\n' | rc
	bad 5 "account a is already defined at line 1"
}

@test "unterminated quote" {
	printf 'account a\nhost h\npassword "abc\n' | rc
	bad 3 "unterminated quoted argument"
}

@test "commands before any account or defaults line make the default account, as msmtp" {
	printf 'host smtp.example.org\nport 2525\nfrom a@example.org\n\naccount other\nhost other.example\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_success
	assert_line "account default ($RC:1)"
	assert_line --regexp "^    host += smtp\.example\.org  \($RC:1\)$"
	assert_line --regexp "^    port += 2525  \($RC:2\)$"
	# They are not defaults: the next account keeps its own port.
	run --separate-stderr "$OUTBOX" -C "$RC" -P -a other
	assert_success
	assert_line --regexp "^    port += 587  \(default\)$"
	# And "account default" may not follow them in the same file.
	printf 'host h\naccount default\nhost i\n' | rc
	bad 2 "account default is already defined at line 1"
}

@test "ntlmdomain with another mechanism changes nothing: accepted; auth ntlm is refused" {
	printf 'account a\nhost h\nauth plain\nuser u\nntlmdomain CORP\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -P -a a
	assert_success
	assert_line --regexp "^    ntlmdomain += CORP  \($RC:5\)$"
	printf 'account a\nhost h\nauth ntlm\nntlmdomain CORP\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -P -a a
	assert_equal "$status" 78
	assert_regex "$stderr" "^outbox: $RC:3: .*ntlm"
}

@test "old msmtp spellings: connect_timeout, tls_nostarttls, undisclosed_recipients" {
	printf 'account a\nhost h\nconnect_timeout 12\ntls_nostarttls\nundisclosed_recipients on\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -P -a a
	assert_success
	assert_line --regexp "^    timeout += 12  \($RC:3\)$"
	assert_line --regexp "^    tls_starttls += off  \($RC:4\)$"
	assert_line --regexp "^    set_to_header += undisclosed_recipients  \($RC:5\)$"
}

# Every command of msmtp 1.8.34's manual (and its old spellings), with a
# value: each is taken, or refused with its reason at file:line.
@test "every msmtp 1.8.34 command is taken or refused with a reason" {
	local c out
	while IFS='|' read -r c want; do
		printf 'account a\nhost h.example\n%s\n' "${c//;/$'\n'}" | rc
		run --separate-stderr "$OUTBOX" -C "$RC" -P -a a
		if [[ -z $want ]]; then
			[[ $status == 0 ]] || { echo "refused: $c: $stderr"; return 1; }
		else
			[[ $status == 78 && $stderr == *"$RC:3: "*"$want"* ]] ||
				{ echo "not refused as wanted: $c: $status $stderr"; return 1; }
		fi
	done <<-'LIST'
		port 25|
		source_ip 127.0.0.1|
		timeout 30|
		protocol smtp|
		domain client.example|
		auth on;user u|
		user u|
		password secret|
		passwordeval echo secret|
		ntlmdomain CORP|
		tls on|
		tls_starttls off|
		tls_trust_file /etc/hostname|
		tls_crl_file /etc/hostname|
		tls_fingerprint 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF|
		tls_certcheck off|
		tls_priorities NORMAL|
		tls_host_override other.example|
		tls_min_dh_prime_bits 2048|
		from a@example.org|
		from %U@%H|
		from %F|
		from_full_name Alice|
		allow_from_override off|
		dsn_notify failure,delay|
		dsn_return headers|
		set_from_header on|
		set_date_header off|
		set_msgid_header off|
		set_to_header on|
		set_to_header undisclosed_recipients|
		remove_bcc_headers off|
		logfile /dev/null|
		logfile_time_format none|
		syslog LOG_MAIL|
		aliases /dev/null|
		auto_from on|
		maildomain example.org|
		undisclosed_recipients on|
		keepbcc on|
		add_missing_from_header off|
		add_missing_date_header off|
		connect_timeout 10|
		tls_nocertcheck|
		tls_nostarttls|
		tls_force_sslv3 off|
		tls_force_sslv3 on|SSLv3 is broken
		auth digest-md5|auth digest-md5 is not supported: DIGEST-MD5 is obsolete (RFC 6331)
		auth ntlm|auth ntlm is not supported: NTLM is undocumented and unsafe
		tls_cert_file /etc/hostname;tls_key_file /etc/hostname|
	LIST
}

@test "recognised msmtp commands that outbox lacks are errors, not ignored" {
	printf 'account a\nhost h\nauth ntlm\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_equal "$status" 78
	assert_regex "$stderr" ":3: auth ntlm is not supported"
	printf 'account a\nhost h\nprotocol smtps\n' | rc
	bad 3 "invalid value 'smtps' for protocol"
}

@test "a password in a file others can read: 78 with the fix" {
	printf 'account default\nhost h\npassword x\n' >"$RC"
	chmod 640 "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_equal "$status" 78
	assert_equal "$stderr" "outbox: $RC: contains a password but others can read it; run: chmod 600 $RC"
	chmod 600 "$RC"
	run "$OUTBOX" -C "$RC" -P
	assert_success
}

@test "without a password the file may be readable" {
	printf 'account default\nhost h\n' >"$RC"
	chmod 644 "$RC"
	run "$OUTBOX" -C "$RC" -P
	assert_success
}

@test "a missing -C file: 78" {
	run --separate-stderr "$OUTBOX" -C "$BATS_TEST_TMPDIR/none" -P
	assert_equal "$status" 78
	assert_equal "$stderr" "outbox: $BATS_TEST_TMPDIR/none: No such file or directory"
}

@test "no config anywhere: 78 and where to put one" {
	run --separate-stderr "$OUTBOX" -P
	assert_equal "$status" 78
	assert_regex "$stderr" "no configuration file: create ~/.config/outbox/config"
}

@test "an unknown -a account: 78" {
	printf 'account a\nhost h\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -a zz -P
	assert_equal "$status" 78
	assert_equal "$stderr" "outbox: no account 'zz' in $RC"
}

@test "auth without a user" {
	printf 'account default\nhost h\nauth on\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_equal "$status" 78
	assert_regex "$stderr" "account default: auth is on but no user is given"
}

@test "an msmtprc as msmtp users write it is read unchanged" {
	cat >"$HOME/.msmtprc" <<-'EOF'
		# Set default values for all following accounts.
		defaults
		auth           on
		tls            on
		tls_trust_file /etc/ssl/certs/ca-certificates.crt
		logfile        ~/.msmtp.log

		# Gmail
		account        gmail
		host           smtp.gmail.com
		port           587
		from           username@gmail.com
		user           username
		password       "pass word with \"quotes\""

		account        work : gmail
		host           mail.example.com
		from           "me@example.com"

		# Set a default account
		account default : gmail
	EOF
	chmod 600 "$HOME/.msmtprc"
	run "$OUTBOX" -P
	assert_success
	assert_line --regexp '^account default \(.*/\.msmtprc:21\)$'
	assert_line --regexp '^    host += smtp\.gmail\.com  \(.*\.msmtprc:10\)$'
	assert_line --regexp '^    logfile += '"$HOME"'/\.msmtp\.log '
	assert_line --regexp '^    password += \*  '
	refute_output --partial 'quotes'
	run "$OUTBOX" -a work -P
	assert_line --regexp '^    host += mail\.example\.com  \(.*:17\)$'
	assert_line --regexp '^    from += me@example\.com '
	assert_line --regexp '^    user += username  \(.*:13\)$'
}

@test "the outbox config wins over ~/.outboxrc and ~/.msmtprc" {
	printf 'account default\nhost from-msmtprc\n' >"$HOME/.msmtprc"
	run "$OUTBOX" -P
	assert_line --regexp 'host += from-msmtprc'
	printf 'account default\nhost from-outboxrc\n' >"$HOME/.outboxrc"
	run "$OUTBOX" -P
	assert_line --regexp 'host += from-outboxrc'
	mkdir -p "$HOME/.config/outbox"
	printf 'account default\nhost from-xdg\n' >"$HOME/.config/outbox/config"
	run "$OUTBOX" -P
	assert_line --regexp 'host += from-xdg'
}

@test "the system file gives defaults and accounts under the user's" {
	printf 'defaults\nport 2525\naccount sys\nhost sys.example\naccount shared\nhost old\n' \
		>"$BATS_TEST_TMPDIR/system"
	export OUTBOX_SYSCONF=$BATS_TEST_TMPDIR/system
	printf 'account shared\nhost new\naccount default : sys\n' | rc
	run "$OUTBOX" -C "$RC" -P
	assert_success
	assert_line --regexp 'host += sys\.example'
	assert_line --regexp 'port += 2525  \(.*system:2\)'
	run "$OUTBOX" -C "$RC" -a shared -P
	assert_line --regexp 'host += new'
}

@test "-P shows where each value came from, and the command line wins" {
	printf 'account default\nhost h.example\nport 587\nuser u\npassword secret-value\n' | rc
	run "$OUTBOX" -C "$RC" --port=2587 -P
	assert_success
	assert_line --regexp "^    port += 2587  \(command line\)$"
	assert_line --regexp "^    host += h\.example  \($RC:2\)$"
	assert_line --regexp "^    timeout += 60  \(default\)$"
	assert_line --regexp "^    \(password source\) += password \(config\)$"
	refute_output --partial 'secret-value'
}

@test "safer defaults than msmtp, and -P says so" {
	printf 'account default\nhost smtp.example.org\n' | rc
	run "$OUTBOX" -C "$RC" -P
	assert_line --regexp '^    tls += on  \(default\)$'
	assert_line --regexp '^    port += 587  \(default\)$'
	assert_line '    tls = on (msmtp: off)'
	printf 'account default\nhost smtp.example.org\ntls_starttls off\n' | rc
	run "$OUTBOX" -C "$RC" -P
	assert_line --regexp '^    port += 465  \(default\)$'
	printf 'account default\nhost localhost\n' | rc
	run "$OUTBOX" -C "$RC" -P
	assert_line --regexp '^    tls += off  \(default\)$'
	assert_line --regexp '^    port += 25  \(default\)$'
}

@test "loopback is an address or localhost: a name that starts with 127. gets TLS" {
	for h in 127.0.0.1 127.1.2.3 ::1 '[::1]' localhost LOCALHOST; do
		printf 'account default\nhost %s\n' "$h" | rc
		run "$OUTBOX" -C "$RC" -P
		assert_line --regexp '^    tls += off  \(default\)$'
	done
	for h in 127.mx.example.net 127.0.0.1.example.net localhost.example.net \
	    localhost.localdomain 128.0.0.1 ::2 ::ffff:10.0.0.1; do
		printf 'account default\nhost %s\n' "$h" | rc
		run "$OUTBOX" -C "$RC" -P
		assert_line --regexp '^    tls += on  \(default\)$'
	done
}

@test "old msmtp spellings still work" {
	printf 'account default\nhost h\ntls_nocertcheck\nkeepbcc on\nadd_missing_date_header off\ntls_force_sslv3 off\n' | rc
	run "$OUTBOX" -C "$RC" -P
	assert_success
	assert_line --regexp '^    tls_certcheck += off  \(.*:3\)$'
	assert_line --regexp '^    remove_bcc_headers += off  \(.*:4\)$'
	assert_line --regexp '^    set_date_header += off  \(.*:5\)$'
}

@test "an empty argument means on; quotes keep spaces" {
	printf 'account default\nhost h\ntls\nauth\nuser "  spaced name "\n' | rc
	run "$OUTBOX" -C "$RC" -P
	assert_line --regexp '^    tls += on '
	assert_line --regexp '^    auth += on '
	assert_line --regexp '^    user +=   spaced name   \('
}

@test "eval reads config lines from a command" {
	printf 'account default\neval echo host evalhost.example; echo port 2500\n' | rc
	run "$OUTBOX" -C "$RC" -P
	assert_success
	assert_line --regexp '^    host += evalhost\.example  \(.*:2\)$'
	assert_line --regexp '^    port += 2500 '
}

@test "eval and passwordeval in a file others can write, or another user's: 78 before anything runs" {
	M=$BATS_TEST_TMPDIR/ran
	printf 'account default\nhost h\neval touch %s\n' "$M" >"$RC"
	chmod 620 "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_equal "$status" 78
	assert_equal "$stderr" "outbox: $RC:3: eval runs a command, but others can write $RC; run: chmod go-w $RC"
	[ ! -e "$M" ]
	chmod 602 "$RC"
	run -78 "$OUTBOX" -C "$RC" -P
	[ ! -e "$M" ]
	# Readable is fine: a command is no secret.
	chmod 644 "$RC"
	run "$OUTBOX" -C "$RC" -P
	assert_success
	[ -e "$M" ]
	rm "$M"
	# Neither the user's nor root's.
	chown 65534 "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_equal "$status" 78
	assert_equal "$stderr" "outbox: $RC:3: eval runs a command, but $RC is owned by another user (uid 65534)"
	[ ! -e "$M" ]
	chown 0 "$RC"
	printf 'account default\nhost h\nuser u\npasswordeval echo x\n' >"$RC"
	chmod 664 "$RC"
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_equal "$status" 78
	assert_equal "$stderr" "outbox: $RC:4: passwordeval runs a command, but others can write $RC; run: chmod go-w $RC"
}

@test "the system file and the default user file are checked the same way" {
	M=$BATS_TEST_TMPDIR/ran
	export OUTBOX_SYSCONF=$BATS_TEST_TMPDIR/system.conf
	printf 'defaults\neval touch %s\n' "$M" >"$OUTBOX_SYSCONF"
	chmod 666 "$OUTBOX_SYSCONF"
	printf 'account default\nhost h\n' >"$HOME/.outboxrc"
	run --separate-stderr "$OUTBOX" -P
	assert_equal "$status" 78
	assert_regex "$stderr" "system\.conf:2: eval runs a command, but others can write"
	[ ! -e "$M" ]
	export OUTBOX_SYSCONF=
	printf 'account default\nhost h\neval touch %s\n' "$M" >"$HOME/.outboxrc"
	chmod 666 "$HOME/.outboxrc"
	run --separate-stderr "$OUTBOX" -P
	assert_equal "$status" 78
	assert_regex "$stderr" "\.outboxrc:3: eval runs a command, but others can write"
	[ ! -e "$M" ]
}

@test "a very long line is fine" {
	long=$(head -c 20000 /dev/zero | tr '\0' 'x')
	printf 'account default\nhost h\nfrom_full_name %s\n' "$long" | rc
	run "$OUTBOX" -C "$RC" -P
	assert_success
}

@test "control characters in a value that reaches the wire: 78" {
	printf 'account default\nhost h\nfrom "a@b\x01c"\n' | rc
	bad 3 "from: the value contains control characters"
}

@test "usage: an unknown option is named, exit 64" {
	run --separate-stderr "$OUTBOX" -Z
	assert_equal "$status" 64
	assert_equal "${stderr_lines[0]}" "outbox: unknown option -Z"
	run --separate-stderr "$OUTBOX" --frobnicate
	assert_equal "$status" 64
	assert_equal "${stderr_lines[0]}" "outbox: unknown option --frobnicate"
	run --separate-stderr "$OUTBOX" -f
	assert_equal "$status" 64
	assert_equal "${stderr_lines[0]}" "outbox: option -f needs a value"
}

@test "a recipient that looks like an option is refused, unless after --" {
	printf 'account default\nhost h\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -P a@b.example -oQ/tmp/x
	assert_equal "$status" 64
	assert_regex "$stderr" "recipient '-oQ/tmp/x' begins with '-'"
	run "$OUTBOX" -C "$RC" -P -- -odd@example.org
	assert_success
}

@test "control characters in -f or a recipient: 64" {
	printf 'account default\nhost h\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -f $'a@b\r\nRCPT TO:<x@y>' b@c </dev/null
	assert_equal "$status" 64
	assert_regex "$stderr" "-f: the address contains control characters"
	run --separate-stderr "$OUTBOX" -C "$RC" $'b@c\nDATA' </dev/null
	assert_equal "$status" 64
	assert_regex "$stderr" "recipient 1 contains control characters"
}

@test "no recipients: 64" {
	printf 'account default\nhost 127.0.0.1\nport 9\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" <<<$'Subject: x\n\nbody'
	assert_equal "$status" 64
	assert_regex "$stderr" "no recipients"
}

@test "a line over 998 bytes is not refused: the body goes as quoted-printable" {
	printf 'account default\nhost 127.0.0.1\nport 9\nfrom a@b.example\n' | rc
	{ printf 'Subject: x\n\n'; head -c 999 /dev/zero | tr '\0' 'y'; echo; } >"$BATS_TEST_TMPDIR/m"
	run --separate-stderr "$OUTBOX" --dry-run -v -C "$RC" a@b.example <"$BATS_TEST_TMPDIR/m"
	assert_success
	run tr -d '\r' <<<"$output"
	assert_line 'Content-Transfer-Encoding: quoted-printable'
	assert_line "$(head -c 75 /dev/zero | tr '\0' 'y')="
	assert_line "$(head -c 24 /dev/zero | tr '\0' 'y')"
	assert_regex "$stderr" 'line 3 is longer than 998 bytes: the body is sent as quoted-printable'
}

@test "a NUL byte: 65" {
	printf 'account default\nhost 127.0.0.1\nport 9\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" a@b.example < <(printf 'Subject: x\n\nab\0c\n')
	assert_equal "$status" 65
	assert_equal "$stderr" "outbox: line 3 of the message holds a NUL byte"
}

@test "a host that does not exist: 68" {
	printf 'account default\nhost no-such-host.invalid\nport 587\ntls off\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" a@b.example <<<$'Subject: x\n\nbody'
	assert_equal "$status" 68
	assert_regex "$stderr" "cannot resolve no-such-host.invalid"
}

@test "a refused connection: 75" {
	printf 'account default\nhost 127.0.0.1\nport 9\nqueue off\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" a@b.example <<<$'Subject: x\n\nbody'
	assert_equal "$status" 75
	assert_equal "$stderr" "outbox: account default: 127.0.0.1:9: cannot connect to 127.0.0.1:9: Connection refused"
}

@test "--host alone, msmtp style, needs no config file" {
	run "$OUTBOX" --host=smtp.example.org --port=465 --tls-starttls=off -P
	assert_success
	assert_line --regexp '^account command line'
	assert_line --regexp '^    tls_starttls += off  \(command line\)$'
}

@test "--version names the libraries; --help exits 0" {
	run "$OUTBOX" --version
	assert_success
	assert_line --regexp '^outbox [0-9]'
	assert_line --regexp '^TLS: GnuTLS [0-9]'
	assert_line --regexp '^SASL: GNU SASL [0-9]'
	run "$OUTBOX" --help
	assert_success
	assert_line --partial 'usage: outbox'
}

@test "newaliases and -bi do nothing, successfully" {
	run "$OUTBOX" -bi
	assert_success
	ln -s "$OUTBOX" "$BATS_TEST_TMPDIR/newaliases"
	run "$BATS_TEST_TMPDIR/newaliases"
	assert_success
}

@test "--check-config reports every problem at once, with file:line, 78" {
	printf 'account a\nhost\nport x\naccount b\nhost smtp.example.org\ntls off\nbogus\naccount c : zz\naccount d\nuser u\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" --check-config
	assert_equal "$status" 78
	assert_equal "${stderr_lines[0]}" "outbox: $RC:2: host needs a value"
	assert_equal "${stderr_lines[1]}" "outbox: $RC:3: invalid value 'x' for port"
	assert_equal "${stderr_lines[2]}" "outbox: $RC:7: unknown command 'bogus'"
	assert_equal "${stderr_lines[3]}" "outbox: $RC:8: account c: unknown parent account 'zz'"
	assert_equal "${stderr_lines[4]}" "outbox: $RC:1: account a: no host given (add a line such as 'host smtp.example.org')"
	assert_line "$RC:6: warning: account b: tls off: mail (and any password) crosses the network unencrypted"
	assert_line --regexp "^$RC: 3 accounts, 6 errors, 1 warnings$"
}

@test "--check-config on a good file: warnings only, exit 0" {
	printf 'account default\nhost smtp.example.org\nuser u\npassword p\ntls_certcheck off\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" --check-config
	assert_success
	assert_line "$RC:5: warning: account default: tls_certcheck off: anyone on the path can pose as the server; pin it with tls_fingerprint instead"
	assert_line "$RC:4: warning: account default: the password is in the file; the keyring keeps it safer (outbox --store-password)"
	assert_line "$RC: 1 accounts, 0 errors, 2 warnings"
}

@test "--errors=machine: one key=value line per error" {
	printf 'account default\nhost 127.0.0.1\nport 9\nqueue off\n' | rc
	run --separate-stderr "$OUTBOX" --errors=machine -C "$RC" a@b.example <<<$'Subject: x\n\nbody'
	assert_equal "$status" 75
	assert_equal "$stderr" 'error=temporary exitcode=75 account="default" host=127.0.0.1 port=9 message="cannot connect to 127.0.0.1:9: Connection refused"'
	run --separate-stderr "$OUTBOX" --errors=machine -Z
	assert_equal "$status" 64
	assert_equal "${stderr_lines[0]}" 'error=usage exitcode=64 message="unknown option -Z"'
}

@test "--dry-run shows the envelope and the exact data, dot-stuffed, and sends nothing" {
	printf 'account default\nhost 127.0.0.1\nport 9\nfrom me@example.org\nset_date_header off\nset_msgid_header off\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -t --dry-run < <(printf 'To: a@example.org\nBcc: b@example.org\nSubject: d\n\n.x\nend\n')
	assert_success
	assert_equal "$output" "$(printf 'account default, server 127.0.0.1:9\nMAIL FROM:<me@example.org> SIZE=64\nRCPT TO:<a@example.org>\nRCPT TO:<b@example.org>\nDATA (64 bytes)\nTo: a@example.org\r\nSubject: d\r\nFrom: me@example.org\r\n\r\n..x\r\nend\r\n.\r')"
	assert_equal "$(find "$HOME" -path '*/queue/*' -name env | wc -l)" 0
}

@test "domain %M takes maildomain for EHLO, as msmtp's %H, %C, %M" {
	printf 'account default\nhost h.example\nmaildomain mail.example.org\ndomain relay.%%M\n' | rc
	run --separate-stderr "$OUTBOX" -C "$RC" -P
	assert_success
	assert_line --regexp '^    \(EHLO domain\) += relay\.mail\.example\.org$'
}

@test "logfile_time_format none: log lines without a time, as msmtp 1.8.28" {
	printf 'account default\nhost 127.0.0.1\nport 9\nfrom a@b.example\nqueue off\nlogfile %s\nlogfile_time_format none\n' "$BATS_TEST_TMPDIR/log" | rc
	run "$OUTBOX" -C "$RC" a@b.example <<<$'Subject: x\n\nhi'
	assert_equal "$status" 75
	run cat "$BATS_TEST_TMPDIR/log"
	assert_output --regexp '^account=default host=127\.0\.0\.1 port=9 .*result=failed exitcode=75'
}

# ---------------------------------------------------------------- the corpus
# tests/data/msmtprc/: msmtprc files as people write them (tabs, CRLF, no
# final newline, quotes, '#' after a value, inherited accounts, files in the
# style of msmtp's manual). Each account of each file: every value outbox -P
# says came from the file is the value msmtp -P resolves (tests/lib/
# rccompare.py knows the few differences of notation).

need_msmtp() {
	command -v msmtp >/dev/null && return 0
	[[ ${CI:-} != true && ${OUTBOX_STRICT:-0} != 1 ]] || fail "msmtp is not installed (tests/lib/deps.sh)"
	skip "msmtp is not installed (tests/lib/deps.sh)"
}

@test "the msmtprc corpus: outbox -P resolves every value as msmtp -P does" {
	need_msmtp
	local f n=0
	for f in "$BATS_TEST_DIRNAME"/data/msmtprc/*.msmtprc; do
		cp "$f" "$BATS_TEST_TMPDIR/"
		chmod 600 "$BATS_TEST_TMPDIR/${f##*/}"
		run env RCCOMPARE_VERBOSE=1 "$BATS_TEST_DIRNAME/lib/rccompare.py" "$OUTBOX" "$BATS_TEST_TMPDIR/${f##*/}"
		assert_success
		# Not vacuous: values were compared for the file.
		assert_output --regexp ': [1-9][0-9]* values compared$'
		n=$((n + 1))
	done
	((n >= 10))
}

@test "the corpus check fails when outbox and msmtp disagree" {
	need_msmtp
	# msmtp ignores tls_force_sslv3 on; outbox refuses it.
	printf 'account default\nhost h.example\ntls_force_sslv3 on\n' | rc
	run "$BATS_TEST_DIRNAME/lib/rccompare.py" "$OUTBOX" "$RC"
	assert_failure
	assert_output --partial 'account default: msmtp exit 0'
	# syslog on is the one documented difference of value; others are not.
	printf 'account default\nhost h.example\nport 2525\n' | rc
	run "$BATS_TEST_DIRNAME/lib/rccompare.py" /bin/echo "$RC"
	assert_failure
	assert_output --partial 'outbox shows no value from the file'
}
