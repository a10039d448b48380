#ifndef OUTBOX_FRONT_H
#define OUTBOX_FRONT_H

#include <stdio.h>

#include "opts.h"
#include "../src/config.h"
#include "../src/err.h"
#include "../src/smtp.h"

/* Everything the front end worked out for one run. */
struct run {
	const struct opts	*o;
	struct config		 cfg;
	struct account		*acct;
	char			 helo[256];
	char			 tls_cache[600];
	int			 oauth_cached;	/* the token came from the cache */
};

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
	int		 dry_run;	/* --dry-run */
	char		 queued_id[64];	/* out: the queue id when queued */
};

/* Print "outbox: account A: host:port: message" once, return the code. */
int	 fail(const struct run *, const struct err *, int with_server);
/*
 * Print one error line for account a (NULL: none) in the chosen form:
 * "outbox: account A: host:port: msg", or key=value with --errors=machine.
 */
void	 say_error(const struct run *, const struct account *,
	    const struct err *);

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

/* Send one message with the current account; returns the exit code. */
int	 send_message(struct run *, struct sendreq *, struct err *);
int	 mode_send(struct run *, struct err *);
int	 mode_smtp(struct run *, struct err *);
int	 mode_verify(struct run *, struct err *);
int	 mode_store_password(struct run *, struct err *);
int	 mode_forget_password(struct run *, struct err *);
int	 mode_authorize(struct run *, struct err *);
/* The keyring query for the current account (cmd/password.c). */
struct secret_query;
void	 front_secret_query(const struct account *, struct secret_query *);
/* Cache an access token for the account (cmd/password.c). */
void	 front_oauth_keep(const struct account *, const char *, long);
int	 mode_check_config(struct run *, struct err *);
int	 mode_pretend(struct run *, FILE *, struct err *);
int	 mode_mailq(struct run *, struct err *);
int	 mode_flush(struct run *, struct err *);
int	 mode_drop(struct run *, struct err *);

/* The queue (cmd/queue.c). */
struct queue;
struct qentry;
char	*queue_dir(void);
long long queue_now(void);
int	 open_queue(struct queue *, struct err *);
int	 flush_queue(struct run *, struct queue *, const char *only,
	    struct smtp_session *, int force);
int	 queue_due(struct queue *, const char *acct, const char *skip);
void	 keep_rcpts(struct qentry *, const struct smtp_result *,
	    int delivered);

/* The local host's name (FQDN when known). */
void	 local_hostname(char *, size_t);

#endif
