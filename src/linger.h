#ifndef OUTBOX_LINGER_H
#define OUTBOX_LINGER_H

#include <stddef.h>

#include "envelope.h"
#include "err.h"
#include "message.h"
#include "smtp.h"

/*
 * Shared sessions.  After a message is accepted, the outbox that sent it
 * may hand its authenticated session to a holder: a process of the user's
 * that keeps it open for a while and listens on a Unix socket in
 * $XDG_RUNTIME_DIR/outbox (mode 0700), one per account and server, user
 * and TLS policy (the key).  A later outbox for the same key passes its
 * envelope and its spooled message (the descriptor itself, SCM_RIGHTS)
 * to the holder, one invocation at a time, and gets that message's own
 * outcome back: each recipient's reply, the reply to the data, the TLS
 * and SASL details for the log.
 *
 * The dialogue, one line each way:
 *	client: the request (envelope, size, 8bit), then "end"
 *	holder: "ready"			client: "go"
 *	holder: "data" just before the message data begins to go out
 *	holder: the result, then "end"
 * A client that sees the holder go before "data" knows that nothing of
 * the message went out, and sends it on a connection of its own; after
 * "data" it knows only that the message may have gone (the same window as
 * a connection lost after the final dot).
 */

/*
 * The socket's path for a key: $XDG_RUNTIME_DIR/outbox/s-HASH, the folder
 * made (0700) and checked to be the user's and private.  -1 when there
 * is no such folder to use (then there are no shared sessions).
 */
int	 linger_path(const char *key, char *path, size_t len);
/* Connect to a live holder at path: the descriptor, or -1 if none. */
int	 linger_connect(const char *path);

/*
 * Send one message through the holder on fd.  Returns 0 when the server
 * accepted it, -1 when it did not (or may not have: e and res say), and
 * 1 when nothing of it went out and the holder cannot carry it (gone,
 * busy, its session refused or lost): send it on a session of your own.
 */
int	 linger_send(int fd, struct envelope *, struct msg *, int timeout_ms,
	    struct smtp_result *, struct err *);

/*
 * Hand session s to a new holder that listens at path and closes the
 * session idle_ms after the last message.  scrub(arg) runs in the holder
 * first, to wipe what it inherited and must not keep (the password).
 * Returns 1 when a holder took the session (then smtp_abandon it: the
 * holder carries it on), 0 when none did (another holds the key, or it
 * could not start): close it as usual.
 */
int	 linger_hand_off(struct smtp_session *s, const struct smtp_result *,
	    const char *path, int idle_ms, void (*scrub)(void *), void *arg);

/*
 * Parse one line of a client's request into env and m (exposed for the
 * fuzz target): 1 at "end", 0 for a line taken, -1 for a bad one.
 */
int	 linger_request_line(const char *line, struct envelope *,
	    struct msg *);

/*
 * Parse one result line of the holder into res, e or env (exposed for
 * the fuzz target): 1 at "end", 0 for a line taken, -1 for a bad one.
 */
int	 linger_result_line(const char *line, struct envelope *,
	    struct smtp_result *, struct err *, int *rv);

#endif
