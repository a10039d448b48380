#include <ctype.h>
#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gsasl.h>

#include "json.h"
#include "sasl.h"
#include "util.h"

/*
 * libgsasl, loaded with dlopen() when an exchange needs it: a run that does
 * not authenticate, or uses XOAUTH2 or OAUTHBEARER, never maps it nor the
 * libraries it pulls in (libidn, libntlm, GSS-API).
 */
struct gsasl_lib {
	void	*h;
	int	 (*init)(Gsasl **);
	void	 (*done)(Gsasl *);
	int	 (*client_start)(Gsasl *, const char *, Gsasl_session **);
	void	 (*finish)(Gsasl_session *);
	void	 (*callback_set)(Gsasl *, Gsasl_callback_function);
	void	 (*session_hook_set)(Gsasl_session *, void *);
	int	 (*property_set)(Gsasl_session *, Gsasl_property, const char *);
	const char *(*property_fast)(Gsasl_session *, Gsasl_property);
	const char *(*mechanism_name)(Gsasl_session *);
	int	 (*saslprep)(const char *, Gsasl_saslprep_flags, char **,
		    int *);
	int	 (*step64)(Gsasl_session *, const char *, char **);
	const char *(*strerror)(int);
	const char *(*check_version)(const char *);
};

static const struct {
	const char	*name;
	size_t		 off;
} gsasl_syms[] = {
#define SYM(f)	{ "gsasl_" #f, offsetof(struct gsasl_lib, f) }
	SYM(init), SYM(done), SYM(client_start), SYM(finish),
	SYM(callback_set), SYM(session_hook_set), SYM(property_set),
	SYM(property_fast), SYM(mechanism_name), SYM(saslprep), SYM(step64),
	SYM(strerror), SYM(check_version),
#undef SYM
};

static int
gsasl_load(struct gsasl_lib *g, struct err *e)
{
	size_t	i;
	void	*f;

	memset(g, 0, sizeof(*g));
	if ((g->h = dlopen("libgsasl.so.18", RTLD_NOW | RTLD_LOCAL)) == NULL)
		return err_set(e, ERR_TEMP, "the SASL library libgsasl "
		    "cannot be loaded: %s", dlerror());
	for (i = 0; i < sizeof(gsasl_syms) / sizeof(gsasl_syms[0]); i++) {
		if ((f = dlsym(g->h, gsasl_syms[i].name)) == NULL) {
			dlclose(g->h);
			g->h = NULL;
			return err_set(e, ERR_SOFTWARE, "libgsasl lacks %s",
			    gsasl_syms[i].name);
		}
		memcpy((char *)g + gsasl_syms[i].off, &f, sizeof(f));
	}
	return 0;
}

struct sasl {
	struct gsasl_lib gs;
	Gsasl		*ctx;
	Gsasl_session	*sess;
	/* OAuth 2.0 bearer mechanisms, which gsasl does not have. */
	int		 bearer;	/* 1 XOAUTH2, 2 OAUTHBEARER */
	int		 sent;
	char		*user;
	char		*token;
	char		 server_error[200];	/* bearer: the JSON error */
	unsigned long	 iter;		/* SCRAM count refused; ULONG_MAX:
					   not a count at all */
	/* SCRAM's salted password: kept from before, or to be kept. */
	const struct sasl_keep *keep;
	int		 key_used;	/* it came from keep */
	int		 key_made;	/* computed here, for keep->put */
	const char	*hash;		/* "SCRAM-SHA-256" or "SCRAM-SHA-1" */
	char		*salt;
	unsigned long	 key_iter;
};

/* SCRAM: more PBKDF2 rounds than this is a server wasting our time. */
#define SCRAM_ITER_MAX	1000000UL

/*
 * What outbox knows of each mechanism, in the order "auth on" picks them:
 * strongest first, those that reveal the password last; those with no
 * rank are used only when named.
 */
static const struct sasl_mech mechs[] = {
	/* name			rank cb secret initial one_step ours */
	{ "SCRAM-SHA-256-PLUS",	1,   1, 0,     1,      0,       0 },
	{ "SCRAM-SHA-1-PLUS",	2,   1, 0,     1,      0,       0 },
	{ "SCRAM-SHA-256",	3,   0, 0,     1,      0,       0 },
	{ "SCRAM-SHA-1",	4,   0, 0,     1,      0,       0 },
	{ "PLAIN",		5,   0, 1,     1,      1,       0 },
	{ "LOGIN",		6,   0, 1,     0,      0,       0 },
	/* weak: treated as if it revealed the password */
	{ "CRAM-MD5",		7,   0, 1,     0,      0,       0 },
	{ "EXTERNAL",		0,   0, 0,     1,      1,       0 },
	{ "GSSAPI",		0,   0, 0,     1,      0,       0 },
	/* a bearer token is a password */
	{ "XOAUTH2",		0,   0, 1,     1,      0,       1 },
	{ "OAUTHBEARER",	0,   0, 1,     1,      0,       1 },
};

#define NMECHS	(sizeof(mechs) / sizeof(mechs[0]))

const struct sasl_mech *
sasl_mech(const char *name)
{
	size_t	i;

	for (i = 0; i < NMECHS; i++)
		if (strcasecmp(mechs[i].name, name) == 0)
			return &mechs[i];
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

int
sasl_choose(const char *offered, const char *want, int encrypted,
    int have_cb, const char **mech, struct err *e)
{
	const struct sasl_mech	*m;
	size_t			 i;

	if (strcmp(want, "on") != 0) {
		if ((m = sasl_mech(want)) == NULL)
			return err_set(e, ERR_CONFIG, "auth %s is not supported "
			    "yet", want);
		if (!encrypted && m->sends_secret)
			return err_set(e, ERR_CONFIG, "auth %s would send the "
			    "password unencrypted; outbox refuses (turn on tls)",
			    want);
		if (!offered_has(offered, m->name))
			return err_set(e, ERR_PERM, "the server does not offer "
			    "AUTH %s (it offers: %s)", m->name, *offered ?
			    offered : "nothing");
		*mech = m->name;
		return 0;
	}
	/* The table is in rank order. */
	for (i = 0; i < NMECHS && mechs[i].rank != 0; i++) {
		if (mechs[i].needs_cb && !have_cb)
			continue;
		if (mechs[i].sends_secret && !encrypted)
			continue;
		if (offered_has(offered, mechs[i].name)) {
			*mech = mechs[i].name;
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

/*
 * SCRAM's SaltedPassword := PBKDF2(SASLprep(password), salt, i).  gsasl asks
 * for it through its callback before it would compute it with its own
 * generic SHA code; GnuTLS's uses the CPU's SHA instructions.  A
 * refused count also clears the password, so that gsasl cannot go on
 * without us.
 */
/*
 * A salted password kept for this hash, salt and count, when the keeper
 * has one: gsasl then needs neither the password nor PBKDF2.
 */
static int
kept_key(struct sasl *s, Gsasl_session *sess, const char *salt64,
    unsigned long iter)
{
	char	key[65];
	int	rv;

	if (s->keep == NULL || s->keep->get(s->keep->arg, s->hash, salt64, iter,
	    key, sizeof(key)) != 1)
		return 0;
	key[sizeof(key) - 1] = '\0';
	rv = s->gs.property_set(sess, GSASL_SCRAM_SALTED_PASSWORD, key);
	explicit_bzero(key, sizeof(key));
	if (rv != GSASL_OK)
		return 0;
	s->key_used = 1;
	return 1;
}

static int
salted_password(struct sasl *s, Gsasl_session *sess)
{
	const char	*mech = s->gs.mechanism_name(sess);
	const char	*iters = s->gs.property_fast(sess, GSASL_SCRAM_ITER);
	const char	*salt64 = s->gs.property_fast(sess, GSASL_SCRAM_SALT);
	const char	*pw = s->gs.property_fast(sess, GSASL_PASSWORD);
	int		 sha256 = strncmp(mech, "SCRAM-SHA-256", 13) == 0;
	size_t		 len = sha256 ? 32 : 20, i;
	unsigned char	 out[32];
	char		 hex[65], *prep = NULL, *end;
	unsigned long	 iter;
	gnutls_datum_t	 in, k, st = { NULL, 0 };
	int		 rv = GSASL_AUTHENTICATION_ERROR;

	if (iters == NULL || salt64 == NULL || pw == NULL)
		return GSASL_NO_CALLBACK;
	iter = strtoul(iters, &end, 10);
	if (*end != '\0' || iter == 0 || iter > SCRAM_ITER_MAX) {
		s->iter = *end != '\0' || iter == 0 ? ULONG_MAX : iter;
		s->gs.property_set(sess, GSASL_PASSWORD, NULL);
		return GSASL_AUTHENTICATION_ERROR;
	}
	s->hash = sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1";
	if (kept_key(s, sess, salt64, iter))
		return GSASL_OK;
	in.data = (unsigned char *)salt64;
	in.size = strlen(salt64);
	if (s->gs.saslprep(pw, GSASL_ALLOW_UNASSIGNED, &prep, NULL) != GSASL_OK ||
	    gnutls_base64_decode2(&in, &st) < 0)
		goto done;
	k.data = (unsigned char *)prep;
	k.size = strlen(prep);
	if (gnutls_pbkdf2(sha256 ? GNUTLS_MAC_SHA256 : GNUTLS_MAC_SHA1, &k, &st,
	    iter, out, len) != 0)
		goto done;
	for (i = 0; i < len; i++) {
		hex[2 * i] = "0123456789abcdef"[out[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[out[i] & 15];
	}
	hex[2 * len] = '\0';
	rv = s->gs.property_set(sess, GSASL_SCRAM_SALTED_PASSWORD, hex);
	if (rv == GSASL_OK && s->keep != NULL) {
		s->key_made = 1;
		free(s->salt);
		s->salt = xstrdup(salt64);
		s->key_iter = iter;
	}
done:
	explicit_bzero(out, sizeof(out));
	explicit_bzero(hex, sizeof(hex));
	secret_free(prep);
	gnutls_free(st.data);
	return rv;
}

/*
 * gsasl calls back with the session only; its hook leads to our state.  The
 * library is loaded (this is its callback), so RTLD_NOLOAD finds it.
 */
static int
callback(Gsasl *ctx, Gsasl_session *sess, Gsasl_property prop)
{
	void		*(*hook_get)(Gsasl_session *);
	void		*h;
	struct sasl	*s;

	(void)ctx;
	if (prop != GSASL_SCRAM_SALTED_PASSWORD ||
	    (h = dlopen("libgsasl.so.18", RTLD_NOW | RTLD_NOLOAD)) == NULL)
		return GSASL_NO_CALLBACK;
	*(void **)&hook_get = dlsym(h, "gsasl_session_hook_get");
	s = hook_get != NULL ? hook_get(sess) : NULL;
	dlclose(h);
	return s != NULL ? salted_password(s, sess) : GSASL_NO_CALLBACK;
}

int
sasl_start(struct sasl **out, const char *mech, const struct sasl_creds *c,
    struct err *e)
{
	struct sasl	*s = xcalloc(1, sizeof(*s));
	int		 rv;

	if (sasl_mech(mech) != NULL && sasl_mech(mech)->ours) {
		s->bearer = strcmp(mech, "XOAUTH2") == 0 ? 1 : 2;
		s->user = xstrdup(c->user ? c->user : "");
		s->token = xstrdup(c->password ? c->password : "");
		*out = s;
		return 0;
	}
	if (gsasl_load(&s->gs, e) == -1) {
		free(s);
		return -1;
	}
	if ((rv = s->gs.init(&s->ctx)) != GSASL_OK ||
	    (rv = s->gs.client_start(s->ctx, mech, &s->sess)) != GSASL_OK) {
		err_set(e, ERR_SOFTWARE, "SASL %s: %s", mech,
		    s->gs.strerror(rv));
		sasl_end(s);
		return -1;
	}
	s->gs.callback_set(s->ctx, callback);
	s->gs.session_hook_set(s->sess, s);
	s->keep = c->keep;
	if (c->user != NULL)
		s->gs.property_set(s->sess, GSASL_AUTHID, c->user);
	if (c->password != NULL)
		s->gs.property_set(s->sess, GSASL_PASSWORD, c->password);
	/*
	 * Channel binding only for -PLUS: gsasl 2.2 fails a plain SCRAM
	 * exchange when tls-exporter data is set.
	 */
	if (c->cb_data != NULL && strlen(mech) > 5 &&
	    strcmp(mech + strlen(mech) - 5, "-PLUS") == 0)
		s->gs.property_set(s->sess,
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
/* The server's error (RFC 7628 section 3.2.2): status and scope. */
static void
bearer_error(struct sasl *s, const char *chal)
{
	gnutls_datum_t	 in, raw;
	struct json	 j;
	const char	*status, *scope;
	char		 t[200];

	s->server_error[0] = '\0';
	in.data = (unsigned char *)chal;
	in.size = (unsigned)strlen(chal);
	if (in.size == 0 || gnutls_base64_decode2(&in, &raw) < 0)
		return;
	if (json_parse((char *)raw.data, raw.size, &j) == 0) {
		status = json_str(&j, "status");
		scope = json_str(&j, "scope");
		snprintf(t, sizeof(t), "%s%s%s%s", status ? "status " : "",
		    status ? status : "", scope ? (status ? ", scope " :
		    "scope ") : "", scope ? scope : "");
		sanitize(s->server_error, sizeof(s->server_error), t,
		    strlen(t));
		json_free(&j);
	}
	gnutls_free(raw.data);
}

const char *
sasl_server_error(const struct sasl *s)
{
	return s != NULL && s->server_error[0] ? s->server_error : NULL;
}

static int
bearer_step(struct sasl *s, const char *chal, char **out, struct err *e)
{
	struct buf	 b = { 0 };
	gnutls_datum_t	 in, b64;
	int		 rv;

	if (s->sent) {
		bearer_error(s, chal);
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
	in.data = (unsigned char *)b.p;
	in.size = b.len;
	rv = gnutls_base64_encode2(&in, &b64);
	buf_wipe(&b);
	if (rv < 0)
		return err_set(e, ERR_SOFTWARE, "SASL: %s", gnutls_strerror(rv));
	*out = xstrndup((char *)b64.data, b64.size);
	explicit_bzero(b64.data, b64.size);
	gnutls_free(b64.data);
	return 0;
}

int
sasl_step(struct sasl *s, const char *in, char **out, struct err *e)
{
	int	rv;

	*out = NULL;
	if (s->bearer)
		return bearer_step(s, in, out, e);
	rv = s->gs.step64(s->sess, in, out);
	if (rv == GSASL_OK)
		return 1;
	if (rv == GSASL_NEEDS_MORE)
		return 0;
	free(*out);
	*out = NULL;
	if (s->iter == ULONG_MAX)
		return err_set(e, ERR_PROTO, "the server sent a bad SCRAM "
		    "iteration count");
	if (s->iter)
		return err_set(e, ERR_PROTO, "the server asks for %lu SCRAM "
		    "iterations (outbox allows at most %lu)", s->iter,
		    SCRAM_ITER_MAX);
	return err_set(e, ERR_AUTH, "SASL: %s", s->gs.strerror(rv));
}

int
sasl_accepted(struct sasl *s)
{
	const char	*key;

	if (s->key_used)
		return SASL_KEY_USED;
	if (!s->key_made || s->keep == NULL || (key = s->gs.property_fast(s->sess,
	    GSASL_SCRAM_SALTED_PASSWORD)) == NULL)
		return SASL_KEY_NONE;
	s->keep->put(s->keep->arg, s->hash, s->salt, s->key_iter, key);
	s->key_made = 0;
	return SASL_KEY_KEPT;
}

int
sasl_key_used(const struct sasl *s)
{
	return s != NULL && s->key_used;
}

void
sasl_end(struct sasl *s)
{
	if (s == NULL)
		return;
	free(s->user);
	free(s->salt);
	secret_free(s->token);
	if (s->sess != NULL) {
		/*
		 * Do not leave the password in gsasl's memory, nor SCRAM's
		 * salted form of it, which logs in as well.
		 */
		s->gs.property_set(s->sess, GSASL_PASSWORD, NULL);
		s->gs.property_set(s->sess, GSASL_SCRAM_SALTED_PASSWORD, NULL);
		s->gs.finish(s->sess);
	}
	if (s->ctx != NULL)
		s->gs.done(s->ctx);
	if (s->gs.h != NULL)
		dlclose(s->gs.h);
	free(s);
}

void
sasl_version(char *v, size_t len)
{
	struct gsasl_lib g;
	struct err	 e = { 0 };

	if (gsasl_load(&g, &e) == -1) {
		snprintf(v, len, "(%s)", e.msg);
		return;
	}
	snprintf(v, len, "%s", g.check_version(NULL));
	dlclose(g.h);
}
