#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "err.h"

static const struct {
	int		 ex;
	const char	*name;
} classes[] = {
	[ERR_NONE] =		{ EX_OK,		"ok" },
	[ERR_USAGE] =		{ EX_USAGE,		"usage" },
	[ERR_DATA] =		{ EX_DATAERR,		"data" },
	[ERR_NOINPUT] =		{ EX_NOINPUT,		"noinput" },
	[ERR_ADDR] =		{ EX_NOUSER,		"address" },
	[ERR_HOST] =		{ EX_NOHOST,		"host" },
	[ERR_PERM] =		{ EX_UNAVAILABLE,	"permanent" },
	[ERR_SOFTWARE] =	{ EX_SOFTWARE,		"internal" },
	[ERR_OS] =		{ EX_OSERR,		"system" },
	[ERR_IO] =		{ EX_IOERR,		"io" },
	[ERR_TEMP] =		{ EX_TEMPFAIL,		"temporary" },
	[ERR_PROTO] =		{ EX_PROTOCOL,		"protocol" },
	[ERR_AUTH] =		{ EX_NOPERM,		"auth" },
	[ERR_CONFIG] =		{ EX_CONFIG,		"config" },
};

static int
err_vset(struct err *e, enum err_class cls, const char *fmt, va_list ap)
{
	e->cls = cls;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	return -1;
}

int
err_set(struct err *e, enum err_class cls, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	err_vset(e, cls, fmt, ap);
	va_end(ap);
	return -1;
}

int
err_sys(struct err *e, enum err_class cls, const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;
	size_t	 len;

	va_start(ap, fmt);
	err_vset(e, cls, fmt, ap);
	va_end(ap);
	len = strlen(e->msg);
	snprintf(e->msg + len, sizeof(e->msg) - len, ": %s", strerror(saved));
	return -1;
}

void
err_prefix(struct err *e, const char *fmt, ...)
{
	char	 tmp[ERR_MSGLEN];
	size_t	 n;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp) - 2, fmt, ap);
	va_end(ap);
	n = strlen(tmp);
	memcpy(tmp + n, ": ", 3);
	n += 2;
	memcpy(tmp + n, e->msg, sizeof(tmp) - n - 1);
	tmp[sizeof(tmp) - 1] = '\0';
	memcpy(e->msg, tmp, sizeof(e->msg));
}

int
err_exitcode(const struct err *e)
{
	if (e->cls >= sizeof(classes) / sizeof(classes[0]))
		return EX_SOFTWARE;
	return classes[e->cls].ex;
}

const char *
err_classname(enum err_class cls)
{
	if (cls >= sizeof(classes) / sizeof(classes[0]))
		return "internal";
	return classes[cls].name;
}
