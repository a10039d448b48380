#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "queue.h"
#include "util.h"

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
	snprintf(name, sizeof(name), "tmp/%s.msg", qe->id);
	qe->fd = openat(q->dfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (qe->fd == -1)
		return err_sys(e, ERR_TEMP, "cannot create a file in the queue "
		    "%s", q->dir);
	flock(qe->fd, LOCK_EX);
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

static void
env_format(const struct qentry *qe, struct buf *b)
{
	size_t	i;

	buf_adds(b, "version: 1\n");
	env_line(b, "account", qe->account);
	buf_addf(b, "sender: %s\n", qe->sender ? qe->sender : "");
	for (i = 0; i < qe->rcpts.n; i++)
		env_line(b, "rcpt", qe->rcpts.v[i]);
	env_line(b, "envid", qe->envid);
	env_line(b, "notify", qe->notify);
	env_line(b, "ret", qe->ret);
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
	if (rv == 0 && renameat(dfd, tmp, dfd, name) == -1)
		rv = err_sys(e, ERR_TEMP, "cannot write to the queue %s",
		    q->dir);
	if (rv == 0 && fsync(dfd) == -1)
		rv = err_sys(e, ERR_TEMP, "cannot sync the queue %s", q->dir);
	if (rv == -1)
		unlinkat(dfd, tmp, 0);
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
	qe->failed = 1;
	if (write_env(q, q->ffd, qe, e) == -1)
		return -1;
	snprintf(name, sizeof(name), "%s.env", qe->id);
	unlinkat(q->dfd, name, 0);
	fsync(q->dfd);
	return 0;
}

static void
env_set(struct qentry *qe, const char *k, const char *v)
{
	char	**field = NULL;

	if (strcmp(k, "rcpt") == 0) {
		addrlist_add(&qe->rcpts, v);
		return;
	}
	if (strcmp(k, "account") == 0)
		field = &qe->account;
	else if (strcmp(k, "sender") == 0)
		field = &qe->sender;
	else if (strcmp(k, "envid") == 0)
		field = &qe->envid;
	else if (strcmp(k, "notify") == 0)
		field = &qe->notify;
	else if (strcmp(k, "ret") == 0)
		field = &qe->ret;
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
	return qe->account != NULL && qe->sender != NULL && qe->rcpts.n > 0 ?
	    0 : -1;
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
			fprintf(stderr, "outbox: queue entry %s: cannot read "
			    "its envelope; left alone\n", id);
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
	char		name[96];
	struct stat	st;

	snprintf(name, sizeof(name), "%s.msg", qe->id);
	qe->fd = openat(q->dfd, name, O_RDONLY | O_CLOEXEC);
	if (qe->fd == -1)
		return 1;
	if (flock(qe->fd, LOCK_EX | LOCK_NB) == -1) {
		close(qe->fd);
		qe->fd = -1;
		return 1;
	}
	/* Sent and removed while we waited for the lock? */
	snprintf(name, sizeof(name), "%s.env", qe->id);
	if (fstatat(q->dfd, name, &st, 0) == -1) {
		close(qe->fd);
		qe->fd = -1;
		return 1;
	}
	return 0;
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
}

void
qentry_clear(struct qentry *qe)
{
	free(qe->account);
	free(qe->sender);
	free(qe->envid);
	free(qe->notify);
	free(qe->ret);
	free(qe->msgid);
	free(qe->error);
	addrlist_free(&qe->rcpts);
	if (qe->fd != -1)
		close(qe->fd);
	qe->account = qe->sender = qe->envid = qe->notify = qe->ret = NULL;
	qe->msgid = qe->error = NULL;
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
