#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "front.h"
#include "../src/oauth.h"
#include "../src/secret.h"
#include "../src/util.h"

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

/* The cached access token, when it has a minute left; else NULL. */
static char *
oauth_cached(const struct account *a)
{
	char		path[700], buf[8192];
	long long	expiry;
	ssize_t		n;
	int		fd;
	char		*sp;

	if (front_cache_file("oauth", a, 0, path, sizeof(path)) == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	expiry = strtoll(buf, &sp, 10);
	if (*sp != ' ' || expiry < (long long)time(NULL) + 60) {
		explicit_bzero(buf, sizeof(buf));
		return NULL;
	}
	sp[1 + strcspn(sp + 1, "\n")] = '\0';
	sp = xstrdup(sp + 1);
	explicit_bzero(buf, sizeof(buf));
	return sp;
}

/* Keep the access token until it expires: a 0600 file, written whole. */
static void
oauth_keep(const struct account *a, const char *token, long expires_in)
{
	char	path[700], tmp[720], *line;
	int	fd;

	if (front_cache_file("oauth", a, 0, path, sizeof(path)) == -1)
		return;
	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	line = xasprintf("%lld %s\n", (long long)time(NULL) +
	    (expires_in > 0 ? expires_in : 3600), token);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd != -1 && write_all(fd, line, strlen(line)) == 0 &&
	    close(fd) == 0)
		rename(tmp, path);
	else {
		if (fd != -1)
			close(fd);
		unlink(tmp);
	}
	secret_free(line);
}

static void
oauth_forget(const struct account *a)
{
	char	path[700];

	if (front_cache_file("oauth", a, 0, path, sizeof(path)) == 0)
		unlink(path);
}

/*
 * An access token: cached, or from the token endpoint in exchange for
 * the refresh token, which is where the password would be (keyring,
 * passwordeval...).
 */
static int
oauth_token(struct run *r, char **pw, int fresh, struct err *e)
{
	const struct account	*a = r->acct;
	struct secret_query	 q;
	struct oauth_params	 op;
	struct smtp_params	 sp;
	enum secret_source	 src;
	char			*refresh;
	long			 expires;
	int			 rv;

	r->oauth_cached = 0;
	if (!fresh && (*pw = oauth_cached(a)) != NULL) {
		r->oauth_cached = 1;
		return 0;
	}
	make_query(a, &q);
	if (secret_get(&q, &refresh, &src, e) == -1)
		return -1;
	front_smtp_params(r, &sp);
	memset(&op, 0, sizeof(op));
	op.url = acct_str(a, CF_OAUTH_TOKEN_URL);
	op.client_id = acct_str(a, CF_OAUTH_CLIENT_ID);
	op.client_secret = acct_str(a, CF_OAUTH_CLIENT_SECRET);
	op.refresh_token = refresh;
	op.tls = sp.tlsp;
	op.tls.fingerprint = NULL;	/* that pins the mail server */
	op.timeout_ms = sp.timeout_ms;
	rv = oauth_refresh(&op, pw, &expires, e);
	secret_free(refresh);
	if (rv == -1) {
		err_prefix(e, "OAuth token refresh");
		return -1;
	}
	oauth_keep(a, *pw, expires);
	return 0;
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
	/* These mechanisms need no password. */
	if (strcmp(auth, "off") == 0 || strcmp(auth, "external") == 0 ||
	    strcmp(auth, "gssapi") == 0)
		return 0;
	if (uses_token_endpoint(r->acct))
		return oauth_token(r, pw, 0, e);
	make_query(r->acct, &q);
	return secret_get(&q, pw, &src, e);
}

int
front_auth_retry(struct run *r, char **pw, const struct err *why)
{
	struct err	e;

	if (why->cls != ERR_AUTH || !r->oauth_cached ||
	    !uses_token_endpoint(r->acct))
		return 0;
	oauth_forget(r->acct);
	secret_free(*pw);
	*pw = NULL;
	if (oauth_token(r, pw, 1, &e) == -1) {
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
	say_notice(r, "%s the password for %s at %s:%d (account %s)", rv == 0 ?
	    "removed" : "the keyring had no outbox item for", q.user, q.host,
	    q.port, q.account);
	return 0;
}
