#ifndef OUTBOX_QUEUE_H
#define OUTBOX_QUEUE_H

#include "envelope.h"
#include "err.h"

/*
 * The per-user queue: one entry per message, a folder ID holding msg
 * (the message, in the form it is sent) and env (its envelope and
 * state).  An entry is made whole in tmp/ID and appears with one rename;
 * env is replaced atomically (env.tmp, then a rename); failed/ takes a
 * whole entry with one rename.  So no crash leaves half an entry.  An
 * entry being sent is locked with flock() on ID/msg, which a crash
 * releases.  Permanently failed or expired entries move to failed/.
 */
struct qentry {
	char		 id[64];
	char		*account;
	struct envelope	 env;		/* every recipient, with its state */
	char		*msgid;
	long long	 queued;	/* seconds since the epoch */
	long long	 next;		/* next automatic attempt */
	int		 attempts;
	int		 eightbit;
	char		*reshaped;	/* msg_reshaped(), or NULL */
	char		*label;		/* -L, for the log line; or NULL */
	long long	 size;
	char		*error;		/* the last error, or NULL */
	int		 failed;	/* in failed/ */
	int		 held;		/* -qH: no attempts until -qU */
	int		 warned;	/* the sender was told of the delay */
	int		 fd;		/* ID.msg, locked; -1 when not held */
};

struct queue {
	char	*dir;
	int	 dfd;
	int	 ffd;			/* failed/ */
	char	 unreadable[64];	/* the last entry queue_list could not
					   read, or "" */
};

/* $XDG_STATE_HOME/outbox/queue, or ~/.local/state/outbox/queue. */
char	*queue_dir(void);
/* The clock, in seconds; OUTBOX_NOW stands in for it in tests. */
long long queue_now(void);

/*
 * Open (and create, mode 0700) the queue folder.  A folder that others
 * may read or write is refused.  Errors: ERR_TEMP, ERR_CONFIG.
 */
int	 queue_open(struct queue *, const char *dir, struct err *);
void	 queue_close(struct queue *);
/* Start an entry: a locked, empty message file; e->fd and e->id set. */
int	 queue_spool(struct queue *, struct qentry *, struct err *);
/* Make the entry durable: message, envelope and folder on disk. */
int	 queue_commit(struct queue *, struct qentry *, struct err *);
/* Throw away an entry that was never committed (bad input). */
void	 queue_discard(struct queue *, struct qentry *);
/* Replace the envelope atomically (attempts, next, error, rcpts). */
int	 queue_update(struct queue *, struct qentry *, struct err *);
/* Remove a delivered entry. */
int	 queue_remove(struct queue *, struct qentry *, struct err *);
/* Move an entry to failed/ (permanent refusal or expiry). */
int	 queue_fail(struct queue *, struct qentry *, struct err *);
/*
 * The entries, oldest first: the queue's, or those of failed/.  Entries
 * whose envelope cannot be read are left alone, the last one named in
 * q->unreadable for the caller to report.
 */
int	 queue_list(struct queue *, int failed, struct qentry **, size_t *,
	    struct err *);
/*
 * Lock an entry for sending and read its envelope again under the lock,
 * so that what another outbox did meanwhile counts: 0 locked (e->fd
 * open), 1 busy or gone.
 */
int	 queue_lock(struct queue *, struct qentry *);
/* Are there entries of the account, other than skip, due at now? */
int	 queue_due(struct queue *, const char *acct, const char *skip,
	    long long now);
/* Has the entry waited for warn seconds (queue_warn; <= 0: never)? */
int	 qentry_delayed(const struct qentry *, long long warn, long long now);
/*
 * How many entries wait for an attempt (not held); *earliest is when the
 * first of them is due.
 */
size_t	 queue_waiting(struct queue *, long long *earliest);
/* Find an entry by id, in the queue or failed/; 1 if there is none. */
int	 queue_find(struct queue *, const char *id, struct qentry *,
	    struct err *);
/* Hold an entry (no attempts) or release it; ERR_USAGE if there is none. */
int	 queue_hold(struct queue *, const char *id, int hold, struct err *);
/* Remove by hand (--drop), from the queue or failed/. */
int	 queue_drop(struct queue *, const char *id, struct err *);
/*
 * Remove what writers killed mid-way left: folders in tmp/ over an hour
 * old (never committed: their writer was killed before telling its
 * caller), env.tmp files over an hour old, and folders whose env a
 * removal had already taken.  Nothing that is locked.
 */
void	 queue_clean_tmp(struct queue *);
void	 qentry_clear(struct qentry *);
void	 qentry_free_list(struct qentry *, size_t);
/* Seconds to wait after the n-th failed attempt: 5 min doubling to 4 h. */

#endif
