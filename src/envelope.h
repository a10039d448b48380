#ifndef OUTBOX_ENVELOPE_H
#define OUTBOX_ENVELOPE_H

#include <stddef.h>

#define RCPT_TEXT_MAX	512	/* the server's reply kept per recipient */

/*
 * What became of one recipient.  TODO: not tried yet; DEFERRED: refused
 * for now (or the transaction failed for now) and to be tried again;
 * SENT: the server took the message for it; FAILED: refused for good.
 */
enum rcpt_state { RCPT_TODO, RCPT_DEFERRED, RCPT_SENT, RCPT_FAILED };

struct rcpt {
	char		*addr;
	enum rcpt_state	 state;
	int		 code;		/* the last reply's code; 0: none */
	char		 text[RCPT_TEXT_MAX];	/* that reply, sanitised */
	int		 tried;		/* RCPT sent in this attempt */
	int		 replied;	/* LMTP: the data's reply is its own */
	int		 fresh;		/* given up by this attempt (not kept) */
};

/*
 * One message's envelope, owned by its queue entry (or by the send when
 * the queue is off).  Each recipient carries its own state, so a later
 * attempt tries only those still to do.
 */
struct envelope {
	char		*sender;	/* "" for the null sender */
	char		*envid;		/* DSN values; NULL: none */
	char		*notify;
	char		*ret;
	int		 all_or_nothing; /* a refused RCPT aborts the message */
	char		*body;		/* -B: "7BIT" or "8BITMIME"; NULL:
					   as the message's bytes say */
	int		 smtputf8;	/* -O smtputf8: ask for SMTPUTF8 */
	struct rcpt	*rcpt;
	size_t		 nrcpt;
};

/* Add a recipient (state TODO); duplicates are ignored. */
void	 env_add_rcpt(struct envelope *, const char *addr);
/* Is the recipient still to deliver (TODO or DEFERRED)? */
int	 rcpt_todo(const struct rcpt *);
/* How many recipients are in the state. */
size_t	 env_count(const struct envelope *, enum rcpt_state);
/* The recipients still to deliver. */
size_t	 env_todo(const struct envelope *);
/* Record a reply on a recipient: code and sanitised text. */
void	 rcpt_set_reply(struct rcpt *, int code, const char *text);
void	 env_free(struct envelope *);
/* The state's name in the queue's envelope file ("todo", "sent"...). */
const char *rcpt_state_name(enum rcpt_state);
/* The state named so; -1 if none is. */
int	 rcpt_state_parse(const char *);

#endif
