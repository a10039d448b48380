#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "front.h"
#include "../src/deliver.h"
#include "../src/desktop.h"
#include "../src/dsn.h"
#include "../src/message.h"
#include "../src/queue.h"
#include "../src/util.h"

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

/* The recipients still to deliver; in failed/, those not delivered. */
static void
print_rcpts(const struct qentry *qe, FILE *out)
{
	size_t	i;
	int	n = 0;

	for (i = 0; i < qe->env.nrcpt; i++) {
		const struct rcpt *r = &qe->env.rcpt[i];

		if (qe->failed ? r->state == RCPT_SENT : !rcpt_todo(r))
			continue;
		fprintf(out, "%s <%s>", n++ ? "," : "", r->addr);
	}
}

/* queue_warn's default: when mailq marks an entry delayed. */
#define DELAYED_AFTER	(4 * 3600LL)

/* Has the entry waited past its account's queue_warn (or been warned)? */
static int
delayed(const struct config *cfg, const struct qentry *qe, long long now)
{
	const struct account	*a = qe->account != NULL ?
	    config_find(cfg, qe->account) : NULL;
	long long		 warn = DELAYED_AFTER;

	if (a != NULL && a->val[CF_QUEUE_WARN] != NULL)
		warn = acct_seconds(a, CF_QUEUE_WARN);
	return !qe->failed && (qe->warned || qentry_delayed(qe, warn, now));
}

static void
print_entry(const struct config *cfg, const struct qentry *qe, long long now,
    FILE *out)
{
	char	queued[32], next[32];

	fmt_time(qe->queued, queued, sizeof(queued));
	fmt_time(qe->next, next, sizeof(next));
	fprintf(out, "%s%s%s%s  %s  %lld  <%s> ->", qe->id, qe->failed ?
	    " (failed)" : "", qe->held ? " (held)" : "", delayed(cfg, qe, now) ?
	    " (delayed)" : "", queued,
	    qe->size, qe->env.sender);
	print_rcpts(qe, out);
	fprintf(out, "  attempts=%d", qe->attempts);
	if (!qe->failed && !qe->held)
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
	struct err	 cfg_err;

	/* Only for queue_warn: mailq works without a config. */
	if (config_load(&r->cfg, r->o->conffile, &cfg_err) == -1) {
		config_free(&r->cfg);
		config_init(&r->cfg);
	}
	if (open_queue(&q, e) == -1)
		return -1;
	if (queue_list(&q, 0, &v, &n, e) == -1 ||
	    queue_list(&q, 1, &f, &nf, e) == -1) {
		queue_close(&q);
		return -1;
	}
	if (q.unreadable[0])
		say_notice(r, "queue entry %s: cannot read its envelope; left "
		    "alone", q.unreadable);
	if (n + nf == 0)
		printf("Mail queue is empty\n");
	for (i = 0; i < n; i++)
		print_entry(&r->cfg, &v[i], now, stdout);
	for (i = 0; i < nf; i++)
		print_entry(&r->cfg, &f[i], now, stdout);
	qentry_free_list(v, n);
	qentry_free_list(f, nf);
	queue_close(&q);
	return 0;
}

int
mode_drop(struct run *r, struct err *e)
{
	struct queue	q;
	int		rv;

	if (open_queue(&q, e) == -1)
		return -1;
	rv = queue_drop(&q, r->o->flush_id, e);
	queue_close(&q);
	return rv;
}

/* -qH ID and -qU ID. */
int
mode_hold(struct run *r, struct err *e)
{
	struct queue	q;
	int		rv;

	if (open_queue(&q, e) == -1)
		return -1;
	rv = queue_hold(&q, r->o->flush_id, r->o->mode == MODE_HOLD, e);
	queue_close(&q);
	if (rv == 0)
		say_notice(r, "%s %s", r->o->flush_id, r->o->mode == MODE_HOLD ?
		    "is held: no more attempts until outbox -qU" :
		    "is released: it goes with the next flush");
	return rv;
}

void
front_desktop(const struct run *r, const struct qentry *qe, const char *what,
    const char *why)
{
	const struct rcpt	*first = NULL;
	char			 subject[160], summary[400], body[900];
	size_t			 i, n = 0;
	int			 gone = strcmp(what, "not delivered") == 0;

	if (r->acct != NULL && !acct_on(r->acct, CF_DESKTOP_NOTIFY))
		return;
	for (i = 0; i < qe->env.nrcpt; i++) {
		const struct rcpt *rc = &qe->env.rcpt[i];

		if (gone ? !rc->fresh : !rcpt_todo(rc))
			continue;
		if (n++ == 0)
			first = rc;
	}
	if (first == NULL)
		return;
	if (msg_subject(qe->fd, subject, sizeof(subject)) == -1)
		snprintf(subject, sizeof(subject), "(no subject)");
	snprintf(summary, sizeof(summary), "Mail to %s%s %s", first->addr,
	    n > 1 ? " and others" : "", what);
	snprintf(body, sizeof(body), "Subject: %s\n%s", subject, why);
	if (desktop_notify(summary, body) == 0 && r->o->verbose)
		say_notice(r, "desktop notice: %s", summary);
}

/*
 * What a flush says of an entry: refusals and giving up always; the
 * rest with -v, or why it was deferred with -q.
 */
void
flush_report(void *arg, const struct qentry *qe, const struct outcome *o)
{
	const struct run	*r = arg;
	const struct account	*a = r->acct;
	const char		*what;
	struct err		 one;
	size_t			 i;

	if (o->log_err.cls != ERR_NONE)
		say_notice(r, "%s", o->log_err.msg);
	for (i = 0; i < qe->env.nrcpt; i++) {
		const struct rcpt *rc = &qe->env.rcpt[i];

		if (deliver_refused(rc, &one) && rc->state == RCPT_FAILED)
			say_notice(r, "%s: %s", qe->id, one.msg);
	}
	what = o->fate == FATE_DELIVERED ? "delivered" :
	    o->fate == FATE_DEFERRED ? "deferred" : "failed";
	if (o->fate == FATE_DELIVERED && r->o->verbose)
		say_notice(r, "%s: delivered", qe->id);
	else if (o->fate == FATE_DELIVERED)
		;
	else if (o->untried && o->fate == FATE_DEFERRED)
		say_notice(r, "%s: %s; left in the queue", qe->id, o->err.msg);
	else if (o->untried)
		say_notice(r, "%s: failed: %s", qe->id, o->err.msg);
	else if (o->fate == FATE_FAILED || r->o->verbose ||
	    r->o->mode == MODE_FLUSH)
		say_notice(r, "%s: %s: %s:%s: %s", qe->id, what,
		    acct_str(a, CF_HOST), acct_str(a, CF_PORT),
		    o->err.cls != ERR_NONE ? o->err.msg : o->fate ==
		    FATE_FAILED ? "recipients were refused" :
		    "some recipients were refused for now");
	if (o->fate == FATE_FAILED || o->gave_up)
		front_desktop(r, qe, "not delivered", o->notice == DSN_FAILED &&
		    o->notice_id[0] ? "outbox gave up; the bounce says why." :
		    "outbox gave up; outbox -bp says why.");
	else if (o->notice == DSN_DELAYED && o->notice_id[0])
		front_desktop(r, qe, "delayed", "Still being tried; nothing to "
		    "do.");
	if (o->notice_err.cls != ERR_NONE)
		say_notice(r, "%s: the notice to <%s> could not be queued: %s",
		    qe->id, qe->env.sender, o->notice_err.msg);
	else if (o->notice_id[0] && (o->notice == DSN_FAILED ||
	    r->o->verbose))
		say_notice(r, "%s: %s sent to <%s> (queued as %s)", qe->id,
		    o->notice == DSN_FAILED ? "a bounce is" :
		    "a delay warning is", qe->env.sender, o->notice_id);
}

/* Every account with entries wanted by the command line, one at a time. */
static void
flush_accounts(struct run *r, struct queue *q, struct delivery *total)
{
	struct front_session	 fs;
	struct deliver_params	 dp;
	struct deliver_filter	 f;
	struct delivery		 d;
	struct qentry		*v;
	struct err		 e;
	size_t			 n, i, j;

	if (queue_list(q, 0, &v, &n, &e) == -1)
		return;
	if (q->unreadable[0])
		say_notice(r, "queue entry %s: cannot read its envelope; left "
		    "alone", q->unreadable);
	memset(&f, 0, sizeof(f));
	f.id = r->o->flush_id;
	f.force = !r->o->flush_due;
	for (i = 0; i < n; i++) {
		if (r->o->flush_account != NULL &&
		    strcmp(r->o->flush_account, v[i].account) != 0)
			continue;
		for (j = 0; j < i && strcmp(v[j].account, v[i].account); j++)
			;
		if (j < i)	/* done already */
			continue;
		f.account = v[i].account;
		memset(&fs, 0, sizeof(fs));
		fs.r = r;
		if (front_use_account(r, f.account, &e) == -1) {
			memset(&dp, 0, sizeof(dp));
			dp.account = f.account;
			dp.report = flush_report;
			dp.report_arg = r;
			deliver_begin(&d, &dp, q, NULL);
			deliver_orphans(&d, &f, &e);
		} else {
			front_deliver_params(r, &fs, &dp);
			deliver_begin(&d, &dp, q, NULL);
			deliver_queue(&d, &f);
		}
		deliver_end(&d);
		front_session_end(&fs);
		total->delivered += d.delivered;
		total->deferred += d.deferred;
		total->failed += d.failed;
	}
	qentry_free_list(v, n);
}

/* -qI ID: an id that names no waiting entry is an error, as for --drop. */
static int
flush_id_check(struct queue *q, const char *id, struct err *e)
{
	struct qentry	qe;
	int		rv, failed;

	memset(&qe, 0, sizeof(qe));
	qe.fd = -1;
	if ((rv = queue_find(q, id, &qe, e)) == -1)
		return -1;
	failed = qe.failed;
	qentry_clear(&qe);
	if (rv == 1)
		return err_set(e, ERR_USAGE, "no queue entry %s", id);
	if (failed)
		return err_set(e, ERR_USAGE, "%s is in failed/ and is not sent "
		    "again (outbox --drop %s removes it)", id, id);
	return 0;
}

int
mode_flush(struct run *r, struct err *e)
{
	struct queue	q;
	struct delivery	total;

	if (config_load(&r->cfg, r->o->conffile, e) == -1)
		return -1;
	if (open_queue(&q, e) == -1)
		return -1;
	if (r->o->flush_id != NULL && flush_id_check(&q, r->o->flush_id,
	    e) == -1) {
		queue_close(&q);
		return -1;
	}
	queue_clean_tmp(&q);
	memset(&total, 0, sizeof(total));
	flush_accounts(r, &q, &total);
	r->queue_touched = 1;	/* whatever is left is the retrier's */
	queue_close(&q);
	deliver_verdict(&total, NULL, NULL, e);
	return e->cls == ERR_NONE ? 0 : -1;
}
