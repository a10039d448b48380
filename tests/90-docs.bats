#!/usr/bin/env bats
# The manual pages and the shell completions follow the code: the options
# are taken from `outbox --help` and the config commands from src/config.c,
# so that a new option or command fails here until it is documented.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
	ROOT="$BATS_TEST_DIRNAME/.."
	OUTBOX="${OUTBOX:-$ROOT/outbox}"
	MAN1="$ROOT/man/outbox.1"
	MAN5="$ROOT/man/outbox.conf.5"
	COMP="$ROOT/completions"
}

# A tool the test needs: fail under CI (CI=true or OUTBOX_STRICT=1), skip
# on a developer's machine.
need() {
	command -v "$1" >/dev/null && return 0
	[[ -z ${CI:-} && ${OUTBOX_STRICT:-0} != 1 ]] || fail "$1 is not installed (apt-get install $2)"
	skip "$1 is not installed (apt-get install $2)"
}

# "--account", "--tls-starttls"... as --help shows them.
long_opts() {
	"$OUTBOX" --help | grep -oE -- '--[a-z][a-z-]*[a-z]' | LC_ALL=C sort -u
}

# The letter of every short option in --help: -a, -itv, -bm, -oi give a, i, b, o.
short_opts() {
	"$OUTBOX" --help | grep -oE -- '(^|[][ ,(])-[A-Za-z]' |
	    sed 's/.*-//' | LC_ALL=C sort -u
}

# The commands of the cftab table, and the old spellings set_legacy() maps.
config_commands() {
	sed -n 's/^[[:space:]]*{ "\([a-z0-9_]*\)",[[:space:]]*CF_.*/\1/p' \
	    "$ROOT/src/config.c"
}
legacy_commands() {
	sed -n '/legacy\[\] = {/,/};/p' "$ROOT/src/config.c" |
	    grep -oE '"[a-z_0-9]+"' | tr -d '"'
}

# Long options whose value is optional (has_arg 2 in the setters table).
optional_setters() {
	sed -n 's/^[[:space:]]*{ "\([a-z-]*\)",[[:space:]]*"[a-z_]*",[[:space:]]*2 },.*/\1/p' \
	    "$ROOT/cmd/options.c"
}

# Print the options for which "grep -qE PREFIX<opt>SUFFIX file" fails.
# A long option is passed without its dashes, a short one as its letter.
missing() {
	local file=$1 lpre=$2 lsuf=$3 spre=$4 ssuf=$5 o
	for o in $(long_opts); do
		grep -qE -- "$lpre${o#--}$lsuf" "$file" || echo "$o"
	done
	for o in $(short_opts); do
		grep -qE -- "$spre$o$ssuf" "$file" || echo "-$o"
	done
}

# Complete the words given, as bash would, with the bash completion loaded.
bash_complete() {
	bash -c 'source "$1"; shift; COMP_WORDS=("$@")
	    COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _outbox
	    printf "%s\n" "${COMPREPLY[@]}" | LC_ALL=C sort' _ \
	    "$COMP/outbox.bash" "$@"
}

write_config() {
	cat >"$1" <<-'EOF'
		defaults
		tls on
		account work
		host smtp.example.com
		  account home : work
		account default:work
		# account commented
	EOF
}

@test "the option and command lists are extracted from the code" {
	[ -x "$OUTBOX" ] || fail "$OUTBOX is missing: run make"
	run long_opts
	[ "${#lines[@]}" -ge 45 ] || fail "only ${#lines[@]} long options found"
	run short_opts
	[ "${#lines[@]}" -ge 25 ] || fail "only ${#lines[@]} short options found"
	run config_commands
	[ "${#lines[@]}" -ge 40 ] || fail "only ${#lines[@]} commands found"
	run legacy_commands
	[ "${#lines[@]}" -ge 5 ] || fail "only ${#lines[@]} old spellings found"
	run optional_setters
	[ "${#lines[@]}" -ge 10 ] || fail "only ${#lines[@]} optional setters found"
}

@test "outbox.1 and outbox.conf.5 pass mandoc -T lint -W warning" {
	command -v mandoc >/dev/null || fail "mandoc is not installed (apt-get install mandoc)"
	run mandoc -T lint -W warning "$MAN1" "$MAN5"
	assert_success
	assert_output ''
}

@test "outbox.1 documents every option in --help" {
	# Long options are written ".Fl \-name" or ".Fl -name", with "\-"
	# for every dash; short ones ".Fl x", ".Fl bm", ".Fl oi".
	sed 's/\\-/-/g' "$MAN1" >"$BATS_TEST_TMPDIR/outbox.1"
	run missing "$BATS_TEST_TMPDIR/outbox.1" 'Fl -' '([^a-z-]|$)' 'Fl ' ''
	assert_output ''
}

@test "outbox.conf.5 documents every config command and old spelling" {
	local c
	for c in $(config_commands) $(legacy_commands); do
		grep -qE "^\.It( .*)? Ic $c( |\$)" "$MAN5" || echo "$c"
	done >"$BATS_TEST_TMPDIR/missing"
	run cat "$BATS_TEST_TMPDIR/missing"
	assert_output ''
}

@test "the bash completion knows every option in --help" {
	run missing "$COMP/outbox.bash" '(^|[^A-Za-z0-9_-])--' '([^a-z-]|$)' \
	    '(^|[^A-Za-z0-9_-])-' ''
	assert_output ''
}

@test "the zsh completion knows every option in --help" {
	run missing "$COMP/_outbox" '(^|[^A-Za-z0-9_-])--' '([^a-z-]|$)' \
	    '(^|[^A-Za-z0-9_-])-' ''
	assert_output ''
}

@test "the fish completion knows every option in --help" {
	run missing "$COMP/outbox.fish" '-l ' '( |$)' '-s ' '( |$)'
	assert_output ''
}

@test "bash completion offers the accounts of the file given with -C" {
	write_config "$BATS_TEST_TMPDIR/cfg"
	run bash_complete outbox -C "$BATS_TEST_TMPDIR/cfg" -a ''
	assert_success
	assert_output $'default\nhome\nwork'
	run bash_complete outbox --file = "$BATS_TEST_TMPDIR/cfg" --account = h
	assert_output 'home'
}

@test "bash completion offers the accounts of the user's file without -C" {
	mkdir -p "$BATS_TEST_TMPDIR/home/.config/outbox"
	write_config "$BATS_TEST_TMPDIR/home/.config/outbox/config"
	HOME="$BATS_TEST_TMPDIR/home" XDG_CONFIG_HOME='' run bash_complete outbox -a w
	assert_success
	assert_output 'work'
}

@test "bash completion offers values for every option whose value is optional" {
	local o
	for o in $(optional_setters); do
		run bash_complete outbox "--$o" = ''
		assert_success
		[ -n "$output" ] || fail "--$o= completes to nothing"
		assert_line --regexp '^(on|auto)$'
	done
	# Without "=", the next word is a recipient, not the value.
	run bash_complete outbox --tls ''
	assert_output ''
}

@test "the zsh completion parses" {
	need zsh zsh
	run zsh -n "$COMP/_outbox"
	assert_success
	assert_output ''
}

@test "the fish completion parses and offers the accounts given with -C" {
	need fish fish
	run fish -n "$COMP/outbox.fish"
	assert_success
	assert_output ''
	write_config "$BATS_TEST_TMPDIR/cfg"
	run fish --no-config -c 'source $argv[1]; complete -C"outbox -C $argv[2] -a "' \
	    "$COMP/outbox.fish" "$BATS_TEST_TMPDIR/cfg"
	assert_success
	assert_output --partial 'home'
	assert_output --partial 'default'
}

@test "LICENSE is ISC, debian/copyright says the same, the maintainer is the project" {
	run head -1 "$ROOT/LICENSE"
	assert_output 'Copyright (c) 2026 the outbox authors'
	grep -q '^Permission to use, copy, modify, and distribute this software for any$' "$ROOT/LICENSE"
	grep -qx 'Copyright: 2026 the outbox authors' "$ROOT/debian/copyright"
	assert_equal "$(grep -c '^License: ISC$' "$ROOT/debian/copyright")" 2
	# The license text in debian/copyright is LICENSE's, word for word.
	diff <(sed '1,/^$/d' "$ROOT/LICENSE" | tr -s ' \n' ' ') \
		<(sed -n '/^License: ISC$/,$p' "$ROOT/debian/copyright" | tail -n +2 |
			sed -n '/^ /p' | sed 's/^ //; s/^\.$//' | tr -s ' \n' ' ' | sed 's/^ *//')
	run grep '^Maintainer:' "$ROOT/debian/control"
	assert_output 'Maintainer: outbox developers <outbox@invalid>'
	run grep -E '^ -- ' "$ROOT/debian/changelog"
	assert_output --regexp '^ -- outbox developers <outbox@invalid>  '
}
