#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tokcache.h"
#include "util.h"

#define CACHE_MAX	16384
#define NAME		"OAuth token cache"

/* Owned by us and open to nobody else; else why is filled in. */
static int
trusted(const struct stat *st, const char *name, const char *what,
    const char *path, mode_t forbidden, struct err *why)
{
	if (st->st_uid != geteuid())
		return err_set(why, ERR_CONFIG, "the %s %s %s belongs to uid "
		    "%u, not to you; ignoring it", name, what, path,
		    (unsigned)st->st_uid);
	if (st->st_mode & forbidden)
		return err_set(why, ERR_CONFIG, "the %s %s %s is open to other "
		    "users (mode %03o); ignoring it", name, what, path,
		    (unsigned)(st->st_mode & 0777));
	return 0;
}

static int
dir_trusted(const char *path, const char *name, struct err *why)
{
	struct stat	 st;
	char		*copy = xstrdup(path), *dir = dirname(copy);
	int		 rv = 0;

	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode))
		rv = err_set(why, ERR_CONFIG, "the %s folder %s is not a "
		    "folder; ignoring it", name, dir);
	else
		rv = trusted(&st, name, "folder", dir, S_IWGRP | S_IWOTH, why);
	free(copy);
	return rv;
}

int
cache_trusted(const char *path, const char *name, struct err *why)
{
	struct stat	st;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? dir_trusted(path, name, why) : 0;
	if (S_ISLNK(st.st_mode))
		return err_set(why, ERR_CONFIG, "the %s %s is a symbolic link; "
		    "ignoring it", name, path);
	if (!S_ISREG(st.st_mode))
		return err_set(why, ERR_CONFIG, "the %s %s is not a plain "
		    "file; ignoring it", name, path);
	if (trusted(&st, name, "file", path, S_IRWXG | S_IRWXO, why) == -1)
		return -1;
	return dir_trusted(path, name, why);
}

int
tokcache_get(const char *path, char **token, struct err *why)
{
	struct stat	 st;
	char		 buf[CACHE_MAX], *sp;
	long long	 expiry;
	ssize_t		 n;
	int		 fd;

	*token = NULL;
	why->cls = ERR_NONE;
	why->msg[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ELOOP)
			err_set(why, ERR_CONFIG, "the OAuth token cache %s is "
			    "a symbolic link; ignoring it", path);
		return 0;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    trusted(&st, NAME, "file", path, S_IRWXG | S_IRWXO, why) == -1 ||
	    dir_trusted(path, NAME, why) == -1) {
		if (why->cls == ERR_NONE)
			err_set(why, ERR_CONFIG, "the OAuth token cache %s is "
			    "not a plain file; ignoring it", path);
		close(fd);
		return 0;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	expiry = strtoll(buf, &sp, 10);
	if (*sp == ' ' && expiry >= (long long)time(NULL) + 60) {
		sp[1 + strcspn(sp + 1, "\n")] = '\0';
		if (sp[1] != '\0' && !has_ctl(sp + 1))
			*token = xstrdup(sp + 1);
	}
	explicit_bzero(buf, sizeof(buf));
	return *token != NULL;
}

int
tokcache_put(const char *path, const char *token, long expires_in,
    struct err *e)
{
	char	*tmp, *line;
	int	 fd, rv = -1;

	tmp = xasprintf("%s.%d.tmp", path, (int)getpid());
	line = xasprintf("%lld %s\n", (long long)time(NULL) +
	    (expires_in > 0 ? expires_in : 3600), token);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd != -1 && write_all(fd, line, strlen(line)) == 0 &&
	    close(fd) == 0) {
		fd = -1;
		if (rename(tmp, path) == 0)
			rv = 0;
	}
	if (rv == -1) {
		err_sys(e, ERR_IO, "cannot write the OAuth token cache %s",
		    path);
		if (fd != -1)
			close(fd);
		unlink(tmp);
	}
	secret_free(line);
	free(tmp);
	return rv;
}

void
tokcache_forget(const char *path)
{
	unlink(path);
}

int
tokcache_lock(const char *path, int timeout_ms, struct err *e)
{
	char		*lk = xasprintf("%s.lock", path);
	long long	 until = now_ms() + (timeout_ms > 0 ? timeout_ms : 60000);
	int		 fd;

	fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		err_sys(e, ERR_IO, "cannot open the OAuth lock %s", lk);
		free(lk);
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if ((errno != EWOULDBLOCK && errno != EINTR) ||
		    now_ms() >= until) {
			err_set(e, ERR_TEMP, "another outbox process has held "
			    "the OAuth refresh lock %s for too long", lk);
			close(fd);
			free(lk);
			return -1;
		}
		usleep(20 * 1000);
	}
	free(lk);
	return fd;
}

void
tokcache_unlock(int fd)
{
	if (fd != -1)
		close(fd);
}
