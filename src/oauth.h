#ifndef OUTBOX_OAUTH_H
#define OUTBOX_OAUTH_H

#include <stddef.h>

#include "err.h"
#include "util.h"

/*
 * An OAuth 2.0 client (RFC 6749) of a token endpoint over HTTPS: refresh,
 * device authorization (RFC 8628), authorization code with PKCE (RFC 7636)
 * and client credentials.  The endpoint always gets TLS 1.2 or later with
 * its certificate and host name checked against the system store (or
 * trust_file); nothing of the mail account's TLS settings applies.  It is
 * reached through the account's proxy, if any, as the mail server is.  The
 * answer is bounded in size and time and redirects are never followed.
 * Tokens are secrets: they never reach an error message.
 */
struct oauth_client {
	const char	*client_id;
	const char	*client_secret;	/* NULL: a public client */
	const char	*trust_file;	/* NULL: the system store */
	const char	*proxy_host;	/* the mail account's SOCKS5 proxy,
					   or NULL */
	int		 proxy_port;
	int		 timeout_ms;	/* the whole exchange */
};

struct oauth_tokens {
	char	*access;
	char	*refresh;	/* a new (rotated) refresh token, or NULL */
	long	 expires_in;	/* seconds; -1: not given */
	char	 error[64];	/* the endpoint's error code, sanitised */
};

struct oauth_device {
	char	*device_code;
	char	*user_code;
	char	*verification_uri;
	char	*verification_uri_complete;	/* or NULL */
	long	 interval;	/* seconds between polls */
	long	 expires_in;
};

/*
 * Every call returns 0 with tokens filled in, or -1.  Errors: ERR_CONFIG
 * for a URL that is not https:// or a client the endpoint does not know
 * (invalid_client, unauthorized_client, invalid_scope); ERR_TEMP for
 * network trouble, a 5xx, and invalid_grant (the refresh token is no
 * longer valid: tokens->error says so, the caller names the fix);
 * ERR_AUTH for access_denied; ERR_PROTO for an answer that is not HTTP,
 * not JSON, a redirect, or without a token.
 */
int	 oauth_refresh(const struct oauth_client *, const char *token_url,
	    const char *refresh_token, struct oauth_tokens *, struct err *);
int	 oauth_client_credentials(const struct oauth_client *,
	    const char *token_url, const char *scope, struct oauth_tokens *,
	    struct err *);
int	 oauth_code_exchange(const struct oauth_client *, const char *token_url,
	    const char *code, const char *verifier, const char *redirect_uri,
	    struct oauth_tokens *, struct err *);
/* Start a device authorization: the codes to show the user. */
int	 oauth_device_start(const struct oauth_client *, const char *device_url,
	    const char *scope, struct oauth_device *, struct err *);
/*
 * One poll of the token endpoint for a device code: 0 done, 1 not yet
 * (authorization_pending or slow_down, which adds 5 s to *interval), -1
 * error (expired_token: ERR_TEMP; access_denied: ERR_AUTH).
 */
int	 oauth_device_poll(const struct oauth_client *, const char *token_url,
	    const char *device_code, long *interval, struct oauth_tokens *,
	    struct err *);
void	 oauth_tokens_free(struct oauth_tokens *);
void	 oauth_device_free(struct oauth_device *);

/* application/x-www-form-urlencoded: add k=v (v percent-encoded) to b. */
void	 oauth_form_add(struct buf *, const char *k, const char *v);

/*
 * Split a whole HTTP/1.x answer into its status and body (de-chunked into
 * body).  *location gets the Location header's value (sanitised) when
 * there is one.  Errors: ERR_PROTO.  Used by the fuzzer too.
 */
int	 oauth_http_parse(const char *, size_t, int *status, struct buf *body,
	    char *location, size_t loclen, struct err *);

#endif

/*
 * PKCE (RFC 7636): a fresh random verifier (43 characters) and its S256
 * challenge, base64url without padding; state too, for the redirect.
 */
int	 oauth_pkce(char verifier[64], char challenge[64], char state[32],
	    struct err *);
/* The authorization URL for the code flow (free with free()). */
char	*oauth_auth_url(const char *auth_url, const char *client_id,
	    const char *redirect_uri, const char *scope, const char *state,
	    const char *challenge);
/*
 * The loopback redirect (RFC 8252 section 7.3): listen on 127.0.0.1 on
 * a free port.  Errors: ERR_OS.
 */
int	 oauth_listen(int *fd, int *port, struct err *);
/*
 * Take redirects until one carries our state, at most timeout_ms: *code
 * gets the code (free with secret_free).  Errors: ERR_AUTH for an error
 * the provider sends back (access_denied...), ERR_TEMP on timeout.
 * Requests with another state are answered 400 and ignored.
 */
int	 oauth_redirect_wait(int fd, const char *state, int timeout_ms,
	    char **code, struct err *);
