#ifndef OUTBOX_DELIVER_H
#define OUTBOX_DELIVER_H

#include "err.h"
#include "queue.h"
#include "smtp.h"

/*
 * The one delivery path: a first attempt and every later one (outbox -q,
 * the flush after a send) go through deliver_entry.  Given a way to open
 * a session and queue entries, it tries each entry's recipients still to
 * do, records each recipient's reply on the recipient, decides the
 * entry's fate once, settles the entry in the queue and writes the log
 * line.  It prints nothing and exits nothing; the caller is told through
 * the outcome and deliver_verdict().
 */
enum fate {
	FATE_DELIVERED,		/* no recipient left to try, none failed */
	FATE_DEFERRED,		/* some recipients to try again later */
	FATE_FAILED,		/* given up: refused for good, or expired */
};

struct outcome {
	enum fate	 fate;
	struct err	 err;		/* the attempt's error; ERR_NONE: none */
	int		 rcpts_refused;	/* err is only the recipients' refusals */
	int		 kept;		/* the entry is in the queue or failed/ */
	int		 untried;	/* no attempt: expired, or no account */
	int		 gave_up;	/* recipients given up in this attempt */
	struct err	 log_err;	/* the log line could not be written */
	int		 notice;	/* notice_id is a DSN_FAILED or _DELAYED */
	char		 notice_id[64];	/* the notice queued to the sender, or "" */
	struct err	 notice_err;	/* it could not be queued */
};

struct deliver_params {
	const char	*account;
	const char	*host;
	int		 port;
	/*
	 * The caller waits for this attempt (a first send): what cannot
	 * succeed later is the caller's to handle, so it is told and the
	 * entry removed.  Otherwise (outbox -q, queue always) it goes to
	 * failed/, and the session's own trouble only defers.
	 */
	int		 caller_waits;
	long long	 lifetime;	/* seconds in the queue; 0: forever */
	long long	 retry, retry_max;	/* backoff, in seconds */
	long long	 warn;		/* tell the sender after; <= 0: never */
	int		 bounces;	/* tell the sender what is given up */
	const char	*reporter;	/* our name in notices */
	long long	 start_ms;	/* for the log's duration; 0: now */
	const char	*logfile;	/* the log line: NULL for none */
	const char	*logtime;
	const char	*syslog;	/* NULL: none; "on" or a facility */
	/* Open an authenticated session; NULL with e set when it fails. */
	struct smtp_session *(*open)(void *arg, struct smtp_result *,
		    struct err *);
	void		*open_arg;
	/* Told of each entry's outcome once it is settled; may be NULL. */
	void		(*report)(void *arg, const struct qentry *,
		    const struct outcome *);
	void		*report_arg;
};

/* One account's deliveries over at most one session at a time. */
struct delivery {
	const struct deliver_params *p;
	struct queue		*q;		/* NULL: the queue is off */
	struct smtp_session	*s;
	struct smtp_result	 res;
	struct err		 open_err;	/* the session could not be had */
	int			 delivered, deferred, failed;
	int			 notices;	/* queued to senders */
};

/* Which entries deliver_queue takes. */
struct deliver_filter {
	const char	*account;	/* this account's entries only */
	const char	*id;		/* NULL, or only this entry */
	const char	*skip;		/* NULL, or not this entry */
	int		 force;		/* every one, not only those due */
	int		 notices_only;	/* only new notices to senders */
};

/* Begin with no session (s NULL) or with an open one to go on with. */
void	 deliver_begin(struct delivery *, const struct deliver_params *,
	    struct queue *, struct smtp_session *);
/*
 * Try one entry: in the queue, locked by the caller, with its envelope
 * current; or with no queue, an entry in memory.  qe->fd is the message
 * as it is sent.  last: nothing follows on this session.
 */
void	 deliver_entry(struct delivery *, struct qentry *, int last,
	    struct outcome *);
/*
 * The wanted entries of the account, oldest first, on one session: each
 * locked and read again first, expired ones given up.
 */
void	 deliver_queue(struct delivery *, const struct deliver_filter *);
/*
 * The wanted entries of an account that cannot be used now (why): they
 * are deferred, and given up after 5 days.
 */
void	 deliver_orphans(struct delivery *, const struct deliver_filter *,
	    const struct err *why);
/* QUIT and close the session, if any. */
void	 deliver_end(struct delivery *);
/*
 * What the caller is told, as an error (ERR_NONE: success): for one
 * send (qe, o), or for the whole of a delivery (qe NULL: a flush).  An
 * empty message means each part was said already (a refused recipient,
 * a message given up).
 */
void	 deliver_verdict(const struct delivery *, const struct qentry *,
	    const struct outcome *, struct err *);
/*
 * Was the recipient refused in this attempt?  Then e says so, in the
 * words the caller sees ("RCPT TO:<a>: 550 ...").
 */
int	 deliver_refused(const struct rcpt *, struct err *);

#endif
