# outbox: a sendmail-compatible mail submission client.
#
#   make            build ./outbox
#   make check      build and run every test (installs what it needs)
#   make check SANITIZE=1   the same, built with ASan and UBSan
#   make demo       send a message through a throwaway local server
#   make install    PREFIX, DESTDIR, BINDIR, MANDIR, BASHCOMPDIR, ZSHCOMPDIR,
#                   FISHCOMPDIR and SYSTEMDUSERUNITDIR are honoured

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
# Where install-sendmail puts its links: the paths callers use.
SENDMAIL ?= /usr/sbin/sendmail
MAILQ	?= /usr/bin/mailq
DATADIR	?= $(PREFIX)/share
MANDIR	?= $(DATADIR)/man
# bash-completion's own completionsdir when pkg-config knows it, taken under
# our DATADIR (its .pc file has datadir=/usr/share: as it is, a /usr/local or
# ~/.local install would write into /usr/share).
BASHCOMPDIR ?= $(or $(shell $(PKG_CONFIG) --define-variable=datadir=$(DATADIR) \
	--variable=completionsdir bash-completion 2>/dev/null),$(BASHCOMPDEF))
BASHCOMPDEF  = $(DATADIR)/bash-completion/completions
ZSHCOMPDIR  ?= $(DATADIR)/zsh/vendor-completions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
# systemd user units (contrib/systemd): @BINDIR@ in them becomes $(BINDIR).
SYSTEMDUSERUNITDIR ?= $(PREFIX)/lib/systemd/user
SYSTEMD_UNITS = outbox-flush.service outbox-flush.timer

PKG_CONFIG ?= pkg-config
PKGS	= gnutls libgsasl libsecret-1

CC	?= cc
CFLAGS	?= -O2 -g
# What the code needs is added even when CFLAGS is given on the command
# line (make CFLAGS=...), hence override.
override CFLAGS	+= -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -D_GNU_SOURCE
# libgsasl's and libsecret's headers give the types; the libraries
# themselves are loaded with dlopen() when an exchange needs them (AUTH, the
# keyring), so neither they nor GLib are linked.
override CFLAGS	+= $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
override LDLIBS	+= $(shell $(PKG_CONFIG) --libs gnutls 2>/dev/null) -ldl \
		   -lresolv

ifeq ($(SANITIZE),1)
override CFLAGS	+= -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined
override LDFLAGS	+= -fsanitize=address,undefined
endif

SRCS	= src/addr.c src/aliases.c src/backoff.c src/config.c src/conn.c \
	  src/deliver.c src/desktop.c src/dsn.c src/envelope.c src/err.c src/json.c src/linger.c src/log.c \
	  src/message.c src/oauth.c src/queue.c src/sasl.c src/secret.c \
	  src/smtp.c src/socks.c src/tokcache.c src/util.c
CMDS	= cmd/outbox.c cmd/options.c cmd/account.c cmd/send.c cmd/queue.c \
	  cmd/bs.c cmd/password.c cmd/check.c cmd/configure.c cmd/authorize.c \
	  cmd/retrier.c cmd/linger.c
OBJS	= $(SRCS:.c=.o) $(CMDS:.c=.o)
HDRS	= $(wildcard src/*.h cmd/*.h)

all: outbox

outbox: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(OBJS): $(HDRS) Makefile .build-flags

# Rebuild everything when the flags change (e.g. SANITIZE=1 and back).
.build-flags: FORCE
	@echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || \
	    echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@

deps:
	@bash tests/lib/deps.sh

# Every suite; under the sanitizers all but the valgrind one, since
# valgrind cannot run an ASan binary (the plain run covers it).
TESTS	= $(wildcard tests/*.bats)
ifeq ($(SANITIZE),1)
TESTS	:= $(filter-out tests/85-valgrind.bats,$(TESTS))
endif

check: deps
	$(MAKE) outbox
	$(MAKE) unit
	bats $(TESTS)
	mandoc -T lint -W warning man/outbox.1 man/outbox.conf.5

# C unit tests (tests/unit/): UNIT_RUN check themselves and run here; the
# UNIT_TOOLS are driven by the bats suites, which build them with this too.
UNIT_DIR	= tests/unit
UNIT_RUN	= backoff duration qualify
UNIT_TOOLS	=
UNIT_BINS	= $(UNIT_RUN:%=$(UNIT_DIR)/%_test) $(UNIT_TOOLS:%=$(UNIT_DIR)/%_test)
SRC_OBJS	= $(SRCS:.c=.o)

$(UNIT_DIR)/%_test: $(UNIT_DIR)/%_test.c $(UNIT_DIR)/unit.h $(SRC_OBJS) $(HDRS)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(SRC_OBJS) $(LDLIBS)

unit-build: $(UNIT_BINS)

unit: unit-build
	@for t in $(UNIT_RUN); do $(UNIT_DIR)/$${t}_test || exit 1; done

demo: deps outbox
	@bash tests/demo.sh

install: outbox
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(BASHCOMPDIR) \
	    $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR) \
	    $(DESTDIR)$(SYSTEMDUSERUNITDIR)
	install -m 755 outbox $(DESTDIR)$(BINDIR)/outbox
	install -m 644 man/outbox.1 $(DESTDIR)$(MANDIR)/man1/outbox.1
	install -m 644 man/outbox.conf.5 $(DESTDIR)$(MANDIR)/man5/outbox.conf.5
	install -m 644 completions/outbox.bash $(DESTDIR)$(BASHCOMPDIR)/outbox
	install -m 644 completions/_outbox $(DESTDIR)$(ZSHCOMPDIR)/_outbox
	install -m 644 completions/outbox.fish \
	    $(DESTDIR)$(FISHCOMPDIR)/outbox.fish
	for u in $(SYSTEMD_UNITS); do \
	    sed 's|@BINDIR@|$(BINDIR)|g' contrib/systemd/$$u \
	        >$(DESTDIR)$(SYSTEMDUSERUNITDIR)/$$u && \
	    chmod 644 $(DESTDIR)$(SYSTEMDUSERUNITDIR)/$$u || exit 1; \
	done

# Opt-in: make outbox the system's sendmail and mailq.  Refuses to replace
# a real file (an installed MTA); remove that package first.
install-sendmail: install
	@for l in $(SENDMAIL) $(MAILQ); do \
	    if [ -e $(DESTDIR)$$l ] && [ ! -L $(DESTDIR)$$l ]; then \
	        echo "$$l exists and is not a link; not replacing it" >&2; \
	        exit 1; fi; done
	install -d $(DESTDIR)$(dir $(SENDMAIL)) $(DESTDIR)$(dir $(MAILQ))
	ln -sf $(BINDIR)/outbox $(DESTDIR)$(SENDMAIL)
	ln -sf $(BINDIR)/outbox $(DESTDIR)$(MAILQ)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/outbox $(DESTDIR)$(MANDIR)/man1/outbox.1 \
	    $(DESTDIR)$(MANDIR)/man5/outbox.conf.5 \
	    $(DESTDIR)$(BASHCOMPDIR)/outbox $(DESTDIR)$(ZSHCOMPDIR)/_outbox \
	    $(DESTDIR)$(FISHCOMPDIR)/outbox.fish \
	    $(SYSTEMD_UNITS:%=$(DESTDIR)$(SYSTEMDUSERUNITDIR)/%)
	@for f in $(DESTDIR)$(SENDMAIL) $(DESTDIR)$(MAILQ); do \
	    if [ "$$(readlink $$f)" = "$(BINDIR)/outbox" ]; then rm -f $$f; fi; \
	done

clean:
	rm -f outbox $(OBJS) $(UNIT_BINS) .build-flags

.PHONY: all check deps demo unit unit-build install install-sendmail uninstall clean FORCE

# Fuzzing (tests/fuzz/README.md): libFuzzer targets built with clang into
# tests/fuzz/build/.  "make fuzz" runs each for FUZZ_SECONDS (default 300),
# "make fuzz-smoke" for 30 s; a crash fails the run and leaves its input in
# tests/fuzz/build/.  "make -j2 fuzz" runs two targets at a time.
FUZZ_CC		?= clang
FUZZ_SECONDS	?= 300
FUZZ_DIR	 = tests/fuzz
FUZZ_BUILD	 = $(FUZZ_DIR)/build
FUZZ_TARGETS	 = reply config message addr oauth socks linger
FUZZ_CFLAGS	 = -g -O1 -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE \
		   -Isrc $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) \
		   -fsanitize=fuzzer-no-link,address,undefined \
		   -fno-sanitize-recover=undefined
FUZZ_LDFLAGS	 = -fsanitize=fuzzer,address,undefined
FUZZ_LDLIBS	 = $(shell $(PKG_CONFIG) --libs gnutls 2>/dev/null) -ldl \
		   -lresolv
FUZZ_OBJS	 = $(SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_BINS	 = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
# Longest input per target: a reply line, a config, a message, a header,
# a token endpoint's answer, a SOCKS5 proxy's bytes.
FUZZ_MAXLEN_reply	= 4096
FUZZ_MAXLEN_config	= 8192
FUZZ_MAXLEN_message	= 65536
FUZZ_MAXLEN_addr	= 4096
FUZZ_MAXLEN_oauth	= 16384
FUZZ_MAXLEN_socks	= 1024

fuzz-cc:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "fuzz: $(FUZZ_CC)" \
	    "not found; install clang and libclang-rt-dev (or set" \
	    "FUZZ_CC)" >&2; exit 1; }
	@echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)' \
	    '{ (void)d; (void)n; return 0; }' | $(FUZZ_CC) -x c \
	    -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1 || { echo \
	    "fuzz: $(FUZZ_CC) cannot link -fsanitize=fuzzer; install" \
	    "libclang-rt-dev for your clang version" >&2; exit 1; }

$(FUZZ_BUILD)/obj/%.o: src/%.c $(HDRS) | fuzz-cc
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_DIR)/fuzz_%.c $(FUZZ_OBJS) $(HDRS) | fuzz-cc
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wall -Wextra $(FUZZ_LDFLAGS) -o $@ $< $(FUZZ_OBJS) \
	    $(FUZZ_LDLIBS)

fuzz-build: $(FUZZ_BINS)

# Keep the objects: they are intermediate files of the pattern rules.
.SECONDARY: $(FUZZ_OBJS)

# One target: new inputs go to build/corpus/T, the seeds are read only.
fuzz-run-%: $(FUZZ_BUILD)/fuzz_%
	@mkdir -p $(FUZZ_BUILD)/corpus/$*
	@echo "fuzz_$*: $(FUZZ_SECONDS) s, log in $(FUZZ_BUILD)/fuzz_$*.log"
	@$(FUZZ_BUILD)/fuzz_$* -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=$(FUZZ_MAXLEN_$*) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/fuzz_$*- \
	    $(addprefix -dict=,$(wildcard $(FUZZ_DIR)/fuzz_$*.dict)) \
	    $(FUZZ_BUILD)/corpus/$* $(FUZZ_DIR)/corpus/$* \
	    >$(FUZZ_BUILD)/fuzz_$*.log 2>&1 || { tail -n 60 \
	    $(FUZZ_BUILD)/fuzz_$*.log >&2; echo "fuzz_$*: FAILED; the" \
	    "input is $(FUZZ_BUILD)/fuzz_$*-*" >&2; exit 1; }
	@grep -E '^(stat::number_of_executed_units|Done)' \
	    $(FUZZ_BUILD)/fuzz_$*.log | sed 's/^/fuzz_$*: /'

fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=30

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-clean fuzz-cc

# outbox against msmtp on a private local Postfix + Dovecot (needs root):
# wall and CPU time, instructions, round trips, memory, a series of 20.
# BENCH_QUICK=1 for a run under a minute; see bench/README.md.
bench: outbox
	bash bench/run.sh

.PHONY: bench
