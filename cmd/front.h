#ifndef OUTBOX_FRONT_H
#define OUTBOX_FRONT_H

#include <stdio.h>

#include "opts.h"
#include "../src/config.h"
#include "../src/deliver.h"
#include "../src/err.h"
#include "../src/sasl.h"
#include "../src/smtp.h"

/* Everything the front end worked out for one run. */
struct run {
	const struct opts	*o;
	struct config		 cfg;
	struct account		*acct;
	char			 helo[256];
	char			 tls_cache[600];
	int			 tls_cache_bad;	/* not to be used */
	int			 oauth_cached;	/* the token came from the cache */
	int			 pw_keyring;	/* the password came from the keyring */
	const struct account	*blame;	/* the error concerns its server */
	int			 queue_touched;	/* this run queued or flushed mail */
	const char		*from_hint; /* the message's From, to choose
					       the account by (no -a, -f) */
};

/*
 * Every mode returns 0, or -1 with the error set; main prints it once
 * (nothing when its message is empty: each part was said already) and
 * maps its class to the exit status.
 */

/* One message to send: where it comes from and its envelope as given. */
struct sendreq {
	int		 in;		/* the message */
	const char	*from;		/* -f or MAIL FROM; NULL: the account's */
	char *const	*rcpts;		/* address lists */
	int		 nrcpts;
	int		 read_rcpts;	/* -t */
	int		 dot_ends;	/* a lone "." ends the input */
	int		 read_env_from;	/* --read-envelope-from */
	const char	*fullname;	/* -F */
	const char	*envid;		/* -V */
	const char	*body;		/* -B */
	int		 smtputf8;	/* -O smtputf8 */
	const char	*label;		/* -L */
	int		 dry_run;	/* --dry-run */
	char		 queued_id[64];	/* out: the queue id when queued */
	char		 refusal[ERR_MSGLEN]; /* out: the worst recipient refusal */
};

/* The error concerns the current account's server: main names it. */
int	 server_error(struct run *);
/*
 * Print one error line for account a (NULL: none) in the chosen form:
 * "outbox: account A: host:port: msg", or key=value with --errors=machine.
 */
void	 say_error(const struct run *, const struct account *,
	    const struct err *);
/* A notice on stderr ("outbox: ..." or notice="..." with --errors=machine). */
void	 say_notice(const struct run *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* Load the config and pick the account, applying command-line values. */
int	 front_account(struct run *, struct err *);
/* Fill the SMTP parameters that come from the account (not the message). */
void	 front_smtp_params(struct run *, struct smtp_params *);

/* Apply the command line's config values to the current account. */
int	 front_overrides(struct run *, struct err *);
/* Resolve the current account's defaults and the EHLO name. */
int	 front_ready(struct run *, struct err *);
/* Make a new account current; the config owns it from now on. */
void	 front_adopt(struct run *, struct account *);
/* Connect to the current account's server and describe it on out. */
int	 front_serverinfo(struct run *, FILE *, struct err *);
int	 mode_configure(struct run *, struct err *);
/*
 * The current account's password (NULL when its mechanism needs none),
 * or for OAuth 2.0 with a token endpoint, an access token: the cached
 * one unless fresh.
 */
int	 front_password(struct run *, char **, struct err *);
/*
 * After AUTH was refused: when the password was a cached access token,
 * get a fresh one into *pw (the old one is freed) and return 1: retry.
 */
int	 front_auth_retry(struct run *, char **pw, const struct err *);
/*
 * $XDG_CACHE_HOME/outbox/WHAT-account, with -host-port when per_server
 * (the folder is made, 0700).
 */
int	 front_cache_file(const char *what, const struct account *,
	    int per_server, char *, size_t);

/* Make the named account current (no command-line values applied). */
int	 front_use_account(struct run *, const char *, struct err *);

/* Send one message with the current account. */
int	 send_message(struct run *, struct sendreq *, struct err *);

/* A session to the current account's server, opened when deliver asks. */
struct front_session {
	struct run		*r;
	struct smtp_params	 p;
	char			*pw;
	struct sasl_keep	 keep;
	int			 key_refused;	/* a kept SCRAM key was refused */
	/* A shared session (cmd/linger.c): the holder, or our own fallback. */
	char			 lpath[128];	/* the holder's socket */
	int			 lpath_known;	/* 1: lpath is it; -1: none; 0: ? */
	int			 holder_fd;	/* when holder_open */
	int			 holder_open;
	int			 shared;	/* messages sent through it */
	struct smtp_session	*own;		/* ours, after a fallback */
};
/*
 * The shared session for fs's account when a holder keeps one (see
 * src/linger.h): a session whose messages go through it, falling back to
 * a session of our own; NULL when there is none.
 */
struct smtp_session *front_linger_open(struct front_session *);
/*
 * After the last message of a run: hand session s, if it is ours and can
 * carry more, to a new holder for the account's linger time.  1 when
 * handed off (s is gone), else 0 (close it as usual).
 */
int	 front_linger_keep(struct front_session *, struct smtp_session *,
	    const struct smtp_result *);
/* Are shared sessions on for the current account (linger > 0)? */
int	 front_linger_wanted(struct front_session *);
/* The session of our own that fs opens (password, connect, AUTH). */
struct smtp_session *front_open_own(struct front_session *,
	    struct smtp_result *, struct err *);
/*
 * SCRAM's salted password kept beside a keyring password, for fs's
 * sessions; NULL when the password comes from elsewhere (nothing kept).
 */
const struct sasl_keep *front_scram_keep(struct front_session *);
/*
 * After AUTH was refused with a kept SCRAM key: drop the account's kept
 * keys and return 1, to retry once with the password.
 */
int	 front_scram_retry(struct front_session *, const struct smtp_result *,
	    const struct err *why);
/* deliver's opener: password (or token), connect, AUTH, one retry. */
struct smtp_session *front_open(void *front_session, struct smtp_result *,
	    struct err *);
void	 front_session_end(struct front_session *);
/* The current account's delivery parameters, opening sessions with fs. */
void	 front_deliver_params(struct run *, struct front_session *,
	    struct deliver_params *);
/*
 * A desktop notice that the entry's message was "queued", is "delayed" or
 * was "not delivered", naming a recipient and its Subject, nothing more.
 */
void	 front_desktop(const struct run *, const struct qentry *,
	    const char *what, const char *why);
/* What a flush says of each entry (report of deliver_params; arg: run). */
void	 flush_report(void *run, const struct qentry *, const struct outcome *);
int	 mode_send(struct run *, struct err *);
/*
 * After a run that queued mail or flushed it: wake the live retrier to look
 * at the queue again, or start one if mail waits (not with
 * OUTBOX_NO_RETRIER set, nor for --dry-run).
 */
void	 retrier_ensure(const struct run *);
/* May this run leave work behind it (OUTBOX_NO_RETRIER, --dry-run)? */
int	 front_background_ok(const struct run *);
int	 mode_smtp(struct run *, struct err *);
int	 mode_verify(struct run *, struct err *);
int	 mode_store_password(struct run *, struct err *);
int	 mode_forget_password(struct run *, struct err *);
int	 mode_authorize(struct run *, struct err *);
/* The keyring query for the current account (cmd/password.c). */
struct secret_query;
void	 front_secret_query(const struct account *, struct secret_query *);
/* Cache an access token for the account (cmd/password.c). */
void	 front_oauth_keep(const struct run *, const char *, long);
struct oauth_client;
void	 front_oauth_client(const struct account *, struct oauth_client *);
int	 mode_check_config(struct run *, struct err *);
int	 mode_pretend(struct run *, FILE *, struct err *);
int	 mode_mailq(struct run *, struct err *);
int	 mode_flush(struct run *, struct err *);
int	 mode_drop(struct run *, struct err *);
int	 mode_hold(struct run *, struct err *);

/* The queue (cmd/queue.c). */
int	 open_queue(struct queue *, struct err *);

/* The local host's name (FQDN when known). */
void	 local_hostname(char *, size_t);

#endif
