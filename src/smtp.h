#ifndef OUTBOX_SMTP_H
#define OUTBOX_SMTP_H

#include <stdio.h>

#include "addr.h"
#include "conn.h"
#include "envelope.h"
#include "err.h"
#include "message.h"

struct sasl_keep;

/*
 * The SMTP client engine.  It takes everything it needs in smtp_params,
 * talks to the server through the connection layer, and reports what
 * happened in smtp_result.  It never prints except the -v trace, never
 * exits, and never reads the environment.
 */
#define REPLY_LINE_MAX	2048	/* one reply line, without CRLF */
#define REPLY_LINES_MAX	100	/* lines in one multi-line reply */
#define REPLY_TEXT_MAX	512	/* text kept for messages */

struct smtp_params {
	const char		*host;
	int			 port;
	const char		*source_ip;
	const char		*socket_path;	/* Unix socket, or NULL */
	const char		*proxy_host;	/* SOCKS5 proxy, or NULL */
	int			 proxy_port;
	int			 timeout_ms;
	int			 session_ms;	/* the whole session; 0: none */
	int			 data_timeout_ms; /* the reply to the data */
	int			 lmtp;		/* LMTP (RFC 2033), not SMTP */
	int			 tls;		/* TLS at all */
	int			 starttls;	/* 1: STARTTLS, 0: implicit TLS */
	struct tls_params	 tlsp;
	const char		*helo;		/* EHLO argument */
	const char		*auth;		/* "off", "on" or a mechanism */
	const char		*user;
	const char		*password;
	/* SCRAM's salted password kept across sessions; NULL: none */
	const struct sasl_keep	*keep;
	int			 verbose;	/* trace the dialogue on stderr */
};

/*
 * Where a failed attempt stopped: before the transaction (the session's
 * trouble, not the message's), in the envelope, with the data, or after
 * the whole message went out and no reply came (it may have been taken).
 */
enum smtp_stage { STAGE_SESSION, STAGE_ENVELOPE, STAGE_DATA, STAGE_DOT };

struct smtp_result {
	int			 delivered;	/* the server took the message */
	char			 final[REPLY_TEXT_MAX];	/* reply to the data */
	char			 mech[32];	/* SASL mechanism used */
	int			 key_used;	/* SCRAM used a kept key */
	struct tls_info		 tls;
	int			 waits;		/* round trips waited */
	enum smtp_stage		 stage;		/* where a failure happened */
	int			 code;		/* the refusal's reply code */
	int			 rcpts_refused;	/* the error is only that */
};

/* A parsed reply. */
struct reply {
	int	code;
	int	nlines;
	char	text[REPLY_TEXT_MAX];	/* all lines' text, sanitised */
	char	arg[REPLY_LINE_MAX];	/* the last line's text, as sent */
};

/*
 * Parse one reply line: "250-text", "250 text" or "250".  Sets *code and
 * *last (1 for the final line) and *text.  Errors: ERR_PROTO.
 */
int	 reply_parse_line(const char *line, size_t len, int *code, int *last,
	    const char **text, struct err *);

/*
 * The error class of a refusal: 4xx is ERR_TEMP; a 5xx whose enhanced code
 * says the address is bad (5.1.x) is ERR_ADDR; any other 5xx is perm.
 */
enum err_class smtp_reply_class(int code, const char *text,
	    enum err_class perm);

/* EHLO capabilities. */
enum {
	CAP_STARTTLS	= 1 << 0,
	CAP_PIPELINING	= 1 << 1,
	CAP_CHUNKING	= 1 << 2,
	CAP_8BITMIME	= 1 << 3,
	CAP_SMTPUTF8	= 1 << 4,
	CAP_DSN		= 1 << 5,
	CAP_SIZE	= 1 << 6,
	CAP_AUTH	= 1 << 7,
	CAP_ENHANCED	= 1 << 8,
};

struct caps {
	unsigned int	 flags;
	unsigned long	 size;		/* SIZE limit; 0: none given */
	char		 auth[256];	/* mechanisms, space separated */
};

/* Fold one EHLO reply line's text (after "250-") into caps. */
void	 caps_parse_line(struct caps *, const char *text);

/*
 * Open a session: connect, greet, secure and authenticate.  The TLS
 * details and mechanism go to res.  Errors: ERR_TEMP for 4xx and network
 * trouble, ERR_PERM for 5xx, ERR_AUTH, ERR_PROTO, ERR_HOST, ERR_CONFIG as
 * the layers below report them; the message names the command and quotes
 * the server's reply.
 */
struct smtp_session;
struct smtp_session *smtp_open(const struct smtp_params *, struct smtp_result *,
	    struct err *);
/*
 * Send one message on the session to the envelope's recipients still to
 * do; each one tried gets its reply (tried, code, text).  Returns 0 when
 * the server accepted the message, -1 otherwise with e set, and
 * res->stage saying where (res->rcpts_refused when recipients were the
 * only trouble).  last: no transaction follows, so QUIT may go with the
 * data.  After a failure the session cannot carry another message.
 */
int	 smtp_transaction(struct smtp_session *, struct envelope *,
	    struct msg *, int last, struct smtp_result *, struct err *);
/*
 * The MAIL and RCPT commands as they go to a server with caps: what the
 * real send and --dry-run both print.  Errors: ERR_PERM when the server
 * cannot take the message (SIZE, SMTPUTF8).
 */
int	 smtp_mail_cmd(const struct caps *, const struct envelope *,
	    const struct msg *, char *, size_t, struct err *);
void	 smtp_rcpt_cmd(const struct caps *, const struct envelope *,
	    const struct rcpt *, char *, size_t);
/*
 * A session carried by another process (the holder of a shared session,
 * see linger.h): smtp_transaction, smtp_reusable and smtp_close go to
 * these functions, with arg.
 */
struct smtp_remote {
	int	(*transaction)(void *arg, struct envelope *, struct msg *,
		    int last, struct smtp_result *, struct err *);
	int	(*reusable)(void *arg);
	void	(*close)(void *arg, struct smtp_result *);
	void	*arg;
};
struct smtp_session *smtp_remote_session(const struct smtp_remote *);
int	 smtp_is_remote(const struct smtp_session *);
/* Call hook(arg) just before the message data begins to go out. */
void	 smtp_set_data_hook(struct smtp_session *, void (*hook)(void *),
	    void *arg);
/* The session's socket; -1 for a remote one. */
int	 smtp_fd(const struct smtp_session *);
/* Free without a word to the server: a forked copy carries it on. */
void	 smtp_abandon(struct smtp_session *);
/* Can the session carry another message? */
int	 smtp_reusable(const struct smtp_session *);
/* QUIT (unless sent already) and close; NULL is fine. */
void	 smtp_close(struct smtp_session *, struct smtp_result *);

/* Connect, greet, secure, and describe the server on out. */
int	 smtp_serverinfo(const struct smtp_params *, FILE *out, struct err *);

#endif
