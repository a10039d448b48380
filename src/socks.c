#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "socks.h"

#define VERSION		0x05
#define METHOD_NONE	0x00
#define METHOD_REFUSED	0xff
#define CMD_CONNECT	0x01
#define ATYP_IPV4	0x01
#define ATYP_NAME	0x03
#define ATYP_IPV6	0x04

/* The reply codes of RFC 1928 section 6, and what each means for us. */
static const struct {
	const char	*what;
	enum err_class	 cls;
} replies[] = {
	[1] = { "general failure", ERR_TEMP },
	[2] = { "the connection is not allowed by its rules", ERR_PERM },
	[3] = { "network unreachable", ERR_TEMP },
	[4] = { "host unreachable", ERR_TEMP },
	[5] = { "the server refused the connection", ERR_TEMP },
	[6] = { "TTL expired", ERR_TEMP },
	[7] = { "it does not support CONNECT", ERR_PERM },
	[8] = { "it does not support this address type (it may not "
	    "resolve names)", ERR_PERM },
};

void
socks5_hello(unsigned char buf[SOCKS5_HELLO_LEN])
{
	buf[0] = VERSION;
	buf[1] = 1;
	buf[2] = METHOD_NONE;
}

int
socks5_choice(const unsigned char *b, size_t len, struct err *e)
{
	if (len != SOCKS5_CHOICE_LEN || b[0] != VERSION)
		return err_set(e, ERR_PROTO, "not a SOCKS5 answer to the "
		    "greeting (is it a SOCKS5 proxy?)");
	if (b[1] == METHOD_REFUSED)
		return err_set(e, ERR_PERM, "it wants authentication, and "
		    "outbox offers none (SOCKS5 method 0 only)");
	if (b[1] != METHOD_NONE)
		return err_set(e, ERR_PROTO, "it chose method %u, which outbox "
		    "did not offer", b[1]);
	return 0;
}

int
socks5_request(unsigned char buf[SOCKS5_MSG_MAX], size_t *len,
    const char *host, int port, struct err *e)
{
	char	lit[64];
	size_t	n = strlen(host), o = 0;

	buf[o++] = VERSION;
	buf[o++] = CMD_CONNECT;
	buf[o++] = 0;		/* reserved */
	/*
	 * An address literal, bracketed or not, goes as an address; lit
	 * stays empty for a host too long to be one.
	 */
	lit[0] = '\0';
	if (n > 2 && n - 2 < sizeof(lit) && host[0] == '[' &&
	    host[n - 1] == ']') {
		memcpy(lit, host + 1, n - 2);
		lit[n - 2] = '\0';
	} else if (n < sizeof(lit))
		memcpy(lit, host, n + 1);
	if (inet_pton(AF_INET, lit, buf + o + 1) == 1) {
		buf[o] = ATYP_IPV4;
		o += 1 + 4;
	} else if (inet_pton(AF_INET6, lit, buf + o + 1) == 1) {
		buf[o] = ATYP_IPV6;
		o += 1 + 16;
	} else {
		if (n == 0 || n > 255)
			return err_set(e, ERR_CONFIG, "a SOCKS5 proxy takes "
			    "host names of 1 to 255 bytes, not %zu", n);
		buf[o++] = ATYP_NAME;
		buf[o++] = (unsigned char)n;
		memcpy(buf + o, host, n);
		o += n;
	}
	buf[o++] = (unsigned char)(port >> 8);
	buf[o++] = (unsigned char)port;
	*len = o;
	return 0;
}

/* The length of a reply whose first 5 bytes are b; 0 for a bad type. */
static size_t
reply_len(const unsigned char *b)
{
	switch (b[3]) {
	case ATYP_IPV4:
		return 4 + 4 + 2;
	case ATYP_IPV6:
		return 4 + 16 + 2;
	case ATYP_NAME:
		return b[4] == 0 ? 0 : 4 + 1 + (size_t)b[4] + 2;
	}
	return 0;
}

int
socks5_reply(const unsigned char *b, size_t len, size_t *need, struct err *e)
{
	size_t	total;

	if (len >= 1 && b[0] != VERSION)
		return err_set(e, ERR_PROTO, "not a SOCKS5 reply (version %u)",
		    b[0]);
	if (len >= 2 && b[1] != 0) {
		if (b[1] < sizeof(replies) / sizeof(replies[0]))
			return err_set(e, replies[b[1]].cls, "%s (SOCKS5 reply "
			    "%u)", replies[b[1]].what, b[1]);
		return err_set(e, ERR_PROTO, "unknown SOCKS5 reply %u", b[1]);
	}
	if (len < 5) {
		*need = len < 2 ? 2 : 5;
		return 1;
	}
	if ((total = reply_len(b)) == 0)
		return err_set(e, ERR_PROTO, "a SOCKS5 reply with a bad "
		    "address (type %u)", b[3]);
	*need = total;
	if (len < total)
		return 1;
	if (len > total)
		return err_set(e, ERR_PROTO, "a SOCKS5 reply longer than its "
		    "address");
	return 0;
}
