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

static void	migrate(int);

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
	if (check_private(q, e) == -1)
		return -1;
	migrate(q->dfd);
	migrate(q->ffd);
	return 0;
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
	snprintf(name, sizeof(name), "tmp/%s", qe->id);
	if (mkdirat(q->dfd, name, 0700) == -1)
		return err_sys(e, ERR_TEMP, "cannot create a folder in the "
		    "queue %s", q->dir);
	snprintf(name, sizeof(name), "tmp/%s/msg", qe->id);
	qe->fd = openat(q->dfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (qe->fd == -1)
		return err_sys(e, ERR_TEMP, "cannot create a file in the queue "
		    "%s", q->dir);
	flock(qe->fd, LOCK_EX);
	crash_point("spooled");
	return 0;
}

/* Remove an entry's folder and what is in it (under pfd, named name). */
static void
remove_dir(int pfd, const char *name)
{
	int	fd;

	if ((fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		return;
	unlinkat(fd, "env", 0);
	unlinkat(fd, "env.tmp", 0);
	unlinkat(fd, "msg", 0);
	close(fd);
	unlinkat(pfd, name, AT_REMOVEDIR);
}

void
queue_discard(struct queue *q, struct qentry *qe)
{
	char	name[96];

	snprintf(name, sizeof(name), "tmp/%s", qe->id);
	remove_dir(q->dfd, name);
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
	env_line(b, "body", env->body);
	if (env->smtputf8)
		buf_adds(b, "smtputf8: 1\n");
	env_line(b, "label", qe->label);
	if (qe->held)
		buf_adds(b, "held: 1\n");
	if (qe->warned)
		buf_adds(b, "warned: 1\n");
	env_line(b, "msgid", qe->msgid);
	buf_addf(b, "queued: %lld\nnext: %lld\nattempts: %d\n8bit: %d\n"
	    "size: %lld\n", qe->queued, qe->next, qe->attempts, qe->eightbit,
	    qe->size);
	env_line(b, "error", qe->error);
	env_line(b, "reshaped", qe->reshaped);
}

/* Write the folder's env through env.tmp and a rename: all or nothing. */
static int
write_env(struct queue *q, int dfd, const struct qentry *qe, struct err *e)
{
	struct buf	b = { 0 };
	int		fd, rv = 0;

	env_format(qe, &b);
	fd = openat(dfd, "env.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600);
	if (fd == -1 || write_all(fd, b.p, b.len) == -1 || fsync(fd) == -1)
		rv = err_sys(e, ERR_TEMP, "cannot write to the queue %s",
		    q->dir);
	if (fd != -1)
		close(fd);
	crash_point("env-written");
	if (rv == 0 && renameat(dfd, "env.tmp", dfd, "env") == -1)
		rv = err_sys(e, ERR_TEMP, "cannot write to the queue %s",
		    q->dir);
	if (rv == 0 && fsync(dfd) == -1)
		rv = err_sys(e, ERR_TEMP, "cannot sync the queue %s", q->dir);
	if (rv == -1)
		unlinkat(dfd, "env.tmp", 0);
	buf_free(&b);
	crash_point("env-renamed");
	return rv;
}

/* The folder of entry id under pfd, opened; -1 if there is none. */
static int
entry_dir(int pfd, const char *id)
{
	return openat(pfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Write the entry's envelope in its folder under pfd (the queue, tmp/, failed/). */
static int
write_entry_env(struct queue *q, int pfd, const char *sub,
    const struct qentry *qe, struct err *e)
{
	char	name[96];
	int	dfd, rv;

	snprintf(name, sizeof(name), "%s%s", sub, qe->id);
	if ((dfd = entry_dir(pfd, name)) == -1)
		return err_sys(e, ERR_TEMP, "cannot open %s in the queue %s",
		    qe->id, q->dir);
	rv = write_env(q, dfd, qe, e);
	close(dfd);
	return rv;
}

/*
 * The message and its envelope are made whole in tmp/ID/; one rename of
 * that folder then makes the entry appear, so no crash leaves half of one.
 */
int
queue_commit(struct queue *q, struct qentry *qe, struct err *e)
{
	char	tmp[96];

	snprintf(tmp, sizeof(tmp), "tmp/%s", qe->id);
	if (fsync(qe->fd) == -1)
		return err_sys(e, ERR_TEMP, "cannot sync the queue %s", q->dir);
	if (write_entry_env(q, q->dfd, "tmp/", qe, e) == -1)
		return -1;
	if (renameat(q->dfd, tmp, q->dfd, qe->id) == -1)
		return err_sys(e, ERR_TEMP, "cannot write to the queue %s",
		    q->dir);
	crash_point("committed");
	if (fsync(q->dfd) == -1)
		return err_sys(e, ERR_TEMP, "cannot sync the queue %s", q->dir);
	return 0;
}

int
queue_update(struct queue *q, struct qentry *qe, struct err *e)
{
	return write_entry_env(q, qe->failed ? q->ffd : q->dfd, "", qe, e);
}

int
queue_remove(struct queue *q, struct qentry *qe, struct err *e)
{
	int	pfd = qe->failed ? q->ffd : q->dfd;
	int	dfd;

	/* The envelope first: without it the entry no longer exists. */
	if ((dfd = entry_dir(pfd, qe->id)) == -1)
		return 0;
	if (unlinkat(dfd, "env", 0) == -1 && errno != ENOENT) {
		close(dfd);
		return err_sys(e, ERR_IO, "cannot remove %s from the queue",
		    qe->id);
	}
	fsync(dfd);
	close(dfd);
	crash_point("env-removed");
	remove_dir(pfd, qe->id);
	fsync(pfd);
	return 0;
}

/* One rename moves the whole entry; its envelope is then brought up to date. */
int
queue_fail(struct queue *q, struct qentry *qe, struct err *e)
{
	if (renameat(q->dfd, qe->id, q->ffd, qe->id) == -1)
		return err_sys(e, ERR_IO, "cannot move %s to failed/", qe->id);
	crash_point("msg-failed");
	fsync(q->dfd);
	qe->failed = 1;
	return write_entry_env(q, q->ffd, "", qe, e);
}

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
	else if (strcmp(k, "body") == 0)
		field = &env->body;
	else if (strcmp(k, "smtputf8") == 0)
		env->smtputf8 = atoi(v);
	else if (strcmp(k, "label") == 0)
		field = &qe->label;
	else if (strcmp(k, "held") == 0)
		qe->held = atoi(v);
	else if (strcmp(k, "warned") == 0)
		qe->warned = atoi(v);
	else if (strcmp(k, "msgid") == 0)
		field = &qe->msgid;
	else if (strcmp(k, "error") == 0)
		field = &qe->error;
	else if (strcmp(k, "reshaped") == 0)
		field = &qe->reshaped;
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
	snprintf(name, sizeof(name), "%s/env", id);
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
		const char	*id = d->d_name;
		char		 env[96];

		len = strlen(id);
		if (id[0] == '.' || len >= sizeof(v->id) ||
		    strcmp(id, "tmp") == 0 || strcmp(id, "failed") == 0)
			continue;
		/* A folder without env is being removed, or was never whole. */
		snprintf(env, sizeof(env), "%.80s/env", id);
		if (faccessat(failed ? q->ffd : q->dfd, env, F_OK, 0) == -1)
			continue;
		v = xrealloc(v, (*n + 1) * sizeof(*v));
		if (read_env(failed ? q->ffd : q->dfd, id, &v[*n]) == -1) {
			snprintf(q->unreadable, sizeof(q->unreadable), "%.*s",
			    (int)sizeof(q->unreadable) - 1, id);
			qentry_clear(&v[*n]);
			continue;
		}
		v[*n].failed = failed;
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
	snprintf(name, sizeof(name), "%s/msg", qe->id);
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
qentry_delayed(const struct qentry *qe, long long warn, long long now)
{
	return warn > 0 && now - qe->queued >= warn;
}

size_t
queue_waiting(struct queue *q, long long *earliest)
{
	struct qentry	*v;
	struct err	 e;
	size_t		 n, i, waiting = 0;

	*earliest = 0;
	if (queue_list(q, 0, &v, &n, &e) == -1)
		return 0;
	for (i = 0; i < n; i++) {
		if (v[i].held)
			continue;
		if (waiting++ == 0 || v[i].next < *earliest)
			*earliest = v[i].next;
	}
	qentry_free_list(v, n);
	return waiting;
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
queue_hold(struct queue *q, const char *id, int hold, struct err *e)
{
	struct qentry	qe;
	int		rv;

	if ((rv = queue_find(q, id, &qe, e)) != 0)
		return rv == 1 ? err_set(e, ERR_USAGE, "no queue entry %s", id) :
		    -1;
	if (qe.failed) {
		qentry_clear(&qe);
		return err_set(e, ERR_USAGE, "%s has failed already; nothing "
		    "to hold or release", id);
	}
	/* Under the entry's lock: not while a flush is sending it. */
	if (queue_lock(q, &qe) != 0) {
		qentry_clear(&qe);
		return err_set(e, ERR_TEMP, "%s is being sent right now; try "
		    "again in a moment", id);
	}
	qe.held = hold;
	rv = queue_update(q, &qe, e);
	qentry_clear(&qe);
	return rv;
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

/* Is the folder's message free (no writer or sender holds its lock)? */
static int
unlocked(int dfd)
{
	int	fd, free_ = 0;

	if ((fd = openat(dfd, "msg", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return errno == ENOENT;
	free_ = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return free_;
}

static int
older_than_an_hour(int pfd, const char *name)
{
	struct stat	st;

	return fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_mtime < time(NULL) - 3600;
}

/*
 * Remove what killed writers left under pfd: in tmp/ (all), folders over
 * an hour old that nobody holds; in the queue and failed/, folders whose
 * env is gone (a removal cut short) and env.tmp files over an hour old
 * (the env they were to replace stands).
 */
static void
sweep(int pfd, int all)
{
	struct dirent	*d;
	DIR		*dir;
	int		 fd, dfd;

	if ((fd = dup(pfd)) == -1)
		return;
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	rewinddir(dir);
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.' || strcmp(d->d_name, "tmp") == 0 ||
		    strcmp(d->d_name, "failed") == 0 ||
		    (dfd = entry_dir(pfd, d->d_name)) == -1)
			continue;
		if (all ? older_than_an_hour(pfd, d->d_name) && unlocked(dfd) :
		    faccessat(dfd, "env", F_OK, 0) == -1 && unlocked(dfd))
			remove_dir(pfd, d->d_name);
		else if (older_than_an_hour(dfd, "env.tmp"))
			unlinkat(dfd, "env.tmp", 0);
		close(dfd);
	}
	closedir(dir);
}

/*
 * Entries of outbox before 0.2 were two files, ID.msg and ID.env: each
 * becomes a folder through .mig-ID, in steps that a crash can resume.
 */
static void
migrate(int pfd)
{
	struct dirent	*d;
	DIR		*dir;
	char		 id[64], mig[80], from[96], to[96];
	size_t		 n;
	int		 fd;

	if ((fd = dup(pfd)) == -1 || (dir = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	rewinddir(dir);
	while ((d = readdir(dir)) != NULL) {
		n = strlen(d->d_name);
		if (n < 5 || n - 4 >= sizeof(id) || strcmp(d->d_name + n - 4,
		    ".env") != 0)
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)(n - 4), d->d_name);
		snprintf(mig, sizeof(mig), ".mig-%s", id);
		if (mkdirat(pfd, mig, 0700) == -1 && errno != EEXIST)
			continue;
		snprintf(from, sizeof(from), "%s.msg", id);
		snprintf(to, sizeof(to), "%s/msg", mig);
		if (renameat(pfd, from, pfd, to) == -1 && errno != ENOENT)
			continue;
		snprintf(to, sizeof(to), "%s/env", mig);
		if (renameat(pfd, d->d_name, pfd, to) == 0)
			renameat(pfd, mig, pfd, id);
	}
	/* Folders a crash left whole in .mig-ID. */
	rewinddir(dir);
	while ((d = readdir(dir)) != NULL) {
		if (strncmp(d->d_name, ".mig-", 5) != 0 ||
		    strlen(d->d_name) >= sizeof(mig))
			continue;
		snprintf(to, sizeof(to), "%.80s/env", d->d_name);
		if (faccessat(pfd, to, F_OK, 0) == 0)
			renameat(pfd, d->d_name, pfd, d->d_name + 5);
	}
	closedir(dir);
	fsync(pfd);
}

void
queue_clean_tmp(struct queue *q)
{
	int	tfd = entry_dir(q->dfd, "tmp");

	if (tfd != -1) {
		sweep(tfd, 1);
		close(tfd);
	}
	sweep(q->dfd, 0);
	sweep(q->ffd, 0);
}

void
qentry_clear(struct qentry *qe)
{
	free(qe->account);
	free(qe->msgid);
	free(qe->error);
	free(qe->reshaped);
	free(qe->label);
	env_free(&qe->env);
	if (qe->fd != -1)
		close(qe->fd);
	qe->account = qe->msgid = qe->error = qe->reshaped = qe->label = NULL;
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

