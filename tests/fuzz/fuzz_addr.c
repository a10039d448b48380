/*
 * libFuzzer target: addr_parse_list() on the input as a C string.  Every
 * address it returns goes into "MAIL FROM:<%s>" / "RCPT TO:<%s>" as is, so
 * none may be empty or hold a control character (CR/LF would inject a
 * command), nor white space or an angle bracket outside a quoted string,
 * nor an unterminated quoted string.  A backslash escapes the next
 * character, inside quotes (RFC 5321 quoted-pair) and outside them too,
 * as servers' tokenisers (Postfix's) read it: so '<\"x>' has a '>'
 * outside quotes.  The same rules hold for addr_path(), which parses
 * the MAIL and RCPT arguments of outbox's -bs server.  addr_qualify()
 * (bare names made full, for header fields) keeps a list that parses
 * parsing, to as many addresses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fail(const char *why, const char *a)
{
	fprintf(stderr, "fuzz_addr: %s: '%s'\n", why, a);
	abort();
}

static void
check_addr(const char *a)
{
	const char	*p;
	int		 q = 0, esc = 0;

	if (*a == '\0')
		fail("empty address", a);
	for (p = a; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f)
			fail("control character in address", a);
		if (esc)
			esc = 0;
		else if (c == '\\')
			esc = 1;
		else if (c == '"')
			q = !q;
		else if (!q && (c == '<' || c == '>'))
			fail("angle bracket outside quotes", a);
		else if (!q && c == ' ')
			fail("space outside quotes", a);
	}
	if (q)
		fail("unterminated quoted string", a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addrlist	 l = { 0 };
	struct err	 e;
	char		*s, *q;
	size_t		 i;
	int		 rv;

	s = xstrndup((const char *)data, size);
	memset(&e, 0, sizeof(e));
	rv = addr_parse_list(&l, s, &e);
	if (rv == -1 && e.cls != ERR_ADDR)
		fail("error class is not ERR_ADDR", e.msg);
	/*
	 * Qualifying bare names keeps a good list good, address for address
	 * (unless the domain makes one longer than the parser's limit).
	 */
	for (i = 0; i < l.n; i++)
		if (strlen(l.v[i]) > 254 - sizeof("@fuzz.example"))
			rv = 1;
	if ((q = addr_qualify(s, "fuzz.example")) != NULL && rv == 0) {
		struct addrlist	ql = { 0 };

		if (addr_parse_list(&ql, q, &e) == -1 || ql.n != l.n)
			fail("a qualified list parses differently", q);
		for (i = 0; i < ql.n; i++)
			check_addr(ql.v[i]);
		addrlist_free(&ql);
	}
	free(q);
	/* What was added before an error is checked too. */
	for (i = 0; i < l.n; i++)
		check_addr(l.v[i]);
	addrlist_free(&l);
	/* The -bs server's path parser: what it returns goes out as is. */
	{
		char *a = addr_path(s, "FROM:");

		if (a != NULL && *a != '\0')
			check_addr(a);
		free(a);
	}
	free(s);
	return 0;
}
