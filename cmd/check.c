#include <stdio.h>
#include <string.h>

#include "front.h"

struct checks {
	const struct run	*r;
	int			 warnings;
};

static void
on_error(void *ctx, const struct err *e)
{
	const struct checks *c = ctx;

	say_error(c->r, NULL, e);
}

static void
warn(struct checks *c, const struct account *a, enum cfkey k,
    const char *what)
{
	char	where[300];

	origin_str(&a->org[k], where, sizeof(where));
	if (c->r->o->machine_errors)
		printf("warning=%s account=%s where=\"%s\"\n", cfkey_name(k),
		    a->name, where);
	else
		printf("%s: warning: account %s: %s\n", where, a->name, what);
	c->warnings++;
}

/* Settings that work but put mail or passwords at risk. */
static void
risky(struct checks *c, const struct account *a)
{
	if (!acct_on(a, CF_TLS) && !host_is_loopback(acct_str(a, CF_HOST)))
		warn(c, a, CF_TLS, "tls off: mail (and any password) crosses "
		    "the network unencrypted");
	if (acct_on(a, CF_TLS) && !acct_on(a, CF_TLS_CERTCHECK))
		warn(c, a, CF_TLS_CERTCHECK, "tls_certcheck off: anyone on "
		    "the path can pose as the server; pin it with "
		    "tls_fingerprint instead");
	if (acct_str(a, CF_PASSWORD) != NULL)
		warn(c, a, CF_PASSWORD, "the password is in the file; the "
		    "keyring keeps it safer (outbox --store-password)");
}

int
mode_check_config(struct run *r, struct err *e)
{
	struct checks	c = { r, 0 };
	struct err	ae;
	char		where[300];
	size_t		i;
	int		nerr;

	r->cfg.on_error = on_error;
	r->cfg.on_error_ctx = &c;
	config_load(&r->cfg, r->o->conffile, e);
	nerr = r->cfg.nerrors;
	if (r->cfg.nfiles == 0) {
		err_set(e, ERR_CONFIG, "no configuration file found");
		return -1;
	}
	for (i = 0; i < r->cfg.nacct; i++) {
		struct account *a = r->cfg.acct[i];

		if (account_resolve(a, &ae) == -1) {
			origin_str(&a->decl, where, sizeof(where));
			err_prefix(&ae, "%s", where);
			say_error(r, NULL, &ae);
			nerr++;
			continue;
		}
		risky(&c, a);
	}
	if (!r->o->machine_errors)
		printf("%s: %zu accounts, %d errors, %d warnings\n",
		    r->cfg.userfile ? r->cfg.userfile : r->cfg.files[0],
		    r->cfg.nacct, nerr, c.warnings);
	/* Each error was said on its own line. */
	if (nerr)
		return err_set(e, ERR_CONFIG, "%s", "");
	return 0;
}
