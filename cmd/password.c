#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "front.h"
#include "../src/oauth.h"
#include "../src/secret.h"
#include "../src/tokcache.h"
#include "../src/util.h"

static void make_query(const struct account *, struct secret_query *);
static void scram_drop(const struct run *, const struct secret_query *);

void
front_secret_query(const struct account *a, struct secret_query *q)
{
	make_query(a, q);
}

void
front_oauth_keep(const struct run *r, const char *token, long expires)
{
	struct err	e;
	char		path[700];

	if (front_cache_file("oauth", r->acct, 0, path, sizeof(path)) == 0 &&
	    tokcache_put(path, token, expires, &e) == -1)
		say_notice(r, "warning: %s", e.msg);
}

static void
make_query(const struct account *a, struct secret_query *q)
{
	memset(q, 0, sizeof(*q));
	q->account = a->name;
	q->host = acct_str(a, CF_HOST);
	q->port = acct_int(a, CF_PORT);
	q->user = acct_str(a, CF_USER);
	q->password = acct_str(a, CF_PASSWORD);
	q->passwordeval = acct_str(a, CF_PASSWORDEVAL);
	/* passwordeval gets the account's timeout, 60 s when it is off. */
	q->eval_timeout = acct_int(a, CF_TIMEOUT) > 0 ?
	    acct_int(a, CF_TIMEOUT) : 60;
}

static int
oauth_cache_path(const struct account *a, char *path, size_t len)
{
	return front_cache_file("oauth", a, 0, path, len);
}

/* The cached access token, unless it is the one just refused. */
static char *
oauth_cached(const struct run *r, const char *refused)
{
	const struct account	*a = r->acct;
	struct err	 why;
	char		 path[700], *t;

	if (oauth_cache_path(a, path, sizeof(path)) == -1)
		return NULL;
	if (tokcache_get(path, &t, &why) == 0) {
		if (why.cls != ERR_NONE)
			say_notice(r, "warning: %s", why.msg);
		return NULL;
	}
	if (refused != NULL && strcmp(t, refused) == 0) {
		secret_free(t);
		return NULL;
	}
	return t;
}

/*
 * A rotated refresh token replaces the stored one; the keyring replaces
 * its item in one step, so the old one is dropped only once the new one
 * is written.  Other sources cannot be written to.
 */
static void
oauth_rotate(const struct run *r, enum secret_source src, const char *fresh)
{
	const struct account	*a = r->acct;
	struct secret_query	q;
	struct err		e;

	if (src != SECRET_KEYRING) {
		say_notice(r, "warning: account %s: the token endpoint issued "
		    "a new refresh token, but the old one comes from %s, which "
		    "outbox cannot update; store the new one with outbox "
		    "--authorize -a %s", a->name,
		    src == SECRET_EVAL ? "passwordeval" : "the config",
		    a->name);
		return;
	}
	make_query(a, &q);
	if (secret_store(&q, fresh, &e) == -1)
		say_notice(r, "warning: account %s: the new refresh token "
		    "could not be stored: %s", a->name, e.msg);
}

/* The token endpoint's client; the mail account's TLS never applies. */
void
front_oauth_client(const struct account *a, struct oauth_client *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->client_id = acct_str(a, CF_OAUTH_CLIENT_ID);
	cl->client_secret = acct_str(a, CF_OAUTH_CLIENT_SECRET);
	cl->trust_file = acct_str(a, CF_OAUTH_TLS_TRUST_FILE);
	/* All of the account's traffic goes through its proxy. */
	cl->proxy_host = acct_str(a, CF_PROXY_HOST);
	cl->proxy_port = acct_int(a, CF_PROXY_PORT);
	cl->timeout_ms = (acct_int(a, CF_TIMEOUT) > 0 ?
	    acct_int(a, CF_TIMEOUT) : 60) * 1000;
}

static int
oauth_app_only(const struct account *a)
{
	const char	*flow = acct_str(a, CF_OAUTH_FLOW);

	return flow != NULL && strcmp(flow, "client_credentials") == 0;
}

/* Cache the new access token and hand it over. */
static int
oauth_keep(const struct run *r, struct oauth_tokens *t, char **pw)
{
	front_oauth_keep(r, t->access, t->expires_in);
	*pw = t->access;
	t->access = NULL;
	oauth_tokens_free(t);
	return 0;
}

/* The refresh itself, under the lock. */
static int
oauth_fetch(struct run *r, char **pw, struct err *e)
{
	const struct account	*a = r->acct;
	struct secret_query	 q;
	struct oauth_client	 cl;
	struct oauth_tokens	 t;
	enum secret_source	 src;
	char			*refresh;
	int			 rv;

	front_oauth_client(r->acct, &cl);
	if (oauth_app_only(a)) {
		/* A service account: no refresh token, the secret is enough. */
		if (oauth_client_credentials(&cl, acct_str(a,
		    CF_OAUTH_TOKEN_URL), acct_str(a, CF_OAUTH_SCOPE), &t,
		    e) == -1) {
			err_prefix(e, "OAuth client credentials");
			return -1;
		}
		return oauth_keep(r, &t, pw);
	}
	make_query(a, &q);
	if (secret_get(&q, &refresh, &src, e) == -1)
		return -1;
	/* A token has no white space; a newline is from "echo ... |". */
	refresh[strcspn(refresh, " \t\r\n")] = '\0';
	rv = oauth_refresh(&cl, acct_str(a, CF_OAUTH_TOKEN_URL), refresh, &t,
	    e);
	if (rv == -1 && strcmp(t.error, "invalid_grant") == 0) {
		err_set(e, ERR_TEMP, "the refresh token is no longer valid "
		    "(revoked, unused too long, or the password changed): run "
		    "outbox --authorize -a %s%s", a->name, strcmp(acct_str(a, CF_QUEUE), "off") == 0 ?
		    "; the message was not sent (queue off)" : "");
		secret_free(refresh);
		return -1;
	}
	if (rv == -1) {
		err_prefix(e, "OAuth token refresh");
		secret_free(refresh);
		return -1;
	}
	if (t.refresh != NULL && strcmp(t.refresh, refresh) != 0)
		oauth_rotate(r, src, t.refresh);
	secret_free(refresh);
	return oauth_keep(r, &t, pw);
}

/*
 * An access token: cached, or from the token endpoint in exchange for
 * the refresh token, which is where the password would be (keyring,
 * passwordeval...).  Refreshes are under a lock: a second process waits
 * and takes the token the first one got.  refused: the token the server
 * just refused, never taken from the cache again.
 */
static int
oauth_token(struct run *r, char **pw, const char *refused, struct err *e)
{
	char	path[700];
	int	lock, rv;

	r->oauth_cached = 0;
	if ((*pw = oauth_cached(r, refused)) != NULL) {
		r->oauth_cached = 1;
		return 0;
	}
	if (oauth_cache_path(r->acct, path, sizeof(path)) == -1)
		return oauth_fetch(r, pw, e);
	if ((lock = tokcache_lock(path, 2 * 60 * 1000, e)) == -1)
		return -1;
	if ((*pw = oauth_cached(r, refused)) != NULL)
		rv = 0;
	else
		rv = oauth_fetch(r, pw, e);
	tokcache_unlock(lock);
	return rv;
}

static int
uses_token_endpoint(const struct account *a)
{
	const char	*auth = acct_str(a, CF_AUTH);

	return acct_str(a, CF_OAUTH_TOKEN_URL) != NULL &&
	    (strcmp(auth, "xoauth2") == 0 || strcmp(auth, "oauthbearer") == 0);
}

int
front_password(struct run *r, char **pw, struct err *e)
{
	const char		*auth = acct_str(r->acct, CF_AUTH);
	struct secret_query	 q;
	enum secret_source	 src;

	*pw = NULL;
	r->pw_keyring = 0;
	/* These mechanisms need no password. */
	if (strcmp(auth, "off") == 0 || strcmp(auth, "external") == 0 ||
	    strcmp(auth, "gssapi") == 0)
		return 0;
	if (uses_token_endpoint(r->acct))
		return oauth_token(r, pw, NULL, e);
	make_query(r->acct, &q);
	if (secret_get(&q, pw, &src, e) == -1)
		return -1;
	r->pw_keyring = src == SECRET_KEYRING;
	return 0;
}

/*
 * SCRAM keys live beside the keyring's password, as secret as it; a
 * refused key is not asked for again in this run.
 */
static int
keep_get(void *arg, const char *hash, const char *salt, unsigned long iter,
    char *key, size_t len)
{
	struct front_session	*fs = arg;
	struct secret_query	 q;
	struct secret_scram	 k = { hash, salt, iter };
	struct err		 e;
	int			 rv;

	if (fs->key_refused || len < SECRET_KEY_MAX || fs->pw == NULL)
		return 0;
	make_query(fs->r->acct, &q);
	if ((rv = secret_scram_get(&q, fs->pw, &k, key, &e)) == -1)
		say_notice(fs->r, "warning: %s", e.msg);
	return rv == 0;
}

static void
keep_put(void *arg, const char *hash, const char *salt, unsigned long iter,
    const char *key)
{
	struct front_session	*fs = arg;
	struct secret_query	 q;
	struct secret_scram	 k = { hash, salt, iter };
	struct err		 e;

	if (fs->pw == NULL)
		return;
	make_query(fs->r->acct, &q);
	if (secret_scram_put(&q, fs->pw, &k, key, &e) == -1)
		say_notice(fs->r, "warning: the SCRAM key could not be kept: %s",
		    e.msg);
}

const struct sasl_keep *
front_scram_keep(struct front_session *fs)
{
	if (!fs->r->pw_keyring)
		return NULL;
	fs->keep.get = keep_get;
	fs->keep.put = keep_put;
	fs->keep.arg = fs;
	return &fs->keep;
}

/*
 * The server refused a kept key (or it could not be used): it is dropped
 * and the exchange is done again from the password, whose key is kept if
 * the server takes it.  A refused password is never tried twice.
 */
int
front_scram_retry(struct front_session *fs, const struct smtp_result *res,
    const struct err *why)
{
	struct secret_query	 q;

	if (why->cls != ERR_AUTH || !res->key_used || fs->key_refused)
		return 0;
	fs->key_refused = 1;
	make_query(fs->r->acct, &q);
	scram_drop(fs->r, &q);
	if (fs->r->o->verbose)
		say_notice(fs->r, "account %s: the server refused the kept SCRAM "
		    "key (%s); dropped it, authenticating with the password",
		    fs->r->acct->name, why->msg);
	return 1;
}

int
front_auth_retry(struct run *r, char **pw, const struct err *why)
{
	struct err	 e;
	char		*refused = *pw;
	int		 rv;

	if (why->cls != ERR_AUTH || !r->oauth_cached ||
	    !uses_token_endpoint(r->acct))
		return 0;
	*pw = NULL;
	rv = oauth_token(r, pw, refused, &e);
	secret_free(refused);
	if (rv == -1) {
		say_error(r, r->acct, &e);
		return 0;
	}
	return 1;
}

/* The keyring is only asked when the config does not name a password. */
static int
check_keyring_account(const struct account *a, struct err *e)
{
	char	where[300];

	if (acct_str(a, CF_USER) == NULL)
		return err_set(e, ERR_CONFIG, "account %s has no user; add "
		    "'user NAME' first", a->name);
	if (acct_str(a, CF_PASSWORD) != NULL) {
		origin_str(&a->org[CF_PASSWORD], where, sizeof(where));
		return err_set(e, ERR_CONFIG, "account %s has a password in "
		    "the config (%s): remove it to use the keyring", a->name,
		    where);
	}
	if (acct_str(a, CF_PASSWORDEVAL) != NULL) {
		origin_str(&a->org[CF_PASSWORDEVAL], where, sizeof(where));
		return err_set(e, ERR_CONFIG, "account %s takes its password "
		    "from passwordeval (%s): remove it to use the keyring",
		    a->name, where);
	}
	return 0;
}

/* The account's SCRAM keys; the password's item is done already. */
static void
scram_drop(const struct run *r, const struct secret_query *q)
{
	struct err	e;

	if (secret_scram_drop(q, &e) == -1)
		say_notice(r, "warning: the kept SCRAM keys could not be "
		    "removed: %s", e.msg);
}

int
mode_store_password(struct run *r, struct err *e)
{
	struct secret_query	 q;
	char			*pw;
	int			 rv;

	if (front_account(r, e) == -1 ||
	    check_keyring_account(r->acct, e) == -1)
		return -1;
	make_query(r->acct, &q);
	if (secret_read_new(&q, &pw, e) == -1)
		return -1;
	rv = secret_store(&q, pw, e);
	secret_free(pw);
	if (rv == -1)
		return server_error(r);
	/* Keys of an old password would never be used; they go now. */
	scram_drop(r, &q);
	say_notice(r, "stored the password for %s at %s:%d (account %s) in "
	    "the keyring", q.user, q.host, q.port, q.account);
	return 0;
}

int
mode_forget_password(struct run *r, struct err *e)
{
	struct secret_query	q;
	int			rv;

	if (front_account(r, e) == -1)
		return -1;
	if (acct_str(r->acct, CF_USER) == NULL) {
		err_set(e, ERR_CONFIG, "account %s has no user", r->acct->name);
		return -1;
	}
	make_query(r->acct, &q);
	if ((rv = secret_forget(&q, e)) == -1)
		return server_error(r);
	scram_drop(r, &q);
	say_notice(r, "%s the password for %s at %s:%d (account %s)", rv == 0 ?
	    "removed" : "the keyring had no outbox item for", q.user, q.host,
	    q.port, q.account);
	return 0;
}
