#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Values are quoted when they hold spaces, quotes or '='. */
static void
kv(struct buf *b, const char *k, const char *v)
{
	char	clean[600];

	if (v == NULL || *v == '\0')
		return;
	sanitize(clean, sizeof(clean), v, strlen(v));
	if (strpbrk(clean, " \"=\\") == NULL) {
		buf_addf(b, " %s=%s", k, clean);
		return;
	}
	buf_addf(b, " %s=\"", k);
	for (v = clean; *v; v++) {
		if (*v == '"' || *v == '\\')
			buf_addc(b, '\\');
		buf_addc(b, *v);
	}
	buf_addc(b, '"');
}

/* The server's own queue id, from "250 2.0.0 Ok: queued as 4Xyz". */
static void
server_id(struct buf *b, const char *reply)
{
	const char	*p;
	char		 id[64];
	size_t		 n;

	if (reply == NULL || (p = strstr(reply, "queued as ")) == NULL)
		return;
	p += 10;
	n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-._");
	if (n == 0 || n >= sizeof(id))
		return;
	memcpy(id, p, n);
	id[n] = '\0';
	kv(b, "serverid", id);
}

static void
format_line(struct buf *b, const struct logrec *r)
{
	char	clean[600];

	kv(b, "label", r->label);
	kv(b, "account", r->account);
	kv(b, "host", r->host);
	buf_addf(b, " port=%d", r->port);
	kv(b, "tls", r->tls);
	kv(b, "cipher", r->cipher);
	kv(b, "auth", r->mech);
	sanitize(clean, sizeof(clean), r->sender ? r->sender : "",
	    r->sender ? strlen(r->sender) : 0);
	buf_addf(b, " from=<%s>", clean);
	kv(b, "rcpts", r->rcpts);
	buf_addf(b, " size=%lld", r->size);
	kv(b, "msgid", r->msgid);
	kv(b, "reshaped", r->reshaped);
	kv(b, "reply", r->reply);
	server_id(b, r->reply);
	buf_addf(b, " duration=%lld.%03llds", r->ms / 1000, r->ms % 1000);
	buf_addf(b, " result=%s exitcode=%d", r->queued ? "queued" :
	    r->error ? "failed" : "sent", r->exitcode);
	kv(b, "queueid", r->queued);
	kv(b, "error", r->error);
}

static int
facility(const char *s)
{
	static const struct {
		const char	*name;
		int		 fac;
	} facs[] = {
		{ "LOG_USER", LOG_USER }, { "LOG_MAIL", LOG_MAIL },
		{ "LOG_LOCAL0", LOG_LOCAL0 }, { "LOG_LOCAL1", LOG_LOCAL1 },
		{ "LOG_LOCAL2", LOG_LOCAL2 }, { "LOG_LOCAL3", LOG_LOCAL3 },
		{ "LOG_LOCAL4", LOG_LOCAL4 }, { "LOG_LOCAL5", LOG_LOCAL5 },
		{ "LOG_LOCAL6", LOG_LOCAL6 }, { "LOG_LOCAL7", LOG_LOCAL7 },
	};
	size_t	i;

	for (i = 0; i < sizeof(facs) / sizeof(facs[0]); i++)
		if (strcmp(facs[i].name, s) == 0)
			return facs[i].fac;
	return LOG_MAIL;
}

static int
to_file(const char *path, const char *timefmt, const struct buf *line,
    struct err *e)
{
	struct buf	out = { 0 };
	char		ts[128];
	time_t		now = time(NULL);
	struct tm	tm;
	int		fd, rv = 0;

	localtime_r(&now, &tm);
	/* The format is the user's logfile_time_format. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	if (strftime(ts, sizeof(ts), timefmt && *timefmt ? timefmt :
	    "%b %d %H:%M:%S", &tm) == 0)
		ts[0] = '\0';
#pragma GCC diagnostic pop
	/* "none", as in msmtp 1.8.28: no time at all. */
	if (timefmt != NULL && strcmp(timefmt, "none") == 0)
		buf_addf(&out, "%s\n", line->p + 1);
	else
		buf_addf(&out, "%s%s\n", ts, line->p);
	if (strcmp(path, "-") == 0)
		fd = STDOUT_FILENO;
	else if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600)) == -1) {
		buf_free(&out);
		return err_sys(e, ERR_IO, "cannot open log file %s", path);
	}
	/* One write: O_APPEND keeps concurrent lines whole. */
	if (write_all(fd, out.p, out.len) == -1)
		rv = err_sys(e, ERR_IO, "cannot write log file %s", path);
	if (fd != STDOUT_FILENO)
		close(fd);
	buf_free(&out);
	return rv;
}

int
log_message(const char *logfile, const char *timefmt, const char *sys,
    const struct logrec *r, struct err *e)
{
	struct buf	line = { 0 };
	int		rv = 0;

	format_line(&line, r);
	if (logfile != NULL)
		rv = to_file(logfile, timefmt, &line, e);
	if (sys != NULL && strcmp(sys, "off") != 0) {
		/* -L names the program in syslog, as sendmail's -L does. */
		openlog(r->label ? r->label : "outbox", LOG_PID,
		    strcmp(sys, "on") == 0 ? LOG_MAIL : facility(sys));
		syslog(r->error ? LOG_ERR : LOG_INFO, "%s", line.p + 1);
		closelog();
	}
	buf_free(&line);
	return rv;
}
