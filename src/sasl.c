#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gsasl.h>

#include "sasl.h"
#include "util.h"

struct sasl {
	Gsasl		*ctx;
	Gsasl_session	*sess;
	/* OAuth 2.0 bearer mechanisms, which gsasl does not have. */
	int		 bearer;	/* 1 XOAUTH2, 2 OAUTHBEARER */
	int		 sent;
	char		*user;
	char		*token;
};

/* Strongest first.  Mechanisms that reveal the password come last. */
static const struct {
	const char	*name;
	int		 needs_cb;
	int		 sends_password;
} prefs[] = {
	{ "SCRAM-SHA-256-PLUS",	1, 0 },
	{ "SCRAM-SHA-1-PLUS",	1, 0 },
	{ "SCRAM-SHA-256",	0, 0 },
	{ "SCRAM-SHA-1",	0, 0 },
	{ "PLAIN",		0, 1 },
	{ "LOGIN",		0, 1 },
	{ "CRAM-MD5",		0, 1 },	/* weak: treat as if it revealed it */
};

#define NPREFS	(sizeof(prefs) / sizeof(prefs[0]))

/* Mechanisms that can be named with auth but are not picked by "auth on". */
static const char *const others[] = { "EXTERNAL", "GSSAPI", "XOAUTH2",
    "OAUTHBEARER", NULL };

static const char *
canonical(const char *want)
{
	size_t	i;

	for (i = 0; i < NPREFS; i++)
		if (strcasecmp(prefs[i].name, want) == 0)
			return prefs[i].name;
	for (i = 0; others[i] != NULL; i++)
		if (strcasecmp(others[i], want) == 0)
			return others[i];
	return NULL;
}

static int
offered_has(const char *offered, const char *mech)
{
	size_t		 n = strlen(mech);
	const char	*p = offered;

	while ((p = strcasestr(p, mech)) != NULL) {
		if ((p == offered || p[-1] == ' ') &&
		    (p[n] == '\0' || p[n] == ' '))
			return 1;
		p += n;
	}
	return 0;
}

static int
reveals_password(const char *mech)
{
	size_t	i;

	if (strcasecmp(mech, "XOAUTH2") == 0 ||
	    strcasecmp(mech, "OAUTHBEARER") == 0)
		return 1;		/* a bearer token is a password */
	for (i = 0; i < NPREFS; i++)
		if (strcasecmp(prefs[i].name, mech) == 0)
			return prefs[i].sends_password;
	return 0;
}

int
sasl_choose(const char *offered, const char *want, int encrypted,
    int have_cb, const char **mech, struct err *e)
{
	const char	*name;
	size_t		 i;

	if (strcmp(want, "on") != 0) {
		if ((name = canonical(want)) == NULL)
			return err_set(e, ERR_CONFIG, "auth %s is not supported "
			    "yet", want);
		if (!encrypted && reveals_password(name))
			return err_set(e, ERR_CONFIG, "auth %s would send the "
			    "password unencrypted; outbox refuses (turn on tls)",
			    want);
		if (!offered_has(offered, name))
			return err_set(e, ERR_PERM, "the server does not offer "
			    "AUTH %s (it offers: %s)", name, *offered ?
			    offered : "nothing");
		*mech = name;
		return 0;
	}
	for (i = 0; i < NPREFS; i++) {
		if (prefs[i].needs_cb && !have_cb)
			continue;
		if (prefs[i].sends_password && !encrypted)
			continue;
		if (offered_has(offered, prefs[i].name)) {
			*mech = prefs[i].name;
			return 0;
		}
	}
	if (*offered == '\0')
		return err_set(e, ERR_PERM, "the server offers no authentication "
		    "(AUTH); set 'auth off' if it needs none");
	return err_set(e, ERR_PERM, "no usable authentication mechanism: the "
	    "server offers %s%s", offered, encrypted ? "" :
	    " and the connection is not encrypted");
}

int
sasl_initial_response(const char *mech)
{
	return strcasecmp(mech, "LOGIN") != 0 &&
	    strcasecmp(mech, "CRAM-MD5") != 0;
}

int
sasl_start(struct sasl **out, const char *mech, const struct sasl_creds *c,
    struct err *e)
{
	struct sasl	*s = xcalloc(1, sizeof(*s));
	int		 rv;

	if (strcmp(mech, "XOAUTH2") == 0 || strcmp(mech, "OAUTHBEARER") == 0) {
		s->bearer = strcmp(mech, "XOAUTH2") == 0 ? 1 : 2;
		s->user = xstrdup(c->user ? c->user : "");
		s->token = xstrdup(c->password ? c->password : "");
		*out = s;
		return 0;
	}
	if ((rv = gsasl_init(&s->ctx)) != GSASL_OK) {
		free(s);
		return err_set(e, ERR_SOFTWARE, "SASL: %s", gsasl_strerror(rv));
	}
	if ((rv = gsasl_client_start(s->ctx, mech, &s->sess)) != GSASL_OK) {
		err_set(e, ERR_SOFTWARE, "SASL %s: %s", mech,
		    gsasl_strerror(rv));
		sasl_end(s);
		return -1;
	}
	if (c->user != NULL)
		gsasl_property_set(s->sess, GSASL_AUTHID, c->user);
	if (c->password != NULL)
		gsasl_property_set(s->sess, GSASL_PASSWORD, c->password);
	/*
	 * Channel binding only for -PLUS: gsasl 2.2 fails a plain SCRAM
	 * exchange when tls-exporter data is set.
	 */
	if (c->cb_data != NULL && strlen(mech) > 5 &&
	    strcmp(mech + strlen(mech) - 5, "-PLUS") == 0)
		gsasl_property_set(s->sess,
		    strcmp(c->cb_name, "tls-exporter") == 0 ?
		    GSASL_CB_TLS_EXPORTER : GSASL_CB_TLS_UNIQUE, c->cb_data);
	*out = s;
	return 0;
}

/*
 * XOAUTH2 and OAUTHBEARER (RFC 7628): the token goes in the initial
 * response; a challenge after it carries the server's error, which is
 * acknowledged ("" or ^A) so that the server sends its final refusal.
 */
static int
bearer_step(struct sasl *s, char **out, struct err *e)
{
	struct buf	 b = { 0 };
	size_t		 len;
	int		 rv;

	if (s->sent) {
		*out = xstrdup(s->bearer == 1 ? "" : "AQ==");
		return 1;
	}
	s->sent = 1;
	if (s->bearer == 1)
		buf_addf(&b, "user=%s\001auth=Bearer %s\001\001", s->user,
		    s->token);
	else
		buf_addf(&b, "n,a=%s,\001auth=Bearer %s\001\001", s->user,
		    s->token);
	rv = gsasl_base64_to(b.p, b.len, out, &len);
	buf_wipe(&b);
	if (rv != GSASL_OK)
		return err_set(e, ERR_SOFTWARE, "SASL: %s", gsasl_strerror(rv));
	return 0;
}

int
sasl_step(struct sasl *s, const char *in, char **out, struct err *e)
{
	int	rv;

	*out = NULL;
	if (s->bearer)
		return bearer_step(s, out, e);
	rv = gsasl_step64(s->sess, in, out);
	if (rv == GSASL_OK)
		return 1;
	if (rv == GSASL_NEEDS_MORE)
		return 0;
	free(*out);
	*out = NULL;
	return err_set(e, ERR_AUTH, "SASL: %s", gsasl_strerror(rv));
}

void
sasl_end(struct sasl *s)
{
	if (s == NULL)
		return;
	free(s->user);
	secret_free(s->token);
	if (s->sess != NULL) {
		/* Do not leave the password in gsasl's memory. */
		gsasl_property_set(s->sess, GSASL_PASSWORD, NULL);
		gsasl_finish(s->sess);
	}
	if (s->ctx != NULL)
		gsasl_done(s->ctx);
	free(s);
}

const char *
sasl_version(void)
{
	return gsasl_check_version(NULL);
}
