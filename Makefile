# outbox: a sendmail-compatible mail submission client.
#
#   make            build ./outbox
#   make check      build and run every test (installs what it needs)
#   make check SANITIZE=1   the same, built with ASan and UBSan
#   make demo       send a message through a throwaway local server
#   make install    PREFIX, DESTDIR, BINDIR, MANDIR are honoured

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
# Where install-sendmail puts its links: the paths callers use.
SENDMAIL ?= /usr/sbin/sendmail
MAILQ	?= /usr/bin/mailq
MANDIR	?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d

PKG_CONFIG ?= pkg-config
PKGS	= gnutls libgsasl libsecret-1

CC	?= cc
CFLAGS	?= -O2 -g
CFLAGS	+= -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -D_GNU_SOURCE
# libsecret's headers give the types; the library itself is loaded with
# dlopen() only when the keyring is asked, so GLib is not linked.
CFLAGS	+= $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LDLIBS	+= $(shell $(PKG_CONFIG) --libs gnutls libgsasl 2>/dev/null) -ldl

ifeq ($(SANITIZE),1)
CFLAGS	+= -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined
LDFLAGS	+= -fsanitize=address,undefined
endif

SRCS	= src/addr.c src/config.c src/conn.c src/err.c src/log.c \
	  src/message.c src/sasl.c src/secret.c src/smtp.c src/util.c
CMDS	= cmd/outbox.c cmd/options.c cmd/account.c cmd/send.c
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

check: deps
	$(MAKE) outbox
	bats tests/
	mandoc -T lint -W warning man/outbox.1 man/outbox.conf.5

demo: deps outbox
	@bash tests/demo.sh

install: outbox
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(BASHCOMPDIR) \
	    $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 755 outbox $(DESTDIR)$(BINDIR)/outbox
	install -m 644 man/outbox.1 $(DESTDIR)$(MANDIR)/man1/outbox.1
	install -m 644 man/outbox.conf.5 $(DESTDIR)$(MANDIR)/man5/outbox.conf.5
	install -m 644 completions/outbox.bash $(DESTDIR)$(BASHCOMPDIR)/outbox
	install -m 644 completions/_outbox $(DESTDIR)$(ZSHCOMPDIR)/_outbox
	install -m 644 completions/outbox.fish \
	    $(DESTDIR)$(FISHCOMPDIR)/outbox.fish

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
	    $(DESTDIR)$(FISHCOMPDIR)/outbox.fish
	@for f in $(DESTDIR)$(SENDMAIL) $(DESTDIR)$(MAILQ); do \
	    if [ "$$(readlink $$f)" = "$(BINDIR)/outbox" ]; then rm -f $$f; fi; \
	done

clean:
	rm -f outbox $(OBJS) .build-flags

.PHONY: all check deps demo install install-sendmail uninstall clean FORCE
