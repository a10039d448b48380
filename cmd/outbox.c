#include <sys/prctl.h>

#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "../src/conn.h"
#include "../src/sasl.h"

#define OUTBOX_VERSION	"0.1.0"

/* A value for a key=value line: quoted, with " and \\ escaped. */
static void
print_kv(const char *k, const char *v)
{
	fprintf(stderr, " %s=\"", k);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', stderr);
		fputc(*v, stderr);
	}
	fputc('"', stderr);
}

void
say_error(const struct run *r, const struct account *a, const struct err *e)
{
	const char	*host = a ? acct_str(a, CF_HOST) : NULL;
	const char	*port = a ? acct_str(a, CF_PORT) : NULL;

	if (r->o->machine_errors) {
		fprintf(stderr, "error=%s exitcode=%d", err_classname(e->cls),
		    err_exitcode(e));
		if (a != NULL)
			print_kv("account", a->name);
		if (host != NULL)
			fprintf(stderr, " host=%s port=%s", host, port ?
			    port : "0");
		print_kv("message", e->msg);
		fputc('\n', stderr);
	} else if (host != NULL)
		fprintf(stderr, "outbox: account %s: %s:%s: %s\n", a->name, host,
		    port ? port : "?", e->msg);
	else if (a != NULL)
		fprintf(stderr, "outbox: account %s: %s\n", a->name, e->msg);
	else
		fprintf(stderr, "outbox: %s\n", e->msg);
}

int
server_error(struct run *r)
{
	r->blame = r->acct;
	return -1;
}

void
say_notice(const struct run *r, const char *fmt, ...)
{
	char	msg[ERR_MSGLEN];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->o->machine_errors) {
		fputs("notice", stderr);
		print_kv("message", msg);
		fputc('\n', stderr);
	} else
		fprintf(stderr, "outbox: %s\n", msg);
}

/* The one place an error is printed and its exit status chosen. */
static int
finish(const struct run *r, int rv, const struct err *e)
{
	if (rv == 0)
		return err_exitcode(&(struct err){ ERR_NONE, "" });
	if (e->msg[0] != '\0')
		say_error(r, r->blame, e);
	return err_exitcode(e);
}

static int
mode_version(void)
{
	char	v[ERR_MSGLEN + 2];

	sasl_version(v, sizeof(v));
	printf("outbox %s\n", OUTBOX_VERSION);
	printf("TLS: GnuTLS %s\n", conn_tls_version());
	printf("SASL: GNU SASL %s (loaded when a server asks for AUTH)\n", v);
	printf("Keyring: libsecret (loaded when a password is looked up)\n");
	return 0;
}

int
front_serverinfo(struct run *r, FILE *out, struct err *e)
{
	struct smtp_params	p;

	front_smtp_params(r, &p);
	p.auth = "off";
	return smtp_serverinfo(&p, out, e);
}

static int
mode_serverinfo(struct run *r, struct err *e)
{
	if (front_account(r, e) == -1)
		return -1;
	if (front_serverinfo(r, stdout, e) == -1)
		return server_error(r);
	return 0;
}

static enum mode
mode_from_name(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base ? base + 1 : argv0;
	if (strcmp(base, "mailq") == 0)
		return MODE_QUEUE_LIST;
	if (strcmp(base, "newaliases") == 0)
		return MODE_NEWALIASES;
	return MODE_SEND;
}

static int
dispatch(struct run *r, struct err *e)
{
	switch (r->o->mode) {
	case MODE_HELP:
		usage_print(stdout);
		return 0;
	case MODE_VERSION:
		return mode_version();
	case MODE_NEWALIASES:
		return 0;
	case MODE_QUEUE_LIST:
		return mode_mailq(r, e);
	case MODE_FLUSH:
		return mode_flush(r, e);
	case MODE_DROP:
		return mode_drop(r, e);
	case MODE_HOLD:
	case MODE_RELEASE:
		return mode_hold(r, e);
	case MODE_STORE_PW:
		return mode_store_password(r, e);
	case MODE_AUTHORIZE:
		return mode_authorize(r, e);
	case MODE_FORGET_PW:
		return mode_forget_password(r, e);
	case MODE_CHECK_CONFIG:
		return mode_check_config(r, e);
	case MODE_CONFIGURE:
		return mode_configure(r, e);
	case MODE_PRETEND:
		return mode_pretend(r, stdout, e);
	case MODE_SERVERINFO:
		return mode_serverinfo(r, e);
	case MODE_SMTP:
		return mode_smtp(r, e);
	case MODE_VERIFY:
		return mode_verify(r, e);
	case MODE_SEND:
		break;
	}
	return mode_send(r, e);
}

int
main(int argc, char *argv[])
{
	struct opts	o;
	struct run	r;
	struct err	e = { ERR_NONE, "" };
	int		rv;

	/* No core dump may hold a password. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/*
	 * Freed memory is overwritten at once, so that nothing of a password
	 * or a message outlives its use (a shared session's holder is a
	 * fork of this process).
	 */
	mallopt(M_PERTURB, 0xa5);
	/* A peer that goes away is an error to report, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	memset(&r, 0, sizeof(r));
	r.o = &o;
	if (opts_parse(&o, argc, argv, &e) == -1) {
		rv = finish(&r, -1, &e);
		fputs("Try 'outbox --help'.\n", stderr);
		opts_free(&o);
		return rv;
	}
	if (o.mode == MODE_SEND && argc > 0)
		o.mode = mode_from_name(argv[0]);
	rv = finish(&r, dispatch(&r, &e), &e);
	if (r.queue_touched)
		retrier_ensure(&r);
	config_free(&r.cfg);
	opts_free(&o);
	return rv;
}
