#ifndef OUTBOX_LOG_H
#define OUTBOX_LOG_H

#include <stddef.h>

#include "err.h"

/*
 * The per-message log line, for the logfile and syslog commands: one line
 * of key=value pairs, written with a single append so that concurrent
 * outbox processes never interleave.  It never holds a secret.
 */
struct logrec {
	const char	*label;		/* -L, or NULL */
	const char	*account;
	const char	*host;
	int		 port;
	const char	*tls;		/* version, or "off" */
	const char	*cipher;	/* the TLS session, or NULL */
	const char	*mech;		/* SASL mechanism, or "" */
	const char	*sender;
	const char	*rcpts;		/* "a@x=250,b@y=550" */
	long long	 size;
	const char	*msgid;
	const char	*reshaped;	/* what was done to long lines */
	const char	*reply;		/* the server's reply to the data */
	const char	*queued;	/* outbox's queue id, when queued */
	long long	 ms;
	int		 exitcode;
	const char	*error;		/* NULL on success */
};

/*
 * Append the line to logfile (NULL: none; "-": stdout) and send it to
 * syslog (NULL or "off": no; "on" or LOG_MAIL...).  Errors: ERR_IO when
 * the file cannot be written (the caller says so; the outcome stands).
 */
int	 log_message(const char *logfile, const char *timefmt,
	    const char *syslog, const struct logrec *, struct err *);

#endif
