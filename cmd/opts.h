#ifndef OUTBOX_OPTS_H
#define OUTBOX_OPTS_H

#include "../src/config.h"
#include "../src/err.h"

enum mode {
	MODE_SEND,		/* -bm, the default */
	MODE_SMTP,		/* -bs */
	MODE_QUEUE_LIST,	/* -bp, mailq */
	MODE_NEWALIASES,	/* -bi, -I, newaliases */
	MODE_VERIFY,		/* -bv */
	MODE_FLUSH,		/* -q, --flush */
	MODE_DROP,		/* --drop ID */
	MODE_HOLD,		/* -qH ID: no more attempts */
	MODE_RELEASE,		/* -qU ID: attempts again */
	MODE_STORE_PW,		/* --store-password */
	MODE_AUTHORIZE,		/* --authorize */
	MODE_FORGET_PW,		/* --forget-password */
	MODE_CHECK_CONFIG,	/* --check-config */
	MODE_CONFIGURE,		/* --configure ADDRESS */
	MODE_PRETEND,		/* -P */
	MODE_SERVERINFO,	/* -S, --serverinfo */
	MODE_VERSION,
	MODE_HELP,
};

/* A config command given on the command line (--host=x, -N never...). */
struct override {
	const char	*cmd;
	const char	*val;
};

/* The parsed command line: the program's only global state. */
struct opts {
	enum mode	 mode;
	const char	*conffile;	/* -C */
	const char	*account;	/* -a */
	const char	*from;		/* -f, -r */
	const char	*fullname;	/* -F */
	const char	*envid;		/* -V */
	const char	*body;		/* -B: "7BIT" or "8BITMIME" */
	int		 smtputf8;	/* -O smtputf8 */
	const char	*label;		/* -L: tags the log line */
	int		 read_rcpts;	/* -t */
	int		 dot_ends;	/* not -i */
	int		 read_env_from;	/* --read-envelope-from */
	int		 verbose;	/* -v, -d */
	const char	*flush_id;	/* -qI ID, -qH ID, -qU ID, --drop ID */
	const char	*flush_account;	/* -qR ACCOUNT */
	int		 flush_due;	/* -q15m: only what is due */
	int		 dry_run;	/* --dry-run */
	const char	*configure;	/* --configure ADDRESS */
	int		 trust_srv;	/* --trust-srv */
	int		 machine_errors; /* --errors=machine */
	struct override	*ov;
	size_t		 nov;
	char		**rcpts;	/* the operands */
	int		 nrcpts;
};

/*
 * Parse argv.  Errors: ERR_USAGE naming the option.  Accepts sendmail's
 * options (implemented or ignored, see outbox(1)) and msmtp's long options.
 */
int	 opts_parse(struct opts *, int argc, char **argv, struct err *);
void	 opts_free(struct opts *);
void	 usage_print(FILE *);

#endif
