#ifndef OUTBOX_DSN_H
#define OUTBOX_DSN_H

#include "err.h"
#include "queue.h"

/*
 * Delivery status notifications (RFC 3464) that outbox writes to a
 * message's sender: a bounce when recipients were given up, and one
 * warning when a message has waited in the queue for queue_warn.
 */
enum dsn_kind {
	DSN_FAILED,	/* the recipients marked fresh were given up */
	DSN_DELAYED,	/* the recipients still to do are still being tried */
};

struct dsn_info {
	enum dsn_kind	 kind;
	const char	*reporter;	/* our host name */
	const char	*server;	/* the account's server */
	long long	 until;		/* DSN_DELAYED: retried until; 0: none */
	int		 full;		/* the whole message, not its header */
};

/*
 * Write the notice for entry qe, whose message is msgfd (read from its
 * start), to out in the queue's form (CRLF lines, not dot-stuffed).
 * *eightbit is set when the notice holds 8-bit bytes.  Errors: ERR_TEMP.
 */
int	 dsn_write(int out, const struct qentry *qe, int msgfd,
	    const struct dsn_info *, int *eightbit, struct err *);

/* The envelope's DSN Status for a recipient ("5.1.1", from its reply). */
void	 dsn_status(const struct rcpt *, enum dsn_kind, char *, size_t);

#endif
