#ifndef OUTBOX_ERR_H
#define OUTBOX_ERR_H

#include <stdarg.h>

/*
 * One error type for the whole program.  The place that detects a failure
 * fills in its class and a one-line message; callers may prefix context
 * ("account work: smtp.example.org:587: ") on the way up.  The class is
 * mapped to a sysexits(3) code in exactly one place, err_exitcode().
 */
enum err_class {
	ERR_NONE = 0,
	ERR_USAGE,	/* bad command line			EX_USAGE 64 */
	ERR_DATA,	/* bad message input			EX_DATAERR 65 */
	ERR_NOINPUT,	/* an input file cannot be read		EX_NOINPUT 66 */
	ERR_ADDR,	/* bad address				EX_NOUSER 67 */
	ERR_HOST,	/* host name unknown			EX_NOHOST 68 */
	ERR_PERM,	/* permanent refusal (5xx)		EX_UNAVAILABLE 69 */
	ERR_SOFTWARE,	/* internal error			EX_SOFTWARE 70 */
	ERR_OS,		/* system call failed			EX_OSERR 71 */
	ERR_IO,		/* local file I/O failed		EX_IOERR 74 */
	ERR_TEMP,	/* try again later (4xx, network)	EX_TEMPFAIL 75 */
	ERR_PROTO,	/* the server broke the protocol	EX_PROTOCOL 76 */
	ERR_AUTH,	/* authentication refused		EX_NOPERM 77 */
	ERR_CONFIG,	/* configuration error			EX_CONFIG 78 */
};

#define ERR_MSGLEN	1024

struct err {
	enum err_class	 cls;
	char		 msg[ERR_MSGLEN];
};

/* Set class and message; always returns -1 so callers can "return err_set()". */
int	err_set(struct err *, enum err_class, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
/* Like err_set, appending ": strerror(errno)". */
int	err_sys(struct err *, enum err_class, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
/* Put "prefix: " in front of the message, keeping the class. */
void	err_prefix(struct err *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* The sysexits code for the error's class; 0 for ERR_NONE. */
int	err_exitcode(const struct err *);
/* Name of the class ("temporary", "config"...), for logs. */
const char *err_classname(enum err_class);

#endif
