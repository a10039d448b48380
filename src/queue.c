#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "queue.h"
#include "util.h"

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

long long
queue_now(void)
{
	const char	*fake = getenv("OUTBOX_NOW");

	return fake != NULL && *fake ? atoll(fake) : (long long)time(NULL);
}

static int
mkdir_p(const char *path, struct err *e)
{
	char	*p = xstrdup(path), *s;
	int	 rv = 0;

	for (s = p + 1; rv == 0 && (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST)
			rv = err_sys(e, ERR_TEMP, "cannot create %s", p);
		*s = '/';
	}
	if (rv == 0 && mkdir(p, 0700) == -1 && errno != EEXIST)
		rv = err_sys(e, ERR_TEMP, "cannot create %s", p);
	free(p);
	return rv;
}

/* Messages are private: a queue others can read or write is refused. */
static int
check_private(struct queue *q, struct err *e)
{
	struct stat	st;

	if (fstat(q->dfd, &st) == -1) {
		err_sys(e, ERR_TEMP, "cannot open the queue %s", q->dir);
		queue_close(q);
		return -1;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		err_set(e, ERR_CONFIG, "the queue %s must belong to you and be "
		    "private (mode 0700, now %04o); fix it with: chmod 700 %s",
		    q->dir, (unsigned)(st.st_mode & 07777), q->dir);
		queue_close(q);
		return -1;
	}
	return 0;
}

int
queue_open(struct queue *q, const char *dir, struct err *e)
{
	char	*sub;

	memset(q, 0, sizeof(*q));
	q->dfd = q->ffd = -1;
	sub = xasprintf("%s/failed", dir);
	if (mkdir_p(sub, e) == -1) {
		free(sub);
		return -1;
	}
	free(sub);
	sub = xasprintf("%s/tmp", dir);
	if (mkdir_p(sub, e) == -1) {
		free(sub);
		return -1;
	}
	free(sub);
	q->dir = xstrdup(dir);
	q->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dfd != -1)
		q->ffd = openat(q->dfd, "failed", O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC);
	if (q->dfd == -1 || q->ffd == -1) {
		err_sys(e, ERR_TEMP, "cannot open the queue %s", dir);
		queue_close(q);
		return -1;
	}
	return check_private(q, e);
}

void
queue_close(struct queue *q)
{
	if (q->dfd != -1)
		close(q->dfd);
	if (q->ffd != -1)
		close(q->ffd);
	free(q->dir);
	q->dir = NULL;
	q->dfd = q->ffd = -1;
}

static void
new_id(char *buf, size_t len)
{
	unsigned char	rnd[4];
	struct tm	tm;
	time_t		now = time(NULL);
	char		ts[32];

	gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd));
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%S", &tm);
	snprintf(buf, len, "%s-%d-%02x%02x%02x%02x", ts, (int)getpid(), rnd[0],
	    rnd[1], rnd[2], rnd[3]);
}

int
queue_spool(struct queue *q, struct qentry *qe, struct err *e)
{
	char	name[96];

	new_id(qe->id, sizeof(qe->id));
	snprintf(name, sizeof(name), "tmp/%s.msg", qe->id);
	qe->fd = openat(q->dfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (qe->fd == -1)
		return err_sys(e, ERR_TEMP, "cannot create a file in the queue "
		    "%s", q->dir);
	flock(qe->fd, LOCK_EX);
	crash_point("spooled");
	return 0;
}

void
queue_discard(struct queue *q, struct qentry *qe)
{
	char	name[96];

	snprintf(name, sizeof(name), "tmp/%s.msg", qe->id);
	unlinkat(q->dfd, name, 0);
}

static void
env_line(struct buf *b, const char *k, const char *v)
{
	char	clean[1024];

	if (v == NULL)
		return;
	sanitize(clean, sizeof(clean), v, strlen(v));
	buf_addf(b, "%s: %s\n", k, clean);
}

/*
 * Version 2: each "rcpt: ADDR" line may be followed by "status: STATE
 * CODE TEXT" once the recipient has been tried.  Version 1 had only the
 * recipients still to deliver, which read as "todo".
 */
static void
env_format(const struct qentry *qe, struct buf *b)
{
	const struct envelope	*env = &qe->env;
	size_t			 i;

	buf_adds(b, "version: 2\n");
	env_line(b, "account", qe->account);
	buf_addf(b, "sender: %s\n", env->sender ? env->sender : "");
	for (i = 0; i < env->nrcpt; i++) {
		const struct rcpt *r = &env->rcpt[i];

		env_line(b, "rcpt", r->addr);
		if (r->state != RCPT_TODO || r->code != 0)
			buf_addf(b, "status: %s %d %s\n",
			    rcpt_state_name(r->state), r->code, r->text);
	}
	env_line(b, "envid", env->envid);
	env_line(b, "notify", env->notify);
	env_line(b, "ret", env->ret);
	if (env->all_or_nothing)
		buf_adds(b, "all_or_nothing: 1\n");
	env_line(b, "msgid", qe->msgid);
	buf_addf(b, "queued: %lld\nnext: %lld\nattempts: %d\n8bit: %d\n"
	    "size: %lld\n", qe->queued, qe->next, qe->attempts, qe->eightbit,
	    qe->size);
	env_line(b, "error", qe->error);
}

/* Write ID.env through a temporary file and rename: all or nothing. */
static int
write_env(struct queue *q, int dfd, const struct qentry *qe, struct err *e)
{
	struct buf	b = { 0 };
	char		tmp[112], name[96];
	int		fd, rv = 0;

	env_format(qe, &b);
	snprintf(tmp, sizeof(tmp), "%s.env.tmp", qe->id);
	snprintf(name, sizeof(name), "%s.env", qe->id);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || write_all(fd, b.p, b.len) == -1 || fsync(fd) == -1)
		rv = err_sys(e, ERR_TEMP, "cannot write to the queue %s",
		    q->dir);
	if (fd != -1)
		close(fd);
	crash_point("env-written");
	if (rv == 0 && renameat(dfd, tmp, dfd, name) == -1)
		rv = err_sys(e, ERR_TEMP, "cannot write to the queue %s",
		    q->dir);
	if (rv == 0 && fsync(dfd) == -1)
		rv = err_sys(e, ERR_TEMP, "cannot sync the queue %s", q->dir);
	if (rv == -1)
		unlinkat(dfd, tmp, 0);
	crash_point("env-renamed");
	buf_free(&b);
	return rv;
}

int
queue_commit(struct queue *q, struct qentry *qe, struct err *e)
{
	char	tmp[96], name[96];

	snprintf(tmp, sizeof(tmp), "tmp/%s.msg", qe->id);
	snprintf(name, sizeof(name), "%s.msg", qe->id);
	if (fsync(qe->fd) == -1)
		return err_sys(e, ERR_TEMP, "cannot sync the queue %s", q->dir);
	if (renameat(q->dfd, tmp, q->dfd, name) == -1)
		return err_sys(e, ERR_TEMP, "cannot write to the queue %s",
		    q->dir);
	crash_point("msg-renamed");
	return write_env(q, q->dfd, qe, e);
}

int
queue_update(struct queue *q, struct qentry *qe, struct err *e)
{
	return write_env(q, qe->failed ? q->ffd : q->dfd, qe, e);
}

int
queue_remove(struct queue *q, struct qentry *qe, struct err *e)
{
	char	name[96];
	int	dfd = qe->failed ? q->ffd : q->dfd;

	/* The envelope first: without it the entry no longer exists. */
	snprintf(name, sizeof(name), "%s.env", qe->id);
	if (unlinkat(dfd, name, 0) == -1 && errno != ENOENT)
		return err_sys(e, ERR_IO, "cannot remove %s from the queue",
		    qe->id);
	crash_point("env-removed");
	snprintf(name, sizeof(name), "%s.msg", qe->id);
	unlinkat(dfd, name, 0);
	fsync(dfd);
	return 0;
}

int
queue_fail(struct queue *q, struct qentry *qe, struct err *e)
{
	char	name[96];

	snprintf(name, sizeof(name), "%s.msg", qe->id);
	if (renameat(q->dfd, name, q->ffd, name) == -1)
		return err_sys(e, ERR_IO, "cannot move %s to failed/", qe->id);
	crash_point("msg-failed");
	qe->failed = 1;
	if (write_env(q, q->ffd, qe, e) == -1)
		return -1;
	snprintf(name, sizeof(name), "%s.env", qe->id);
	unlinkat(q->dfd, name, 0);
	fsync(q->dfd);
	return 0;
}

/* "STATE CODE TEXT" for the last recipient read. */
static void
env_status(struct envelope *env, const char *v)
{
	struct rcpt	*r;
	char		 name[16], *end;
	int		 st;
	long		 code;

	if (env->nrcpt == 0 || sscanf(v, "%15s", name) != 1 ||
	    (st = rcpt_state_parse(name)) == -1)
		return;
	r = &env->rcpt[env->nrcpt - 1];
	v += strlen(name);
	code = strtol(v, &end, 10);
	r->state = (enum rcpt_state)st;
	r->code = code >= 0 && code < 1000 ? (int)code : 0;
	rcpt_set_reply(r, r->code, *end == ' ' ? end + 1 : end);
}

static void
env_set(struct qentry *qe, const char *k, const char *v)
{
	struct envelope	*env = &qe->env;
	char		**field = NULL;

	if (strcmp(k, "rcpt") == 0) {
		env_add_rcpt(env, v);
		return;
	}
	if (strcmp(k, "status") == 0) {
		env_status(env, v);
		return;
	}
	if (strcmp(k, "account") == 0)
		field = &qe->account;
	else if (strcmp(k, "sender") == 0)
		field = &env->sender;
	else if (strcmp(k, "envid") == 0)
		field = &env->envid;
	else if (strcmp(k, "notify") == 0)
		field = &env->notify;
	else if (strcmp(k, "ret") == 0)
		field = &env->ret;
	else if (strcmp(k, "all_or_nothing") == 0)
		env->all_or_nothing = atoi(v);
	else if (strcmp(k, "msgid") == 0)
		field = &qe->msgid;
	else if (strcmp(k, "error") == 0)
		field = &qe->error;
	else if (strcmp(k, "queued") == 0)
		qe->queued = atoll(v);
	else if (strcmp(k, "next") == 0)
		qe->next = atoll(v);
	else if (strcmp(k, "attempts") == 0)
		qe->attempts = atoi(v);
	else if (strcmp(k, "8bit") == 0)
		qe->eightbit = atoi(v);
	else if (strcmp(k, "size") == 0)
		qe->size = atoll(v);
	if (field != NULL) {
		free(*field);
		*field = xstrdup(v);
	}
}

static int
read_env(int dfd, const char *id, struct qentry *qe)
{
	char	 name[96], *line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	FILE	*fp;
	int	 fd;

	memset(qe, 0, sizeof(*qe));
	qe->fd = -1;
	snprintf(qe->id, sizeof(qe->id), "%s", id);
	snprintf(name, sizeof(name), "%s.env", id);
	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if ((fp = fdopen(fd, "r")) == NULL) {
		close(fd);
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) > 0) {
		char *colon = strstr(line, ": ");

		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if (colon == NULL)
			continue;
		*colon = '\0';
		env_set(qe, line, colon + 2);
	}
	free(line);
	fclose(fp);
	return qe->account != NULL && qe->env.sender != NULL &&
	    qe->env.nrcpt > 0 ? 0 : -1;
}

/*
 * A move to failed/ that a crash cut short: the message is there, its
 * envelope still here.  Finish the move, so that nothing is stuck.
 * Returns 1 if the entry was moved.
 */
static int
finish_fail(struct queue *q, struct qentry *qe)
{
	char		name[96];
	struct stat	st;
	struct err	e;

	snprintf(name, sizeof(name), "%s.msg", qe->id);
	if (fstatat(q->dfd, name, &st, 0) == 0 ||
	    fstatat(q->ffd, name, &st, 0) == -1)
		return 0;
	qe->failed = 1;
	if (write_env(q, q->ffd, qe, &e) == -1)
		return 0;
	snprintf(name, sizeof(name), "%s.env", qe->id);
	unlinkat(q->dfd, name, 0);
	fsync(q->dfd);
	return 1;
}

static int
by_age(const void *a, const void *b)
{
	const struct qentry *x = a, *y = b;

	if (x->queued != y->queued)
		return x->queued < y->queued ? -1 : 1;
	return strcmp(x->id, y->id);
}

int
queue_list(struct queue *q, int failed, struct qentry **out, size_t *n,
    struct err *e)
{
	struct dirent	*d;
	struct qentry	*v = NULL;
	size_t		 len;
	DIR		*dir;
	int		 fd = dup(failed ? q->ffd : q->dfd);

	*out = NULL;
	*n = 0;
	q->unreadable[0] = '\0';
	if (fd == -1 || (dir = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return err_sys(e, ERR_TEMP, "cannot read the queue %s", q->dir);
	}
	rewinddir(dir);
	while ((d = readdir(dir)) != NULL) {
		char id[64];

		len = strlen(d->d_name);
		if (len < 5 || len - 4 >= sizeof(id) ||
		    strcmp(d->d_name + len - 4, ".env") != 0)
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)(len - 4), d->d_name);
		v = xrealloc(v, (*n + 1) * sizeof(*v));
		if (read_env(failed ? q->ffd : q->dfd, id, &v[*n]) == -1) {
			snprintf(q->unreadable, sizeof(q->unreadable), "%s", id);
			qentry_clear(&v[*n]);
			continue;
		}
		v[*n].failed = failed;
		if (!failed && finish_fail(q, &v[*n])) {
			qentry_clear(&v[*n]);
			continue;
		}
		(*n)++;
	}
	closedir(dir);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), by_age);
	*out = v;
	return 0;
}

int
queue_lock(struct queue *q, struct qentry *qe)
{
	char		name[96], id[64];
	int		fd;

	snprintf(id, sizeof(id), "%s", qe->id);
	snprintf(name, sizeof(name), "%s.msg", qe->id);
	qe->fd = openat(q->dfd, name, O_RDONLY | O_CLOEXEC);
	if (qe->fd == -1)
		return 1;
	if (flock(qe->fd, LOCK_EX | LOCK_NB) == -1) {
		close(qe->fd);
		qe->fd = -1;
		return 1;
	}
	/*
	 * What was listed may be stale: another outbox may have sent the
	 * entry, or some of its recipients, before we held the lock.  What
	 * is on disk now is what counts.
	 */
	fd = qe->fd;
	qe->fd = -1;
	qentry_clear(qe);
	if (read_env(q->dfd, id, qe) == -1) {
		qentry_clear(qe);
		close(fd);
		return 1;
	}
	qe->fd = fd;
	return 0;
}

int
queue_due(struct queue *q, const char *acct, const char *skip, long long now)
{
	struct qentry	*v;
	struct err	 e;
	size_t		 n, i;
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
queue_find(struct queue *q, const char *id, struct qentry *qe, struct err *e)
{
	if (strchr(id, '/') != NULL || strlen(id) >= sizeof(qe->id))
		return err_set(e, ERR_USAGE, "'%s' is not a queue id", id);
	if (read_env(q->dfd, id, qe) == 0)
		return 0;
	qentry_clear(qe);
	if (read_env(q->ffd, id, qe) == 0) {
		qe->failed = 1;
		return 0;
	}
	qentry_clear(qe);
	return 1;
}

int
queue_drop(struct queue *q, const char *id, struct err *e)
{
	struct qentry	qe;
	int		rv;

	if ((rv = queue_find(q, id, &qe, e)) != 0)
		return rv == 1 ? err_set(e, ERR_USAGE, "no queue entry %s", id) :
		    -1;
	rv = queue_remove(q, &qe, e);
	qentry_clear(&qe);
	return rv;
}

/* Does NAME.msg (len bytes) have its NAME.env beside it? */
static int
has_env(int dfd, const char *name, size_t len)
{
	char		env[96];
	struct stat	st;

	snprintf(env, sizeof(env), "%.*s.env", (int)(len - 4), name);
	return fstatat(dfd, env, &st, 0) == 0;
}

/*
 * Remove what a killed writer left in a folder: files over an hour old that
 * end in suffix ("" for any) and that nobody holds a lock on (a spool
 * being written is locked by its writer).
 */
static void
sweep(int pfd, const char *sub, const char *suffix)
{
	struct dirent	*d;
	struct stat	 st;
	DIR		*dir;
	size_t		 n, sl = strlen(suffix);
	int		 fd, dfd;

	if ((dfd = openat(pfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if ((dir = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((d = readdir(dir)) != NULL) {
		n = strlen(d->d_name);
		if (d->d_name[0] == '.' || n < sl ||
		    strcmp(d->d_name + n - sl, suffix) != 0)
			continue;
		if (strcmp(suffix, ".msg") == 0 && has_env(dfd, d->d_name, n))
			continue;
		if ((fd = openat(dfd, d->d_name, O_RDONLY | O_CLOEXEC |
		    O_NOFOLLOW)) == -1)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_mtime < time(NULL) - 3600 &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0)
			unlinkat(dfd, d->d_name, 0);
		close(fd);
	}
	closedir(dir);
}

void
queue_clean_tmp(struct queue *q)
{
	sweep(q->dfd, "tmp", "");
	/* An ID.env.tmp whose rename never came: the old ID.env stands. */
	sweep(q->dfd, ".", ".env.tmp");
	sweep(q->dfd, "failed", ".env.tmp");
	/* A message whose envelope never came was never committed. */
	sweep(q->dfd, ".", ".msg");
}

void
qentry_clear(struct qentry *qe)
{
	free(qe->account);
	free(qe->msgid);
	free(qe->error);
	env_free(&qe->env);
	if (qe->fd != -1)
		close(qe->fd);
	qe->account = qe->msgid = qe->error = NULL;
	qe->fd = -1;
}

void
qentry_free_list(struct qentry *v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		qentry_clear(&v[i]);
	free(v);
}

long long
queue_backoff(int attempts)
{
	long long	delay = 300;

	while (--attempts > 0 && delay < 4 * 3600)
		delay *= 2;
	return delay > 4 * 3600 ? 4 * 3600 : delay;
}
