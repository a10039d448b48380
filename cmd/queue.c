#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "front.h"
#include "../src/log.h"
#include "../src/queue.h"
#include "../src/secret.h"
#include "../src/util.h"

/* $XDG_STATE_HOME/outbox/queue, or ~/.local/state/outbox/queue. */
char *
queue_dir(void)
{
	const char	*state = getenv("XDG_STATE_HOME"), *home;
	struct passwd	*pw;

	if (state != NULL && *state == '/')
		return xasprintf("%s/outbox/queue", state);
	home = getenv("HOME");
	if (home == NULL || *home == '\0') {
		pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/";
	}
	return xasprintf("%s/.local/state/outbox/queue", home);
}

/* The clock; OUTBOX_NOW (seconds) stands in for it in tests. */
long long
queue_now(void)
{
	const char	*fake = getenv("OUTBOX_NOW");

	return fake != NULL && *fake ? atoll(fake) : (long long)time(NULL);
}

int
open_queue(struct queue *q, struct err *e)
{
	char	*dir = queue_dir();
	int	 rv = queue_open(q, dir, e);

	free(dir);
	return rv;
}

static void
fmt_time(long long t, char *buf, size_t len)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	localtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
}

static void
print_entry(const struct qentry *qe, long long now, FILE *out)
{
	char	queued[32], next[32];
	size_t	i;

	fmt_time(qe->queued, queued, sizeof(queued));
	fmt_time(qe->next, next, sizeof(next));
	fprintf(out, "%s%s  %s  %lld  <%s> ->", qe->id, qe->failed ?
	    " (failed)" : "", queued, qe->size, qe->sender);
	for (i = 0; i < qe->rcpts.n; i++)
		fprintf(out, "%s <%s>", i ? "," : "", qe->rcpts.v[i]);
	fprintf(out, "  attempts=%d", qe->attempts);
	if (!qe->failed)
		fprintf(out, "  next=%s", qe->next <= now ? "now" : next);
	if (qe->error != NULL)
		fprintf(out, "  error=\"%s\"", qe->error);
	fputc('\n', out);
}

int
mode_mailq(struct run *r, struct err *e)
{
	struct queue	 q;
	struct qentry	*v, *f;
	size_t		 n, nf, i;
	long long	 now = queue_now();

	if (open_queue(&q, e) == -1)
		return fail(r, e, 0);
	if (queue_list(&q, 0, &v, &n, e) == -1 ||
	    queue_list(&q, 1, &f, &nf, e) == -1) {
		queue_close(&q);
		return fail(r, e, 0);
	}
	if (n + nf == 0)
		printf("Mail queue is empty\n");
	for (i = 0; i < n; i++)
		print_entry(&v[i], now, stdout);
	for (i = 0; i < nf; i++)
		print_entry(&f[i], now, stdout);
	qentry_free_list(v, n);
	qentry_free_list(f, nf);
	queue_close(&q);
	return EX_OK;
}

int
mode_drop(struct run *r, struct err *e)
{
	struct queue	q;
	int		rv;

	if (open_queue(&q, e) == -1)
		return fail(r, e, 0);
	rv = queue_drop(&q, r->o->flush_id, e);
	queue_close(&q);
	if (rv == -1)
		return fail(r, e, 0);
	return EX_OK;
}

/* One account's part of a flush. */
struct flush {
	struct run		*r;
	struct queue		*q;
	struct smtp_params	 p;
	struct smtp_session	*s;
	struct smtp_result	 res;
	char			*pw;
	struct err		 open_err;	/* why the session failed */
	int			 opened;
	long long		 now;
	int			 deferred, failed, sent;
};

/* Giving up is always said; the rest with -v, or why with -q. */
static void
say(const struct flush *f, const struct qentry *qe, const char *what,
    const char *why)
{
	if (f->r->o->verbose || strcmp(what, "failed") == 0 ||
	    (why != NULL && f->r->o->mode == MODE_FLUSH))
		fprintf(stderr, "outbox: %s: %s%s%s\n", qe->id, what,
		    why ? ": " : "", why ? why : "");
}

static int
flush_open(struct flush *f, struct err *e)
{
	f->opened = 1;
	front_smtp_params(f->r, &f->p);
	if (front_password(f->r, &f->pw, e) == -1)
		return -1;
	f->p.password = f->pw;
	memset(&f->res, 0, sizeof(f->res));
	f->s = smtp_open(&f->p, &f->res, e);
	if (f->s == NULL && front_auth_retry(f->r, &f->pw, e)) {
		f->p.password = f->pw;
		f->s = smtp_open(&f->p, &f->res, e);
	}
	return f->s == NULL ? -1 : 0;
}

static void
flush_close(struct flush *f)
{
	smtp_close(f->s, NULL);
	f->s = NULL;
	secret_free(f->pw);
	f->pw = NULL;
	smtp_result_free(&f->res);
}

/*
 * The recipients still to deliver: when the message went out, those
 * refused for now (or not tried); when it did not (all_or_nothing, or
 * the data refused for now), every one not refused for good.
 */
void
keep_rcpts(struct qentry *qe, const struct smtp_result *res, int delivered)
{
	struct addrlist	keep = { 0 };
	size_t		i;

	for (i = 0; i < qe->rcpts.n; i++) {
		int c = res->rcpt[i].code;

		if (delivered ? c / 100 == 4 || c == 0 : c < 500)
			addrlist_add(&keep, qe->rcpts.v[i]);
	}
	addrlist_free(&qe->rcpts);
	qe->rcpts = keep;
}

static void
defer(struct flush *f, struct qentry *qe, const struct err *why)
{
	struct err	e2;

	qe->attempts++;
	qe->next = f->now + queue_backoff(qe->attempts);
	free(qe->error);
	qe->error = xstrdup(why->msg);
	if (queue_update(f->q, qe, &e2) == -1)
		fprintf(stderr, "outbox: %s\n", e2.msg);
	f->deferred++;
	say(f, qe, "deferred", why->msg);
}

static void
give_up(struct flush *f, struct qentry *qe, const char *why)
{
	struct err	e2;

	free(qe->error);
	qe->error = xstrdup(why);
	if (queue_fail(f->q, qe, &e2) == -1)
		fprintf(stderr, "outbox: %s\n", e2.msg);
	f->failed++;
	say(f, qe, "failed", why);
}

static void
flush_outcome(struct flush *f, struct qentry *qe, int rv,
    const struct smtp_result *res, const struct err *e)
{
	struct err	e2;
	size_t		i;
	int		temp = 0;

	for (i = 0; res->rcpt != NULL && i < qe->rcpts.n; i++) {
		const struct rcpt_result *rr = &res->rcpt[i];

		temp |= rr->code / 100 == 4;
		if (rr->code >= 500) {
			fprintf(stderr, "outbox: %s: RCPT TO:<%s>: %d %s\n",
			    qe->id, qe->rcpts.v[i], rr->code, rr->text);
			f->failed++;
		}
	}
	if (rv == 0 && !temp) {
		if (queue_remove(f->q, qe, &e2) == -1)
			fprintf(stderr, "outbox: %s\n", e2.msg);
		f->sent++;
		say(f, qe, "delivered", NULL);
		return;
	}
	if (rv == 0 || (e->cls == ERR_TEMP && res->rcpts_refused)) {
		keep_rcpts(qe, res, rv == 0);
		defer(f, qe, rv == 0 ? &(struct err){ ERR_TEMP,
		    "some recipients were refused for now" } : e);
		return;
	}
	if (e->cls == ERR_TEMP)
		defer(f, qe, e);
	else
		give_up(f, qe, e->msg);
}

static void
flush_entry(struct flush *f, struct qentry *qe, int last)
{
	struct smtp_envelope	env;
	struct msg		m;
	struct err		e = { ERR_NONE, "" };
	int			rv;

	if (f->s == NULL && f->opened && f->open_err.cls != ERR_NONE) {
		defer(f, qe, &f->open_err);
		return;
	}
	if (f->s == NULL && flush_open(f, &f->open_err) == -1) {
		err_prefix(&f->open_err, "%s:%d", f->p.host, f->p.port);
		defer(f, qe, &f->open_err);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.fd = dup(qe->fd);
	m.size = qe->size;
	m.eightbit = qe->eightbit;
	memset(&env, 0, sizeof(env));
	env.sender = qe->sender;
	env.rcpts = &qe->rcpts;
	env.dsn_notify = qe->notify;
	env.dsn_return = qe->ret;
	env.envid = qe->envid;
	env.all_or_nothing = acct_on(f->r->acct, CF_ALL_OR_NOTHING);
	rv = smtp_transaction(f->s, &env, &m, last, &f->res, &e);
	if (rv == -1)
		err_prefix(&e, "%s:%d", f->p.host, f->p.port);
	flush_outcome(f, qe, rv, &f->res, &e);
	msg_free(&m);
	if (!smtp_reusable(f->s)) {
		smtp_close(f->s, NULL);
		f->s = NULL;
		f->opened = 0;
	}
}

static int
wanted(const struct run *r, const struct qentry *qe, long long now, int force)
{
	if (r->o->flush_id != NULL && strcmp(r->o->flush_id, qe->id) != 0)
		return 0;
	if (r->o->flush_account != NULL &&
	    strcmp(r->o->flush_account, qe->account) != 0)
		return 0;
	return force || qe->next <= now;
}

/*
 * Send the wanted entries of one account, oldest first, one transaction
 * after another on one connection.
 */
static void
flush_account(struct flush *f, struct qentry *v, size_t n, const char *acct,
    int force)
{
	long long	 lifetime;
	size_t		 i, j;

	for (i = 0; i < n; i++) {
		struct qentry *qe = &v[i];

		if (qe->account == NULL || strcmp(qe->account, acct) != 0 ||
		    !wanted(f->r, qe, f->now, force))
			continue;
		if (queue_lock(f->q, qe) != 0) {
			say(f, qe, "skipped", "being sent by another outbox");
			continue;
		}
		lifetime = (long long)acct_int(f->r->acct, CF_QUEUE_LIFETIME) *
		    86400;
		if (lifetime > 0 && f->now - qe->queued > lifetime) {
			char why[600];

			snprintf(why, sizeof(why), "expired after %lld days "
			    "in the queue; last error: %.400s", lifetime / 86400,
			    qe->error ? qe->error : "none");
			give_up(f, qe, why);
			continue;
		}
		for (j = i + 1; j < n; j++)
			if (v[j].account != NULL && strcmp(v[j].account,
			    acct) == 0 && wanted(f->r, &v[j], f->now, force))
				break;
		flush_entry(f, qe, j == n);
		close(qe->fd);	/* releases the lock */
		qe->fd = -1;
	}
}

static int
any_wanted(const struct flush *f, const struct qentry *v, size_t n,
    const char *acct, int force)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (v[i].account != NULL && strcmp(v[i].account, acct) == 0 &&
		    wanted(f->r, &v[i], f->now, force))
			return 1;
	return 0;
}

/*
 * Entries of an account the config no longer has: they wait (the config
 * may come back) until the default lifetime is over.
 */
static void
orphans(struct flush *f, struct qentry *v, size_t n, const char *acct,
    const struct err *why, int force)
{
	char	msg[700];
	size_t	i;

	for (i = 0; i < n; i++) {
		struct qentry *qe = &v[i];

		if (qe->account == NULL || strcmp(qe->account, acct) != 0 ||
		    !wanted(f->r, qe, f->now, force) || queue_lock(f->q, qe))
			continue;
		if (f->now - qe->queued > 5 * 86400) {
			snprintf(msg, sizeof(msg), "expired after 5 days in the "
			    "queue: %.500s", why->msg);
			give_up(f, qe, msg);
		} else {
			fprintf(stderr, "outbox: %s: %s; left in the queue\n",
			    qe->id, why->msg);
			f->deferred++;
		}
		close(qe->fd);
		qe->fd = -1;
	}
}

/* Forget the entries of an account once it has been dealt with. */
static void
done_with(struct qentry *v, size_t n, const char *acct)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (v[i].account != NULL && strcmp(v[i].account, acct) == 0) {
			free(v[i].account);
			v[i].account = NULL;
		}
	}
}

/*
 * Flush the queue.  With only: just that account (r->acct already set);
 * s is then an open session to use (it is closed here), or NULL.  force:
 * every entry, else only those due.  Returns the exit code.
 */
int
flush_queue(struct run *r, struct queue *q, const char *only,
    struct smtp_session *s, int force)
{
	struct qentry	*v;
	struct flush	 f;
	struct err	 e;
	size_t		 n, i;
	char		*name;

	if (queue_list(q, 0, &v, &n, &e) == -1) {
		smtp_close(s, NULL);
		return fail(r, &e, 0);
	}
	memset(&f, 0, sizeof(f));
	f.r = r;
	f.q = q;
	f.now = queue_now();
	f.s = s;
	f.opened = s != NULL;
	if (s != NULL)
		front_smtp_params(r, &f.p);
	queue_clean_tmp(q);
	for (i = 0; i < n; i++) {
		if (v[i].account == NULL || (only && strcmp(only,
		    v[i].account) != 0))
			continue;
		name = xstrdup(v[i].account);
		if (!any_wanted(&f, v, n, name, force))
			;
		else if (only == NULL && front_use_account(r, name, &e) == -1)
			orphans(&f, v, n, name, &e, force);
		else
			flush_account(&f, v, n, name, force);
		done_with(v, n, name);
		free(name);
		flush_close(&f);
		f.opened = 0;
		f.open_err.cls = ERR_NONE;
	}
	flush_close(&f);
	qentry_free_list(v, n);
	return f.failed ? EX_UNAVAILABLE : f.deferred ? EX_TEMPFAIL : EX_OK;
}

/* Are there entries of this account, other than skip, due now? */
int
queue_due(struct queue *q, const char *acct, const char *skip)
{
	struct qentry	*v;
	struct err	 e;
	size_t		 n, i;
	long long	 now = queue_now();
	int		 due = 0;

	if (queue_list(q, 0, &v, &n, &e) == -1)
		return 0;
	for (i = 0; i < n && !due; i++)
		due = strcmp(v[i].account, acct) == 0 &&
		    strcmp(v[i].id, skip) != 0 && v[i].next <= now;
	qentry_free_list(v, n);
	return due;
}

int
mode_flush(struct run *r, struct err *e)
{
	struct queue	q;
	int		ex;

	if (config_load(&r->cfg, r->o->conffile, e) == -1)
		return fail(r, e, 0);
	if (open_queue(&q, e) == -1)
		return fail(r, e, 0);
	ex = flush_queue(r, &q, NULL, NULL, !r->o->flush_due);
	queue_close(&q);
	return ex;
}
