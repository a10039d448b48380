#ifndef OUTBOX_SOCKS_H
#define OUTBOX_SOCKS_H

#include <stddef.h>

#include "err.h"

/*
 * The bytes of a SOCKS5 CONNECT (RFC 1928) with no authentication:
 * building the client's two messages and checking the proxy's two
 * replies.  No I/O: conn.c sends and reads, this module only knows the
 * format, so that the parser of the proxy's bytes can be fuzzed alone.
 */
#define SOCKS5_HELLO_LEN	3	/* version, one method, "none" */
#define SOCKS5_CHOICE_LEN	2	/* the proxy's answer to it */
#define SOCKS5_MSG_MAX		(4 + 1 + 255 + 2)	/* request or reply */

/* The greeting: version 5, one method offered, 0x00 (no authentication). */
void	 socks5_hello(unsigned char buf[SOCKS5_HELLO_LEN]);
/*
 * The proxy's choice of method, exactly SOCKS5_CHOICE_LEN bytes.
 * Errors: ERR_PERM when it wants authentication (it offers none of ours),
 * ERR_PROTO for anything that is not a SOCKS5 answer.
 */
int	 socks5_choice(const unsigned char *, size_t, struct err *);
/*
 * The CONNECT request for host (an IPv4 or IPv6 literal, brackets or not,
 * goes as an address; any other name as a name, for the proxy to resolve)
 * and port, into buf of SOCKS5_MSG_MAX bytes; *len gets its length.
 * Errors: ERR_CONFIG for a name longer than 255 bytes or an empty one.
 */
int	 socks5_request(unsigned char buf[SOCKS5_MSG_MAX], size_t *len,
	    const char *host, int port, struct err *);
/*
 * Check the first len bytes of the proxy's reply to the request.
 * Returns 0 when the reply is complete (len is exactly its length) and
 * says the proxy is connected; 1 when more bytes are needed, *need being
 * the length to read up to (never more than SOCKS5_MSG_MAX, so that not
 * a byte of the server's greeting behind it is read); -1 on error.
 * Errors: for the proxy's refusal (the reply code is known with 2 bytes)
 * ERR_TEMP for failures that may pass (general failure, unreachable
 * network or host, refused, TTL expired) and ERR_PERM for refusals
 * that will not (forbidden by its rules, command or address type not
 * supported); ERR_PROTO for bytes that are not a SOCKS5 reply.  The
 * message names the reply ("connection refused (SOCKS5 reply 5)").
 */
int	 socks5_reply(const unsigned char *, size_t len, size_t *need,
	    struct err *);

#endif
