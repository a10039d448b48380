/*
 * Shared sessions, the front end's part: which holder serves an account
 * (the key), a session whose messages go through it with a fallback to a
 * session of our own, and the hand-off of our session after a send.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"
#include "../src/linger.h"
#include "../src/util.h"

/* How long a holder keeps a session; 0: no shared sessions. */
static long long
linger_ms(const struct run *r)
{
	const char	*v = getenv("OUTBOX_LINGER");

	if (r->o->dry_run || r->acct == NULL)
		return 0;
	if (v != NULL && *v != '\0')
		return strtoll(v, NULL, 10) * 1000;
	/* No background work asked for: no holder either. */
	if (!front_background_ok(r))
		return 0;
	return acct_seconds(r->acct, CF_LINGER) * 1000;
}

/*
 * What makes two sessions interchangeable: the account, the resolved
 * server, the user and the TLS policy, and the config file they came
 * from.
 */
static void
linger_key(const struct run *r, struct buf *b)
{
	static const enum cfkey keys[] = { CF_HOST, CF_PORT, CF_USER, CF_AUTH,
	    CF_TLS, CF_TLS_STARTTLS, CF_TLS_TRUST_FILE, CF_TLS_FINGERPRINT,
	    CF_TLS_CERT_FILE, CF_TLS_CERTCHECK, CF_TLS_PRIORITIES,
	    CF_TLS_HOST_OVERRIDE, CF_PROTOCOL, CF_SOCKET, CF_PROXY_HOST,
	    CF_PROXY_PORT, CF_DOMAIN };
	size_t	i;

	buf_addf(b, "%s\n%s\n", r->acct->name, r->o->conffile ?
	    r->o->conffile : "");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = acct_str(r->acct, keys[i]);

		buf_addf(b, "%s\n", v != NULL ? v : "");
	}
}

/*
 * Shared sessions for fs's account: on (linger > 0) and a place for the
 * holder's socket, worked out once per session (fs->lpath).
 */
static int
linger_where(struct front_session *fs)
{
	struct buf	b = { 0 };

	if (fs->lpath_known == 0) {
		fs->lpath_known = -1;
		if (linger_ms(fs->r) > 0) {
			linger_key(fs->r, &b);
			if (linger_path(b.p, fs->lpath, sizeof(fs->lpath)) == 0)
				fs->lpath_known = 1;
			buf_free(&b);
		}
	}
	return fs->lpath_known == 1;
}

static int
remote_transaction(void *arg, struct envelope *env, struct msg *m, int last,
    struct smtp_result *res, struct err *e)
{
	struct front_session	*fs = arg;
	const struct run	*r = fs->r;
	int			 rv;

	if (fs->own == NULL && !fs->holder_open &&
	    (fs->holder_fd = linger_connect(fs->lpath)) != -1)
		fs->holder_open = 1;
	if (fs->own == NULL && fs->holder_open) {
		rv = linger_send(fs->holder_fd, env, m, acct_int(r->acct,
		    CF_TIMEOUT) > 0 ? acct_int(r->acct, CF_TIMEOUT) * 1000 :
		    60000, res, e);
		/* The holder takes one message per connection. */
		close(fs->holder_fd);
		fs->holder_open = 0;
		if (rv != 1) {
			fs->shared++;
			if (r->o->verbose)
				say_notice(r, "sent over the shared session "
				    "at %s", fs->lpath);
			return rv;
		}
		if (r->o->verbose)
			say_notice(r, "the shared session cannot take the "
			    "message; sending on a connection of its own");
	}
	if (fs->own == NULL &&
	    (fs->own = front_open_own(fs, res, e)) == NULL) {
		res->stage = STAGE_SESSION;
		return -1;
	}
	return smtp_transaction(fs->own, env, m, last, res, e);
}

static int
remote_reusable(void *arg)
{
	struct front_session	*fs = arg;

	return fs->own != NULL ? smtp_reusable(fs->own) : 1;
}

static void
remote_close(void *arg, struct smtp_result *res)
{
	struct front_session	*fs = arg;

	smtp_close(fs->own, res);
	fs->own = NULL;
	if (fs->holder_open)
		close(fs->holder_fd);
	fs->holder_open = 0;
}

struct smtp_session *
front_linger_open(struct front_session *fs)
{
	struct smtp_remote	ops;

	fs->own = NULL;
	if (!linger_where(fs))
		return NULL;
	if ((fs->holder_fd = linger_connect(fs->lpath)) == -1)
		return NULL;
	fs->holder_open = 1;
	memset(&ops, 0, sizeof(ops));
	ops.transaction = remote_transaction;
	ops.reusable = remote_reusable;
	ops.close = remote_close;
	ops.arg = fs;
	return smtp_remote_session(&ops);
}

/* In the holder, before anything else: keep no secret of the run's. */
static void
scrub(void *arg)
{
	struct front_session	*fs = arg;

	secret_free(fs->pw);
	fs->pw = NULL;
	fs->p.password = NULL;
	config_wipe_secrets(&fs->r->cfg);
}

int
front_linger_keep(struct front_session *fs, struct smtp_session *s,
    const struct smtp_result *res)
{
	long long	ms = linger_ms(fs->r);

	if (s == NULL || smtp_is_remote(s) || !smtp_reusable(s) ||
	    !linger_where(fs))
		return 0;
	if (linger_hand_off(s, res, fs->lpath, ms > 0x7fffffff ? 0x7fffffff :
	    (int)ms, scrub, fs) != 1)
		return 0;
	if (fs->r->o->verbose)
		say_notice(fs->r, "the session stays open for %lld s for the "
		    "next message (linger)", ms / 1000);
	return 1;
}

int
front_linger_wanted(struct front_session *fs)
{
	return linger_where(fs);
}
