#ifndef OUTBOX_SASL_H
#define OUTBOX_SASL_H

#include "err.h"

/*
 * SASL client, a thin layer over libgsasl: it picks the mechanism and runs
 * the exchange in base64, the form SMTP carries.  It knows nothing of SMTP.
 */
struct sasl;

/*
 * SCRAM: a salted password kept from an earlier exchange for the same
 * hash ("SCRAM-SHA-256" or "SCRAM-SHA-1", for the -PLUS forms too), salt
 * (base64) and count.  get copies it (hex) into key and returns 1, or
 * returns 0 when none is kept; put is given the one computed by an
 * exchange that succeeded (the server's signature checked).  Whoever
 * keeps them decides where; this layer never stores anything.
 */
struct sasl_keep {
	int	 (*get)(void *, const char *hash, const char *salt,
		    unsigned long iter, char *key, size_t len);
	void	 (*put)(void *, const char *hash, const char *salt,
		    unsigned long iter, const char *key);
	void	*arg;
};

struct sasl_creds {
	const char	*user;
	const char	*password;
	const char	*cb_name;	/* "tls-exporter", "tls-unique" or NULL */
	const char	*cb_data;	/* base64 channel binding data */
	const struct sasl_keep *keep;	/* NULL: SCRAM computes every time */
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
/*
 * After the server accepted (235): for SCRAM, hand a salted password
 * computed in this exchange to keep->put.  Returns SASL_KEY_USED when the
 * exchange used a kept one, SASL_KEY_KEPT when it handed a new one over,
 * else SASL_KEY_NONE.  sasl_key_used says whether a kept one was used,
 * whatever the outcome (a refusal may mean that it was wrong).
 */
enum { SASL_KEY_NONE, SASL_KEY_USED, SASL_KEY_KEPT };
int	 sasl_accepted(struct sasl *);
int	 sasl_key_used(const struct sasl *);
void	 sasl_end(struct sasl *);
/*
 * XOAUTH2, OAUTHBEARER: what the server's error challenge said ("status
 * invalid_token, scope ..."), sanitised; NULL when it sent none.
 */
const char *sasl_server_error(const struct sasl *);
/* libgsasl's version, loading it to ask; or why it cannot be loaded. */
void	 sasl_version(char *, size_t);

#endif
