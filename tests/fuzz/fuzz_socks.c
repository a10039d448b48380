/*
 * libFuzzer target: the input as a SOCKS5 proxy's bytes.  The first two
 * go to socks5_choice() (the answer to the greeting); the rest is fed to
 * socks5_reply() as conn.c feeds it, reading only up to the length it
 * asks for each time.  The input is also tried as a host name for
 * socks5_request().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socks.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fail(const char *why)
{
	fprintf(stderr, "fuzz_socks: %s\n", why);
	abort();
}

static void
check_err(const struct err *e, int perm_ok, int temp_ok)
{
	if (e->msg[0] == '\0' || memchr(e->msg, '\0', sizeof(e->msg)) == NULL)
		fail("an error without a terminated message");
	if (e->cls == ERR_PROTO || (perm_ok && e->cls == ERR_PERM) ||
	    (temp_ok && e->cls == ERR_TEMP))
		return;
	fail("unexpected error class");
}

static void
check_choice(const uint8_t *d, size_t n)
{
	struct err	e;
	size_t		len = n < SOCKS5_CHOICE_LEN ? n : SOCKS5_CHOICE_LEN;

	memset(&e, 0, sizeof(e));
	if (socks5_choice(d, len, &e) == 0) {
		if (len != 2 || d[0] != 5 || d[1] != 0)
			fail("a choice other than 05 00 was taken");
		return;
	}
	check_err(&e, 1, 0);
}

/* As conn.c reads: never past what the parser asked for. */
static void
check_reply(const uint8_t *d, size_t n)
{
	struct err	e;
	size_t		len = 2 < n ? 2 : n, need = 0;
	int		rv;

	memset(&e, 0, sizeof(e));
	while ((rv = socks5_reply(d, len, &need, &e)) == 1) {
		if (need <= len || need > SOCKS5_MSG_MAX)
			fail("asked for no more bytes, or too many");
		if (len == n)
			return;		/* the proxy closed the connection */
		len = need < n ? need : n;
	}
	if (rv == 0) {
		/* The shortest: a one-byte name and the port. */
		if (len < 8 || d[0] != 5 || d[1] != 0)
			fail("a reply taken that is no success");
		if (len != need)
			fail("a reply taken whose length is not its own");
		return;
	}
	if (rv != -1)
		fail("a return value other than 0, 1, -1");
	check_err(&e, 1, 1);
}

static void
check_request(const uint8_t *d, size_t n)
{
	unsigned char	 buf[SOCKS5_MSG_MAX + 1];
	struct err	 e;
	size_t		 len = 0;
	char		*host = xstrndup((const char *)d, n);
	int		 port = n > 0 ? d[0] * 256 + (n > 1 ? d[1] : 0) : 25;

	memset(&e, 0, sizeof(e));
	buf[SOCKS5_MSG_MAX] = 0xa5;
	if (socks5_request(buf, &len, host, port, &e) == 0) {
		if (len < 8 || len > SOCKS5_MSG_MAX || buf[0] != 5 ||
		    buf[1] != 1 || buf[2] != 0)
			fail("a malformed request");
		if (buf[3] == 3 && (buf[4] == 0 || (size_t)buf[4] + 7 != len ||
		    memcmp(buf + 5, host, buf[4]) != 0))
			fail("the name is not sent as it is");
		if (buf[len - 2] != (unsigned char)(port >> 8) ||
		    buf[len - 1] != (unsigned char)port)
			fail("the port is not sent");
	} else if (e.cls != ERR_CONFIG)
		fail("a request error that is not ERR_CONFIG");
	if (buf[SOCKS5_MSG_MAX] != 0xa5)
		fail("the request overran its buffer");
	free(host);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t	*copy = xmalloc(size + 1);

	/* Exact-size copies, so that ASan sees any read past the end. */
	memcpy(copy, data, size);
	check_choice(copy, size);
	if (size > 2)
		check_reply(copy + 2, size - 2);
	else
		check_reply(copy + size, 0);
	check_request(copy, size);
	free(copy);
	return 0;
}
