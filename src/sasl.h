#ifndef OUTBOX_SASL_H
#define OUTBOX_SASL_H

#include "err.h"

/*
 * SASL client, a thin layer over libgsasl: it picks the mechanism and runs
 * the exchange in base64, the form SMTP carries.  It knows nothing of SMTP.
 */
struct sasl;

struct sasl_creds {
	const char	*user;
	const char	*password;
	const char	*cb_name;	/* "tls-exporter", "tls-unique" or NULL */
	const char	*cb_data;	/* base64 channel binding data */
};

/*
 * Choose the mechanism: want is "on" (the strongest both sides support)
 * or a mechanism name.  offered is the server's AUTH list.  PLAIN, LOGIN
 * and CRAM-MD5 are never chosen on an unencrypted connection.  Errors:
 * ERR_PERM when nothing fits (the message lists what the server offers),
 * ERR_CONFIG for a mechanism outbox cannot do.
 */
int	 sasl_choose(const char *offered, const char *want, int encrypted,
	    int have_cb, const char **mech, struct err *);
/* What outbox knows of a mechanism: one table, in src/sasl.c. */
struct sasl_mech {
	const char	*name;
	int		 rank;		/* order for "auth on"; 0: only named */
	int		 needs_cb;	/* channel binding (-PLUS) */
	int		 sends_secret;	/* reveals the password or token: TLS */
	int		 initial;	/* client-first: its first message goes
					   with AUTH */
	int		 one_step;	/* done in that message: may be pipelined */
	int		 ours;		/* done here, not by libgsasl */
};

/* The mechanism called name (any case), or NULL if outbox has none. */
const struct sasl_mech *sasl_mech(const char *name);
int	 sasl_start(struct sasl **, const char *mech, const struct sasl_creds *,
	    struct err *);
/*
 * One step: in is the server's base64 challenge ("" for none), *out the
 * base64 answer (free with free()).  Returns 1 when the client side is
 * done, 0 when more is expected, -1 on error (ERR_AUTH or ERR_PROTO).
 */
int	 sasl_step(struct sasl *, const char *in, char **out, struct err *);
void	 sasl_end(struct sasl *);
/*
 * XOAUTH2, OAUTHBEARER: what the server's error challenge said ("status
 * invalid_token, scope ..."), sanitised; NULL when it sent none.
 */
const char *sasl_server_error(const struct sasl *);
/* libgsasl's version, loading it to ask; or why it cannot be loaded. */
void	 sasl_version(char *, size_t);

#endif
