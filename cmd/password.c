#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "front.h"
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
	q->eval_timeout = 60;
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
	make_query(r->acct, &q);
	return secret_get(&q, pw, &src, e);
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
		return fail(r, e, 0);
	make_query(r->acct, &q);
	if (secret_read_new(&q, &pw, e) == -1)
		return fail(r, e, 0);
	rv = secret_store(&q, pw, e);
	secret_free(pw);
	if (rv == -1)
		return fail(r, e, 0);
	fprintf(stderr, "outbox: stored the password for %s at %s:%d "
	    "(account %s) in the keyring\n", q.user, q.host, q.port, q.account);
	return EX_OK;
}

int
mode_forget_password(struct run *r, struct err *e)
{
	struct secret_query	q;
	int			rv;

	if (front_account(r, e) == -1)
		return fail(r, e, 0);
	if (acct_str(r->acct, CF_USER) == NULL) {
		err_set(e, ERR_CONFIG, "account %s has no user", r->acct->name);
		return fail(r, e, 0);
	}
	make_query(r->acct, &q);
	if ((rv = secret_forget(&q, e)) == -1)
		return fail(r, e, 0);
	fprintf(stderr, "outbox: %s the password for %s at %s:%d (account "
	    "%s)\n", rv == 0 ? "removed" : "the keyring had no outbox item for",
	    q.user, q.host, q.port, q.account);
	return EX_OK;
}
