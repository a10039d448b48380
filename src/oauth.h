#ifndef OUTBOX_OAUTH_H
#define OUTBOX_OAUTH_H

#include "conn.h"
#include "err.h"

/*
 * OAuth 2.0 refresh (RFC 6749 section 6): trade a refresh token for an
 * access token at the provider's token endpoint, over HTTPS through the
 * connection layer.  The caller keeps the tokens (secrets) safe.
 */
struct oauth_params {
	const char		*url;		/* https://host[:port]/path */
	const char		*client_id;
	const char		*client_secret;	/* NULL: a public client */
	const char		*refresh_token;
	struct tls_params	 tls;		/* hostname filled in here */
	int			 timeout_ms;
};

/*
 * Errors: ERR_CONFIG for a URL that is not https, ERR_AUTH when the
 * endpoint refuses the refresh token (its error is quoted), ERR_TEMP for
 * network trouble or a 5xx, ERR_PROTO for an answer without a token.
 */
int	 oauth_refresh(const struct oauth_params *, char **access_token,
	    long *expires_in, struct err *);

#endif
