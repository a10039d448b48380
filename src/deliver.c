#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/types.h>

#include "backoff.h"
#include "deliver.h"
#include "dsn.h"
#include "log.h"
#include "util.h"

#define ORPHAN_LIFETIME	(5 * 86400LL)

void
deliver_begin(struct delivery *d, const struct deliver_params *p,
    struct queue *q, struct smtp_session *s)
{
	memset(d, 0, sizeof(*d));
	d->p = p;
	d->q = q;
	d->s = s;
}

void
deliver_end(struct delivery *d)
{
	smtp_close(d->s, &d->res);
	d->s = NULL;
}

static int
permanent(enum err_class cls)
{
	return cls == ERR_PERM || cls == ERR_ADDR || cls == ERR_DATA;
}

static enum rcpt_state
state_of_reply(int code)
{
	if (code / 100 == 2)
		return RCPT_SENT;
	return code >= 500 ? RCPT_FAILED : RCPT_DEFERRED;
}

/*
 * Each recipient still to do, after the attempt: its own refusal (or,
 * with LMTP, its own reply to the data) decides for it; one the server
 * accepted (or never heard of) follows the transaction.  A session that failed before MAIL leaves them as they were.
 */
static int
settle_rcpts(struct envelope *env, int rv, const struct err *e,
    const struct smtp_result *res)
{
	size_t	i, before = env_count(env, RCPT_FAILED);

	for (i = 0; i < env->nrcpt; i++) {
		struct rcpt *r = &env->rcpt[i];

		if (!rcpt_todo(r) || (rv == -1 && res->stage == STAGE_SESSION))
			continue;
		if (r->tried && (rv == 0 || r->code >= 400 || r->replied))
			r->state = state_of_reply(r->code);
		else {
			r->state = permanent(e->cls) ? RCPT_FAILED :
			    RCPT_DEFERRED;
			rcpt_set_reply(r, res->code, e->msg);
		}
		r->fresh = r->state == RCPT_FAILED;
	}
	/* All or nothing: once one has failed for good, the message has. */
	if (env->all_or_nothing && env_count(env, RCPT_FAILED) > 0)
		for (i = 0; i < env->nrcpt; i++)
			if (rcpt_todo(&env->rcpt[i]))
				env->rcpt[i].state = RCPT_FAILED,
				env->rcpt[i].fresh = 1;
	return (int)(env_count(env, RCPT_FAILED) - before);
}

/*
 * The entry's fate, decided here for every attempt: deferred while a
 * recipient is left to try; failed when this attempt gave one up (those
 * given up before were told of then); else delivered.
 */
static enum fate
entry_fate(const struct delivery *d, const struct qentry *qe, int rv,
    const struct err *e, const struct smtp_result *res, int gave_up)
{
	if (rv == -1 && d->p->caller_waits && !res->rcpts_refused &&
	    e->cls != ERR_TEMP)
		return FATE_FAILED;
	if (rv == -1 && res->stage == STAGE_SESSION)
		return FATE_DEFERRED;
	if (env_todo(&qe->env) > 0)
		return FATE_DEFERRED;
	return gave_up ? FATE_FAILED : FATE_DELIVERED;
}

static void
write_log(const struct delivery *d, const struct qentry *qe,
    struct outcome *o, long long start)
{
	const struct deliver_params	*p = d->p;
	struct logrec			 l;
	struct buf			 rc = { 0 };
	struct err			 v;
	size_t				 i;

	if (p->logfile == NULL && p->syslog == NULL)
		return;
	for (i = 0; i < qe->env.nrcpt; i++)
		if (qe->env.rcpt[i].tried)
			buf_addf(&rc, "%s<%s>=%d", rc.len ? "," : "",
			    qe->env.rcpt[i].addr, qe->env.rcpt[i].code);
	deliver_verdict(d, qe, o, &v);
	memset(&l, 0, sizeof(l));
	l.label = qe->label;
	l.account = p->account;
	l.host = p->host;
	l.port = p->port;
	l.tls = d->res.tls.version[0] ? d->res.tls.version : "off";
	l.cipher = d->res.tls.cipher[0] ? d->res.tls.cipher : NULL;
	l.queued = o->kept && o->fate == FATE_DEFERRED ? qe->id : NULL;
	l.mech = d->res.mech;
	l.sender = qe->env.sender;
	l.rcpts = rc.p ? rc.p : "";
	l.size = qe->size;
	l.msgid = qe->msgid;
	l.reshaped = qe->reshaped;
	l.reply = d->res.final;
	l.ms = now_ms() - start;
	l.exitcode = err_exitcode(&v);
	l.error = o->err.cls != ERR_NONE ? o->err.msg : NULL;
	log_message(p->logfile, p->logtime, p->syslog, &l, &o->log_err);
	buf_free(&rc);
}

/*
 * A notice to the entry's sender (a bounce, or the delay warning), queued
 * as an entry of its own for the same account, from the null sender so
 * that it can never bounce in turn.
 */
static void
queue_notice(struct delivery *d, const struct qentry *qe, enum dsn_kind kind,
    struct outcome *o)
{
	const struct deliver_params	*p = d->p;
	struct qentry			 n;
	struct dsn_info			 di;
	struct err			 e;
	off_t				 size;

	memset(&n, 0, sizeof(n));
	n.fd = -1;
	memset(&di, 0, sizeof(di));
	di.kind = kind;
	di.reporter = p->reporter != NULL ? p->reporter : "localhost";
	di.server = p->host != NULL ? p->host : "(none)";
	di.until = kind == DSN_DELAYED && p->lifetime > 0 ?
	    qe->queued + p->lifetime : 0;
	di.full = qe->env.ret != NULL && strcmp(qe->env.ret, "full") == 0;
	if (queue_spool(d->q, &n, &e) == -1 ||
	    dsn_write(n.fd, qe, qe->fd, &di, &n.eightbit, &e) == -1 ||
	    (size = lseek(n.fd, 0, SEEK_END)) == -1) {
		if (n.fd != -1)
			queue_discard(d->q, &n);
		o->notice_err = e;
		qentry_clear(&n);
		return;
	}
	n.account = xstrdup(qe->account);
	n.env.sender = xstrdup("");
	env_add_rcpt(&n.env, qe->env.sender);
	n.queued = n.next = queue_now();
	n.size = (long long)size;
	if (queue_commit(d->q, &n, &e) == -1) {
		queue_discard(d->q, &n);
		o->notice_err = e;
	} else {
		snprintf(o->notice_id, sizeof(o->notice_id), "%s", n.id);
		o->notice = kind;
		d->notices++;
	}
	qentry_clear(&n);
}

/* Tell the sender what the caller cannot be told: given up, or delayed. */
static void
notify_sender(struct delivery *d, struct qentry *qe, struct outcome *o)
{
	const struct deliver_params	*p = d->p;
	size_t				 i, fresh = 0;

	if (qe->env.sender == NULL || qe->env.sender[0] == '\0')
		return;
	for (i = 0; i < qe->env.nrcpt; i++)
		fresh += qe->env.rcpt[i].fresh;
	if (fresh > 0 && !p->caller_waits && p->bounces)
		queue_notice(d, qe, DSN_FAILED, o);
	else if (o->fate == FATE_DEFERRED && !qe->warned &&
	    qentry_delayed(qe, p->warn, queue_now())) {
		qe->warned = 1;
		queue_notice(d, qe, DSN_DELAYED, o);
	}
}

/* What the attempt came to, on disk: removed, kept for later, or failed/. */
static void
settle_entry(struct delivery *d, struct qentry *qe, struct outcome *o)
{
	struct err	e2;

	crash_point("settle");
	o->kept = 0;
	if (d->q == NULL)
		return;
	notify_sender(d, qe, o);
	if (o->fate == FATE_DELIVERED ||
	    (o->fate == FATE_FAILED && d->p->caller_waits)) {
		if (queue_remove(d->q, qe, &e2) == -1)
			o->err = e2;
		return;
	}
	free(qe->error);
	qe->error = xstrdup(o->err.cls != ERR_NONE ? o->err.msg :
	    o->fate == FATE_FAILED ? "recipients were refused" :
	    "some recipients were refused for now");
	if (o->fate == FATE_DEFERRED) {
		qe->attempts++;
		qe->next = queue_now() + backoff_next(qe->attempts,
		    d->p->retry, d->p->retry_max, backoff_random());
	}
	/* A deferred entry whose update failed still stands as it was. */
	if (o->fate == FATE_DEFERRED) {
		queue_update(d->q, qe, &e2);
		o->kept = 1;
	} else if (queue_fail(d->q, qe, &e2) == 0)
		o->kept = 1;
}

/* A recipient given up counts as a failure, even if others wait. */
static void
count(struct delivery *d, const struct outcome *o)
{
	if (o->fate == FATE_FAILED || o->gave_up)
		d->failed++;
	else if (o->fate == FATE_DEFERRED)
		d->deferred++;
	else
		d->delivered++;
}

/* Settle, log, tell and count an outcome. */
static void
conclude(struct delivery *d, struct qentry *qe, struct outcome *o,
    long long start)
{
	settle_entry(d, qe, o);
	write_log(d, qe, o, start);
	if (d->p->report != NULL)
		d->p->report(d->p->report_arg, qe, o);
	count(d, o);
}

/* The session, opened when first needed; a failure is kept for the rest. */
static int
session(struct delivery *d, struct err *e)
{
	if (d->s != NULL)
		return 0;
	if (d->open_err.cls != ERR_NONE) {
		*e = d->open_err;
		return -1;
	}
	memset(&d->res, 0, sizeof(d->res));
	d->s = d->p->open(d->p->open_arg, &d->res, e);
	if (d->s != NULL)
		return 0;
	d->res.stage = STAGE_SESSION;
	d->open_err = *e;
	return -1;
}

void
deliver_entry(struct delivery *d, struct qentry *qe, int last,
    struct outcome *o)
{
	long long	start = d->p->start_ms ? d->p->start_ms : now_ms();
	struct msg	m;
	int		rv;

	memset(o, 0, sizeof(*o));
	memset(&m, 0, sizeof(m));
	m.fd = -1;
	if ((rv = session(d, &o->err)) == 0) {
		m.fd = dup(qe->fd);
		m.size = qe->size;
		m.eightbit = qe->eightbit;
		rv = smtp_transaction(d->s, &qe->env, &m, last, &d->res,
		    &o->err);
		msg_free(&m);
	}
	o->rcpts_refused = rv == -1 && d->res.rcpts_refused;
	o->gave_up = settle_rcpts(&qe->env, rv, &o->err, &d->res);
	o->fate = entry_fate(d, qe, rv, &o->err, &d->res, o->gave_up);
	if (rv == 0 && o->fate == FATE_DELIVERED)
		o->err.cls = ERR_NONE;
	conclude(d, qe, o, start);
	if (d->s != NULL && !smtp_reusable(d->s))
		deliver_end(d);
}

/* Given up without an attempt: every recipient still to do fails. */
static void
expire(struct delivery *d, struct qentry *qe, const char *why)
{
	struct outcome	o;
	size_t		i;

	memset(&o, 0, sizeof(o));
	for (i = 0; i < qe->env.nrcpt; i++)
		if (rcpt_todo(&qe->env.rcpt[i])) {
			qe->env.rcpt[i].state = RCPT_FAILED;
			qe->env.rcpt[i].fresh = 1;
			rcpt_set_reply(&qe->env.rcpt[i], 0, why);
		}
	o.fate = FATE_FAILED;
	o.untried = 1;
	o.gave_up = 1;
	err_set(&o.err, ERR_PERM, "%s", why);
	conclude(d, qe, &o, now_ms());
}

static int
wanted(const struct deliver_filter *f, const struct qentry *qe, long long now)
{
	if (qe->account == NULL || strcmp(qe->account, f->account) != 0)
		return 0;
	if (f->id != NULL && strcmp(f->id, qe->id) != 0)
		return 0;
	if (f->skip != NULL && strcmp(f->skip, qe->id) == 0)
		return 0;
	if (qe->held)
		return 0;
	if (f->notices_only)
		return qe->env.sender[0] == '\0' && qe->attempts == 0 &&
		    qe->next <= now;
	return f->force || qe->next <= now;
}

/* Has the entry been in the queue for longer than lifetime? */
static int
expired(struct delivery *d, struct qentry *qe, long long lifetime,
    const char *last_error)
{
	static const struct { long long s; const char *name; } units[] = {
		{ 86400, "days" }, { 3600, "hours" }, { 60, "minutes" },
		{ 1, "seconds" } };
	char	why[700];
	size_t	u = 0;

	if (lifetime <= 0 || queue_now() - qe->queued <= lifetime)
		return 0;
	while (lifetime % units[u].s != 0)
		u++;
	snprintf(why, sizeof(why), "expired after %lld %s in the queue; "
	    "last error: %.500s", lifetime / units[u].s, units[u].name,
	    last_error ? last_error : "none");
	expire(d, qe, why);
	return 1;
}

static void
deliver_pass(struct delivery *d, const struct deliver_filter *f)
{
	struct qentry	*v;
	struct outcome	 o;
	struct err	 e;
	long long	 now = queue_now();
	size_t		 n, i, j;

	if (queue_list(d->q, 0, &v, &n, &e) == -1)
		return;
	for (i = 0; i < n; i++) {
		if (!wanted(f, &v[i], now) || queue_lock(d->q, &v[i]) != 0)
			continue;
		if (!expired(d, &v[i], d->p->lifetime, v[i].error)) {
			for (j = i + 1; j < n && !wanted(f, &v[j], now); j++)
				;
			deliver_entry(d, &v[i], j == n, &o);
		}
		close(v[i].fd);	/* releases the lock */
		v[i].fd = -1;
	}
	qentry_free_list(v, n);
}

/* The entries wanted, then the notices to senders that they gave rise to. */
void
deliver_queue(struct delivery *d, const struct deliver_filter *f)
{
	struct deliver_filter	nf;
	int			pass, before = d->notices;

	deliver_pass(d, f);
	nf = *f;
	nf.id = NULL;
	nf.notices_only = 1;
	for (pass = 0; pass < 2 && d->notices > before; pass++) {
		before = d->notices;
		deliver_pass(d, &nf);
	}
}

void
deliver_orphans(struct delivery *d, const struct deliver_filter *f,
    const struct err *why)
{
	struct qentry	*v;
	struct outcome	 o;
	struct err	 e;
	long long	 now = queue_now();
	size_t		 n, i;

	if (queue_list(d->q, 0, &v, &n, &e) == -1)
		return;
	for (i = 0; i < n; i++) {
		if (!wanted(f, &v[i], now) || queue_lock(d->q, &v[i]) != 0)
			continue;
		if (!expired(d, &v[i], ORPHAN_LIFETIME, why->msg)) {
			memset(&o, 0, sizeof(o));
			o.fate = FATE_DEFERRED;
			o.err = *why;
			/* Left as it is: the account may come back. */
			o.kept = o.untried = 1;
			if (d->p->report != NULL)
				d->p->report(d->p->report_arg, &v[i], &o);
			count(d, &o);
		}
		close(v[i].fd);
		v[i].fd = -1;
	}
	qentry_free_list(v, n);
}

int
deliver_refused(const struct rcpt *r, struct err *e)
{
	if (!r->tried || r->code < 400)
		return 0;
	err_set(e, smtp_reply_class(r->code, r->text, ERR_PERM), "%s<%s>: %d %s",
	    r->replied ? "end of data for " : "RCPT TO:", r->addr, r->code,
	    r->text);
	return 1;
}

/* The worst recipient given up on: a bad address (67) over the rest (69). */
static enum err_class
worst_failed(const struct envelope *env)
{
	enum err_class	worst = ERR_NONE, cls;
	size_t		i;

	for (i = 0; i < env->nrcpt; i++) {
		const struct rcpt *r = &env->rcpt[i];

		if (r->state != RCPT_FAILED || !r->tried)
			continue;
		cls = smtp_reply_class(r->code, r->text, ERR_PERM);
		if (worst != ERR_ADDR)
			worst = cls;
	}
	return worst;
}

void
deliver_verdict(const struct delivery *d, const struct qentry *qe,
    const struct outcome *o, struct err *e)
{
	e->cls = ERR_NONE;
	e->msg[0] = '\0';
	if (qe == NULL) {
		/* A flush: something given up, else something left for later. */
		if (d->failed)
			e->cls = ERR_PERM;
		else if (d->deferred)
			e->cls = ERR_TEMP;
		return;
	}
	/* A send: what failed for good, unless the rest waits unqueued. */
	if (o->fate == FATE_DELIVERED)
		return;
	if (o->err.cls != ERR_NONE && !o->rcpts_refused &&
	    (o->fate == FATE_FAILED || !o->kept)) {
		*e = o->err;
		return;
	}
	e->cls = o->fate == FATE_DEFERRED && !o->kept ? ERR_TEMP :
	    worst_failed(&qe->env);
}
