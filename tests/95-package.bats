#!/usr/bin/env bats
# Installation and the Debian package: "make install" / "make uninstall" /
# "make install-sendmail" into a DESTDIR, and the .deb built from debian/.
#
# Everything runs in copies of the working tree (tracked and untracked
# files, as git ls-files -co --exclude-standard lists them), never in the
# tree itself: building there would replace the ./outbox the other suites
# test (with other flags under "make check SANITIZE=1").
#
# A missing tool skips the tests that need it, or fails them in strict mode
# (CI=true or OUTBOX_STRICT=1). tests/lib/deps.sh installs them all.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

strict() {
	[[ ${CI:-} == true || ${OUTBOX_STRICT:-0} == 1 ]]
}

# unavailable REASON: skip the test, or fail it in strict mode.
unavailable() {
	strict && fail "$1 (strict mode: CI=true or OUTBOX_STRICT=1)"
	skip "$1"
}

# Tools not installed, as "tool (package)" words.
missing_tools() {
	local t
	for t in "$@"; do
		command -v "${t%%:*}" >/dev/null || echo "${t%%:*} (${t#*:})"
	done
}

# copy_tree DST: the working tree as git sees it, without build products.
copy_tree() {
	mkdir -p "$1"
	git -C "$ROOT" ls-files -co --exclude-standard --deduplicate -z |
	    (cd "$ROOT" && while IFS= read -r -d '' f; do
		# a tracked file deleted in the working tree is not copied
		[[ -e $f || -L $f ]] && printf '%s\0' "$f"
	    done) | (cd "$ROOT" && xargs -0 -r cp -P --parents -t "$1")
}

# The outer make (make check SANITIZE=1 -j4) must not reach the makes run
# here, nor an install layout set in the environment.
clean_env() {
	unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES SANITIZE \
	    PREFIX DESTDIR BINDIR DATADIR MANDIR BASHCOMPDIR ZSHCOMPDIR \
	    FISHCOMPDIR SYSTEMDUSERUNITDIR SENDMAIL MAILQ PKG_CONFIG
}

setup_file() {
	clean_env
	export ROOT="$BATS_TEST_DIRNAME/.."
	# Where "make install" runs, and where dpkg-buildpackage runs.
	export TREE="$BATS_FILE_TMPDIR/tree" SRC="$BATS_FILE_TMPDIR/src"
	export DEBROOT="$BATS_FILE_TMPDIR/debroot"
	export TREE_ERR="" DEB_ERR="" DEB="" DEB_INFO=""

	local missing
	missing=$(missing_tools git:git make:make cc:build-essential \
	    pkg-config:pkg-config)
	if [[ -n $missing ]]; then
		TREE_ERR="not installed: ${missing//$'\n'/, }"
		DEB_ERR=$TREE_ERR
		return 0
	fi

	copy_tree "$TREE"
	copy_tree "$SRC"
	if ! make -C "$TREE" -j"$(nproc)" outbox >"$BATS_FILE_TMPDIR/make.log" 2>&1; then
		TREE_ERR="make outbox failed in a copy of the tree:
$(tail -n 30 "$BATS_FILE_TMPDIR/make.log")"
	fi

	missing=$(missing_tools dpkg-buildpackage:dpkg-dev dh:debhelper \
	    fakeroot:fakeroot dpkg-deb:dpkg)
	if [[ -n $missing ]]; then
		DEB_ERR="not installed: ${missing//$'\n'/, }"
		return 0
	fi
	# -b: binary only; the .deb lands in $BATS_FILE_TMPDIR, SRC's parent.
	if ! (cd "$SRC" && dpkg-buildpackage -us -uc -b) \
	    >"$BATS_FILE_TMPDIR/build.log" 2>&1; then
		DEB_ERR="dpkg-buildpackage -us -uc -b failed:
$(tail -n 40 "$BATS_FILE_TMPDIR/build.log")"
		return 0
	fi
	local debs=("$BATS_FILE_TMPDIR"/outbox_*_*.deb)
	if [[ ${#debs[@]} != 1 || ! -f ${debs[0]} ]]; then
		DEB_ERR="not one outbox_*.deb after dpkg-buildpackage: ${debs[*]}"
		return 0
	fi
	DEB=${debs[0]}
	dpkg-deb -x "$DEB" "$DEBROOT"
	DEB_INFO="$BATS_FILE_TMPDIR/deb-info"
	dpkg-deb -I "$DEB" >"$DEB_INFO"
}

setup() {
	clean_env
}

need_tree() {
	if [[ $TREE_ERR == "not installed:"* ]]; then
		unavailable "$TREE_ERR"
	fi
	[[ -z $TREE_ERR ]] || fail "$TREE_ERR"
}

need_deb() {
	if [[ $DEB_ERR == "not installed:"* ]]; then
		unavailable "$DEB_ERR"
	fi
	[[ -z $DEB_ERR ]] || fail "$DEB_ERR"
}

# assert_layout ROOT BIN MAN BASH ZSH FISH UNITS [SUFFIX]: outbox is laid out
# under ROOT in these directories (man pages named with SUFFIX, e.g. .gz),
# and each systemd unit is contrib/systemd's with @BINDIR@ made BIN.
assert_layout() {
	local root=$1 bin=$2 man=$3 bash=$4 zsh=$5 fish=$6 units=$7 gz=${8:-}
	assert [ -x "$root$bin/outbox" ]
	assert [ -f "$root$man/man1/outbox.1$gz" ]
	assert [ -f "$root$man/man5/outbox.conf.5$gz" ]
	assert [ -f "$root$bash/outbox" ]
	assert [ -f "$root$zsh/_outbox" ]
	assert [ -f "$root$fish/outbox.fish" ]
	local u
	for u in outbox-flush.service outbox-flush.timer; do
		assert [ -f "$root$units/$u" ]
		run diff -u <(sed "s|@BINDIR@|$bin|g" "$ROOT/contrib/systemd/$u") \
		    "$root$units/$u"
		assert_success
		run grep -c @BINDIR@ "$root$units/$u"
		assert_output 0
	done
	run grep -E '^ExecStart=' "$root$units/outbox-flush.service"
	assert_success
	assert_line --regexp "^ExecStart=$bin/outbox( |\$)"
	# Installed files are not group/other writable, nor units executable.
	run find "$root" -type f -perm /022
	assert_output ''
	run find "$root$units" -type f -perm /111
	assert_output ''
}

# No file or link left under $1 (directories may stay).
assert_empty_tree() {
	run find "$1" ! -type d
	assert_success
	assert_output ''
}

@test "make install lays out outbox under DESTDIR and PREFIX, uninstall removes it" {
	need_tree
	local root=$BATS_TEST_TMPDIR/root
	run make -C "$TREE" install DESTDIR="$root" PREFIX=/usr
	assert_success
	assert_layout "$root" /usr/bin /usr/share/man \
	    /usr/share/bash-completion/completions \
	    /usr/share/zsh/vendor-completions \
	    /usr/share/fish/vendor_completions.d /usr/lib/systemd/user
	# install is not install-sendmail
	assert [ ! -e "$root/usr/sbin/sendmail" ]
	assert [ ! -e "$root/usr/bin/mailq" ]
	run "$root/usr/bin/outbox" --version
	assert_success
	assert_line --index 0 --regexp '^outbox [0-9]'

	run make -C "$TREE" uninstall DESTDIR="$root" PREFIX=/usr
	assert_success
	assert_empty_tree "$root"
}

@test "make install honours BINDIR, MANDIR and every completion and unit directory" {
	need_tree
	local root=$BATS_TEST_TMPDIR/root
	local dirs=(BINDIR=/opt/ob/bin MANDIR=/opt/ob/man
	    BASHCOMPDIR=/opt/ob/bash ZSHCOMPDIR=/opt/ob/zsh
	    FISHCOMPDIR=/opt/ob/fish SYSTEMDUSERUNITDIR=/opt/ob/units)
	run make -C "$TREE" install DESTDIR="$root" "${dirs[@]}"
	assert_success
	assert_layout "$root" /opt/ob/bin /opt/ob/man /opt/ob/bash /opt/ob/zsh \
	    /opt/ob/fish /opt/ob/units
	run find "$root" -mindepth 1 -maxdepth 1
	assert_output "$root/opt"

	run make -C "$TREE" uninstall DESTDIR="$root" "${dirs[@]}"
	assert_success
	assert_empty_tree "$root"
}

@test "the default PREFIX is /usr/local, for completions and units too" {
	need_tree
	local root=$BATS_TEST_TMPDIR/root
	run make -C "$TREE" install DESTDIR="$root"
	assert_success
	assert_layout "$root" /usr/local/bin /usr/local/share/man \
	    /usr/local/share/bash-completion/completions \
	    /usr/local/share/zsh/vendor-completions \
	    /usr/local/share/fish/vendor_completions.d \
	    /usr/local/lib/systemd/user
	run make -C "$TREE" uninstall DESTDIR="$root"
	assert_success
	assert_empty_tree "$root"
}

@test "the bash completion goes to pkg-config's completionsdir unless BASHCOMPDIR is given" {
	need_tree
	local root=$BATS_TEST_TMPDIR/root fake=$BATS_TEST_TMPDIR/pkg-config
	local nobc=$BATS_TEST_TMPDIR/pkg-config-nobc
	# bash-completion's answer is faked (or missing); every other question
	# goes to the real pkg-config, so the build flags (and ./outbox) stay.
	cat >"$fake" <<-'EOF'
		#!/bin/sh
		case " $* " in
		*" --variable=completionsdir "*"bash-completion "*)
			echo /opt/bc/completions; exit 0 ;;
		esac
		exec pkg-config "$@"
	EOF
	sed 's|echo /opt/bc/completions; exit 0|exit 1|' "$fake" >"$nobc"
	chmod +x "$fake" "$nobc"
	run make -C "$TREE" install DESTDIR="$root" PREFIX=/usr PKG_CONFIG="$fake"
	assert_success
	assert [ -f "$root/opt/bc/completions/outbox" ]
	assert [ ! -e "$root/usr/share/bash-completion/completions/outbox" ]
	run make -C "$TREE" uninstall DESTDIR="$root" PREFIX=/usr PKG_CONFIG="$fake"
	assert_success
	assert_empty_tree "$root"

	run make -C "$TREE" install DESTDIR="$root" PREFIX=/usr \
	    PKG_CONFIG="$fake" BASHCOMPDIR=/given
	assert_success
	assert [ -f "$root/given/outbox" ]
	assert [ ! -e "$root/opt/bc/completions/outbox" ]

	# bash-completion unknown to pkg-config: PREFIX/share/bash-completion/completions
	rm -rf "$root"
	run make -C "$TREE" install DESTDIR="$root" PREFIX=/opt/ob PKG_CONFIG="$nobc"
	assert_success
	assert [ -f "$root/opt/ob/share/bash-completion/completions/outbox" ]
	refute_output --partial ' -c -o '
}

@test "make install-sendmail links sendmail and mailq to outbox, uninstall removes the links" {
	need_tree
	local root=$BATS_TEST_TMPDIR/root
	run make -C "$TREE" install-sendmail DESTDIR="$root" PREFIX=/usr
	assert_success
	assert [ -L "$root/usr/sbin/sendmail" ]
	assert [ -L "$root/usr/bin/mailq" ]
	assert_equal "$(readlink "$root/usr/sbin/sendmail")" /usr/bin/outbox
	assert_equal "$(readlink "$root/usr/bin/mailq")" /usr/bin/outbox
	assert [ -x "$root/usr/bin/outbox" ]
	# Again: the links are replaced, not refused.
	run make -C "$TREE" install-sendmail DESTDIR="$root" PREFIX=/usr
	assert_success

	run make -C "$TREE" uninstall DESTDIR="$root" PREFIX=/usr
	assert_success
	assert_empty_tree "$root"
}

@test "make install-sendmail refuses to replace a sendmail that is not a link" {
	need_tree
	local root=$BATS_TEST_TMPDIR/root
	mkdir -p "$root/usr/sbin"
	printf '#!/bin/sh\necho an MTA\n' >"$root/usr/sbin/sendmail"
	chmod 755 "$root/usr/sbin/sendmail"
	run make -C "$TREE" install-sendmail DESTDIR="$root" PREFIX=/usr
	assert_failure
	assert_output --partial '/usr/sbin/sendmail exists and is not a link; not replacing it'
	assert [ ! -L "$root/usr/sbin/sendmail" ]
	assert_equal "$(cat "$root/usr/sbin/sendmail")" "$(printf '#!/bin/sh\necho an MTA')"
	assert [ ! -e "$root/usr/bin/mailq" ]

	# uninstall leaves it alone too
	run make -C "$TREE" uninstall DESTDIR="$root" PREFIX=/usr
	assert_success
	assert [ -f "$root/usr/sbin/sendmail" ]
	assert [ ! -L "$root/usr/sbin/sendmail" ]
}

@test "the .deb installs the same layout under /usr, and no sendmail" {
	need_deb
	assert_layout "$DEBROOT" /usr/bin /usr/share/man \
	    /usr/share/bash-completion/completions \
	    /usr/share/zsh/vendor-completions \
	    /usr/share/fish/vendor_completions.d /usr/lib/systemd/user .gz
	assert [ -f "$DEBROOT/usr/share/doc/outbox/copyright" ]
	# sendmail stays opt-in: no /usr/sbin/sendmail, no mailq
	assert [ ! -e "$DEBROOT/usr/sbin/sendmail" ]
	assert [ ! -L "$DEBROOT/usr/sbin/sendmail" ]
	assert [ ! -e "$DEBROOT/usr/bin/mailq" ]
	assert [ ! -L "$DEBROOT/usr/bin/mailq" ]
	run find "$DEBROOT" ! -path "$DEBROOT/usr/*" ! -path "$DEBROOT/usr" ! -path "$DEBROOT"
	assert_output ''
}

@test "the .deb's control fields: Package, Version, Depends on the dlopen()ed libgsasl18 and libsecret-1-0, no MTA" {
	need_deb
	local version
	version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
	run cat "$DEB_INFO"
	assert_line --regexp '^ Package: outbox$'
	assert_line " Version: $version"
	assert_line --regexp '^ Section: mail$'
	# the libraries loaded with dlopen() are named by hand
	assert_line --regexp '^ Depends: (.*, )?libsecret-1-0(,| |$)'
	assert_line --regexp '^ Depends: (.*, )?libgsasl18(,| |$)'
	# the linked ones come from shlibs
	assert_line --regexp '^ Depends: (.*, )?libgnutls30(,| |$)'
	refute_line --regexp '^ (Provides|Conflicts|Replaces):.*mail-transport-agent'
	refute_line --regexp '^ Provides:'
}

@test "the packaged outbox runs and its version is the package's" {
	need_deb
	run "$DEBROOT/usr/bin/outbox" --version
	assert_success
	local version
	version=$(dpkg-deb -f "$DEB" Version)
	assert_line --index 0 "outbox $version"
}

# The shell block of README.md that follows the line matching ERE $1.
readme_block() {
	awk -v re="$1" '
		found && /^    / { print substr($0, 5); seen = 1; next }
		found && seen { exit }
		$0 ~ re { found = 1 }' "$ROOT/README.md"
}

# verify_units FILE...: systemd-analyze accepts them as user units.
verify_units() {
	command -v systemd-analyze >/dev/null || unavailable "systemd-analyze is not installed (systemd)"
	mkdir -p -m 700 "$BATS_TEST_TMPDIR/runtime"
	XDG_RUNTIME_DIR=$BATS_TEST_TMPDIR/runtime run systemd-analyze verify --man=no --user "$@"
	assert_success
	assert_output ''
}

@test "README's systemd commands from the source tree give units that systemd-analyze verifies" {
	local block home=$BATS_TEST_TMPDIR/home bin=$BATS_TEST_TMPDIR/bin
	block=$(readme_block 'make the units from `contrib/systemd`')
	[[ $block == *'sed "s|@BINDIR@|'* ]] || fail "README block not found: $block"
	mkdir -p "$home" "$bin"
	cp "$ROOT/outbox" "$bin/outbox"
	# systemctl is recorded, not run: there is no user manager here.
	printf '#!/bin/sh\necho "systemctl $*" >>"%s/systemctl.log"\n' "$BATS_TEST_TMPDIR" >"$bin/systemctl"
	chmod +x "$bin/systemctl"
	(cd "$ROOT" && HOME=$home PATH=$bin:$PATH bash -euc "$block")
	run cat "$BATS_TEST_TMPDIR/systemctl.log"
	assert_line 'systemctl --user enable --now outbox-flush.timer'
	run grep -l @ "$home/.config/systemd/user/outbox-flush.service" "$home/.config/systemd/user/outbox-flush.timer"
	assert_output ''
	run grep '^ExecStart=' "$home/.config/systemd/user/outbox-flush.service"
	assert_output "ExecStart=$bin/outbox -q15m"
	verify_units "$home/.config/systemd/user/outbox-flush.service" "$home/.config/systemd/user/outbox-flush.timer"
	# What the README used to say, a plain copy, does not verify.
	cp "$ROOT/contrib/systemd/outbox-flush.service" "$BATS_TEST_TMPDIR/raw.service"
	XDG_RUNTIME_DIR=$BATS_TEST_TMPDIR/runtime run systemd-analyze verify --man=no --user "$BATS_TEST_TMPDIR/raw.service"
	assert_failure
}

@test "the units make install writes verify with systemd-analyze" {
	need_tree
	local root=$BATS_TEST_TMPDIR/root
	# BINDIR where an outbox really is, so that ExecStart= can be checked.
	run make -C "$TREE" install DESTDIR="$root" BINDIR="$TREE" SYSTEMDUSERUNITDIR=/units
	assert_success
	verify_units "$root/units/outbox-flush.service" "$root/units/outbox-flush.timer"
}
