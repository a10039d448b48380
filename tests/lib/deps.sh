#!/usr/bin/env bash
# tests/lib/deps.sh -- make sure the build and test dependencies are installed.
#
# Idempotent and fast when nothing is missing (one dpkg-query call).
# As root: installs what is missing with apt-get, without starting a system
# Postfix or Dovecot (debconf preseed "No configuration", and a temporary
# /usr/sbin/policy-rc.d that denies service starts, only if none exists).
# Not root: prints the command to run and exits 1.
#
#   tests/lib/deps.sh           check/install everything
#   tests/lib/deps.sh --check   only check (exit 1 and list what is missing)
set -euo pipefail

BUILD_PKGS=(build-essential pkg-config libgnutls28-dev libgsasl-dev libsecret-1-dev)
TEST_PKGS=(bats bats-support bats-assert postfix dovecot-core dovecot-lmtpd gnome-keyring
	libsecret-tools dbus-daemon dbus-bin mandoc msmtp gnutls-bin openssl
	python3 python3-cryptography python3-gi faketime zsh fish git-email libmailtools-perl libemail-valid-perl mutt neomutt bsd-mailx s-nail cron php-cli)
TEST_PKGS+=(debhelper dpkg-dev fakeroot) # tests/95-package.bats builds the .deb
TEST_PKGS+=(iproute2 valgrind) # the Happy Eyeballs test, the memcheck subset
TEST_PKGS+=(microsocks) # tests/64-proxy.bats: a real SOCKS5 server
TEST_PKGS+=(systemd libglib2.0-bin) # systemd-analyze verify (README units); gdbus locks a keyring
SANITIZER_PKGS=(clang libclang-rt-14-dev)
ALL_PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${SANITIZER_PKGS[@]}")

check_only=0
case ${1:-} in
--check) check_only=1 ;;
"") ;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

# Packages not fully installed (dpkg-query prints nothing for unknown names,
# so compare against the list rather than trusting its output alone).
missing_pkgs() {
	local installed
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${ALL_PKGS[@]}" 2>/dev/null |
		awk '$2 == "ii" { print $1 }') || true
	local p
	for p in "${ALL_PKGS[@]}"; do
		grep -qxF "$p" <<<"$installed" || echo "$p"
	done
}

mapfile -t missing < <(missing_pkgs)
if ((${#missing[@]} == 0)); then
	exit 0
fi

APT_OPTS=(-y -q -o DPkg::Lock::Timeout=300 --no-install-recommends)
cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install ${APT_OPTS[*]} ${missing[*]}"

if ((check_only)); then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	exit 1
fi

if [[ $(id -u) != 0 ]]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (for example: sudo $0), or:" >&2
	if [[ " ${missing[*]} " == *" postfix "* ]]; then
		echo "  echo 'postfix postfix/main_mailer_type select No configuration' | sudo debconf-set-selections" >&2
	fi
	echo "  sudo sh -c '$cmd'" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Postfix: no questions, no /etc/postfix/main.cf
debconf-set-selections <<-'EOF'
	postfix postfix/main_mailer_type select No configuration
	postfix postfix/mailname string localhost
EOF

# Keep package scripts from starting a system Postfix (port 25) or Dovecot.
policy=/usr/sbin/policy-rc.d
made_policy=0
cleanup() {
	if ((made_policy)); then
		rm -f "$policy"
	fi
}
trap cleanup EXIT
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\n# temporary, from outbox tests/lib/deps.sh\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	made_policy=1
fi

echo "deps.sh: installing: ${missing[*]}" >&2
apt-get update -q -o DPkg::Lock::Timeout=300 >&2
apt-get install "${APT_OPTS[@]}" "${missing[@]}" >&2

mapfile -t still < <(missing_pkgs)
if ((${#still[@]} > 0)); then
	echo "deps.sh: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "deps.sh: all dependencies installed" >&2
