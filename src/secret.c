#include <sys/stat.h>
#include <sys/wait.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <libsecret/secret.h>

#include "secret.h"
#include "util.h"

#define MAXSECRET	8192

const char *
secret_source_name(enum secret_source s)
{
	switch (s) {
	case SECRET_CONFIG:	return "password (config)";
	case SECRET_EVAL:	return "passwordeval";
	case SECRET_KEYRING:	return "keyring";
	case SECRET_PROMPT:	return "prompt";
	default:		return "none";
	}
}

enum secret_source
secret_planned(const struct secret_query *q)
{
	if (q->password != NULL)
		return SECRET_CONFIG;
	if (q->passwordeval != NULL)
		return SECRET_EVAL;
	return SECRET_KEYRING;
}

/*
 * A command that cannot work however often it is tried (not found, not
 * executable, not even shell) is a configuration error, and the message is
 * not kept for it; any other failure (a locked agent, a network key store)
 * may pass later.
 */
static int
eval_failed(const char *cmd, int status, struct err *e)
{
	int	code = WIFEXITED(status) ? WEXITSTATUS(status) :
		    128 + WTERMSIG(status);
	const char *why = NULL;

	if (WIFEXITED(status) && code == 127)
		why = "command not found";
	else if (WIFEXITED(status) && code == 126)
		why = "command not executable";
	else if (WIFEXITED(status) && sh_syntax_ok(cmd) == 0)
		why = "shell syntax error";
	if (why != NULL)
		return err_set(e, ERR_CONFIG, "passwordeval failed (exit status "
		    "%d, %s): a configuration error; fix the command",
		    code, why);
	return err_set(e, ERR_TEMP, "passwordeval failed (exit status %d): "
	    "temporary, it may work later", code);
}

static int
run_eval(const struct secret_query *q, char **pw, struct err *e)
{
	struct buf	 b = { 0 };
	int		 status, rv;
	size_t		 n;

	rv = run_capture(q->passwordeval, q->eval_timeout, MAXSECRET, &b,
	    &status);
	if (rv == -1)
		return err_sys(e, ERR_OS, "cannot run passwordeval");
	if (rv == -2) {
		buf_wipe(&b);
		return err_set(e, ERR_TEMP, "passwordeval did not finish "
		    "within %d s", q->eval_timeout);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		buf_wipe(&b);
		return eval_failed(q->passwordeval, status, e);
	}
	n = b.p ? strcspn(b.p, "\r\n") : 0;
	if (n == 0) {
		buf_wipe(&b);
		return err_set(e, ERR_TEMP, "passwordeval printed no password");
	}
	*pw = xstrndup(b.p, n);
	buf_wipe(&b);
	return 0;
}

/* libsecret, loaded on first use. */
struct libsecret {
	void	*h;
	gchar	*(*lookup)(const SecretSchema *, GCancellable *, GError **,
		    ...);
	void	 (*pwfree)(gchar *);
	void	 (*errfree)(GError *);
	gboolean (*store)(const SecretSchema *, const gchar *, const gchar *,
		    const gchar *, GCancellable *, GError **, ...);
	gboolean (*clear)(const SecretSchema *, GCancellable *, GError **,
		    ...);
	/*
	 * Optional, from GIO and GLib under it: to tell a locked item from
	 * none, by asking the Secret Service over D-Bus directly.
	 */
	GDBusConnection *(*bus_get)(GBusType, GCancellable *, GError **);
	GVariant *(*call)(GDBusConnection *, const gchar *, const gchar *,
		    const gchar *, const gchar *, GVariant *,
		    const GVariantType *, GDBusCallFlags, gint, GCancellable *,
		    GError **);
	GVariant *(*parsed)(const gchar *, ...);
	GVariant *(*child)(GVariant *, gsize);
	gsize	 (*nchildren)(GVariant *);
	void	 (*vunref)(GVariant *);
	void	 (*unref)(gpointer);
};

static int
load_libsecret(struct libsecret *ls, struct err *e)
{
	memset(ls, 0, sizeof(*ls));
	ls->h = dlopen("libsecret-1.so.0", RTLD_NOW | RTLD_LOCAL);
	if (ls->h == NULL)
		return err_set(e, ERR_TEMP, "the keyring library libsecret "
		    "cannot be loaded: %s", dlerror());
	*(void **)&ls->lookup = dlsym(ls->h, "secret_password_lookup_sync");
	*(void **)&ls->pwfree = dlsym(ls->h, "secret_password_free");
	*(void **)&ls->errfree = dlsym(ls->h, "g_error_free");
	*(void **)&ls->store = dlsym(ls->h, "secret_password_store_sync");
	*(void **)&ls->clear = dlsym(ls->h, "secret_password_clear_sync");
	*(void **)&ls->bus_get = dlsym(ls->h, "g_bus_get_sync");
	*(void **)&ls->call = dlsym(ls->h, "g_dbus_connection_call_sync");
	*(void **)&ls->parsed = dlsym(ls->h, "g_variant_new_parsed");
	*(void **)&ls->child = dlsym(ls->h, "g_variant_get_child_value");
	*(void **)&ls->nchildren = dlsym(ls->h, "g_variant_n_children");
	*(void **)&ls->vunref = dlsym(ls->h, "g_variant_unref");
	*(void **)&ls->unref = dlsym(ls->h, "g_object_unref");
	if (ls->lookup == NULL || ls->pwfree == NULL || ls->errfree == NULL ||
	    ls->store == NULL || ls->clear == NULL)
		return err_set(e, ERR_SOFTWARE, "libsecret lacks a function "
		    "outbox needs");
	return 0;
}

/*
 * Without a session bus address (cron, ssh, services), use the user's bus
 * socket when it exists and is theirs, as a desktop session would.
 */
int
session_bus_find(void)
{
	const char	*rt = getenv("XDG_RUNTIME_DIR");
	char		 path[512], addr[600];
	struct stat	 st;

	if (getenv("DBUS_SESSION_BUS_ADDRESS") != NULL)
		return 1;
	if (rt != NULL && *rt == '/')
		snprintf(path, sizeof(path), "%s/bus", rt);
	else
		snprintf(path, sizeof(path), "/run/user/%u/bus",
		    (unsigned)getuid());
	if (stat(path, &st) == -1 || !S_ISSOCK(st.st_mode) ||
	    st.st_uid != getuid())
		return 0;
	snprintf(addr, sizeof(addr), "unix:path=%s", path);
	setenv("DBUS_SESSION_BUS_ADDRESS", addr, 1);
	return 1;
}

static const SecretSchema outbox_schema = {
	.name = "org.outbox.Password",
	.flags = SECRET_SCHEMA_NONE,
	.attributes = { { "host", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "port", SECRET_SCHEMA_ATTRIBUTE_INTEGER },
	  { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "user", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { NULL, 0 } }
};

/* What msmtp and secret-tool store: any schema with these attributes. */
static const SecretSchema msmtp_schema = {
	.name = "de.marlam.msmtp.password",
	.flags = SECRET_SCHEMA_DONT_MATCH_NAME,
	.attributes = { { "host", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "user", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { NULL, 0 } }
};

/* The old GNOME network-password items, by attribute too. */
static const SecretSchema network_schema = {
	.name = "org.gnome.keyring.NetworkPassword",
	.flags = SECRET_SCHEMA_DONT_MATCH_NAME,
	.attributes = { { "user", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "server", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "protocol", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { NULL, 0 } }
};

static const char *
explain_dbus(const char *msg)
{
	if (strstr(msg, "ServiceUnknown") || strstr(msg, "was not provided"))
		return "no Secret Service provider is running (start "
		    "gnome-keyring-daemon or KeePassXC)";
	if (strstr(msg, "autolaunch") || strstr(msg, "DBUS_SESSION_BUS") ||
	    strstr(msg, "session bus"))
		return "no D-Bus session bus (log in to a desktop session, or "
		    "use passwordeval)";
	if (strstr(msg, "locked") || strstr(msg, "Locked") ||
	    strstr(msg, "prompt"))
		return "the keyring is locked (unlock it, e.g. by logging in)";
	return NULL;
}

static int
keyring_error(struct libsecret *ls, GError *gerr, const char *what,
    struct err *e)
{
	char		 msg[300];
	const char	*why;

	sanitize(msg, sizeof(msg), gerr->message, strlen(gerr->message));
	ls->errfree(gerr);
	why = explain_dbus(msg);
	return err_set(e, ERR_TEMP, "cannot %s the keyring: %s", what,
	    why ? why : msg);
}

/* SearchItems (Secret Service API): does any locked item match? */
static int
search_locked(struct libsecret *ls, GDBusConnection *bus, GVariant *attrs)
{
	GVariant	*r, *locked;
	GError		*gerr = NULL;
	int		 found;

	r = ls->call(bus, "org.freedesktop.secrets", "/org/freedesktop/secrets",
	    "org.freedesktop.Secret.Service", "SearchItems", attrs, NULL,
	    G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &gerr);
	if (r == NULL) {
		if (gerr != NULL)
			ls->errfree(gerr);
		return 0;
	}
	locked = ls->child(r, 1);
	found = ls->nchildren(locked) > 0;
	ls->vunref(locked);
	ls->vunref(r);
	return found;
}

/*
 * A lookup finds nothing in a locked collection (the unlock prompt has no
 * one to answer it): is there an item that the lookup could not read?
 * The msmtp attributes match outbox's own items too.
 */
static int
keyring_locked(struct libsecret *ls, const struct secret_query *q)
{
	GDBusConnection	*bus;
	GError		*gerr = NULL;
	int		 found;

	if (ls->bus_get == NULL || ls->call == NULL || ls->parsed == NULL ||
	    ls->child == NULL || ls->nchildren == NULL || ls->vunref == NULL ||
	    ls->unref == NULL)
		return 0;
	if ((bus = ls->bus_get(G_BUS_TYPE_SESSION, NULL, &gerr)) == NULL) {
		if (gerr != NULL)
			ls->errfree(gerr);
		return 0;
	}
	found = search_locked(ls, bus, ls->parsed("({'host': %s, "
	    "'service': 'smtp', 'user': %s},)", q->host, q->user)) ||
	    search_locked(ls, bus, ls->parsed("({'user': %s, "
	    "'protocol': 'smtp', 'server': %s},)", q->user, q->host));
	ls->unref(bus);
	return found;
}

static int
keyring_lookup(const struct secret_query *q, char **pw, struct err *e)
{
	struct libsecret	 ls;
	GError			*gerr = NULL;
	gchar			*v;

	if (load_libsecret(&ls, e) == -1)
		return -1;
	session_bus_find();
	v = ls.lookup(&outbox_schema, NULL, &gerr, "host", q->host, "port",
	    q->port, "service", "smtp", "user", q->user, NULL);
	if (v == NULL && gerr == NULL)
		v = ls.lookup(&msmtp_schema, NULL, &gerr, "host", q->host,
		    "service", "smtp", "user", q->user, NULL);
	if (v == NULL && gerr == NULL)
		v = ls.lookup(&network_schema, NULL, &gerr, "user", q->user,
		    "protocol", "smtp", "server", q->host, NULL);
	if (gerr != NULL)
		return keyring_error(&ls, gerr, "read", e);
	if (v == NULL && keyring_locked(&ls, q))
		return err_set(e, ERR_TEMP, "cannot read the keyring: %s",
		    explain_dbus("locked"));
	if (v == NULL)
		return 1;
	*pw = xstrdup(v);
	ls.pwfree(v);
	/* libsecret stays loaded: unloading GLib is not safe. */
	return 0;
}

/*
 * Read one line into b; on a terminal (tty), ask with msg and turn echo
 * off meanwhile.  Returns 0 when a line ended, -1 at EOF first.
 */
static int
read_secret_line(int fd, int tty, const char *msg, struct buf *b)
{
	struct termios	old, noecho;
	ssize_t		n;
	char		c;

	if (tty) {
		/*
		 * Echo off (and type-ahead dropped) before the prompt shows,
		 * so that nothing typed after it is lost.
		 */
		tcgetattr(fd, &old);
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &noecho);
		write_all(fd, msg, strlen(msg));
	}
	while ((n = read(fd, &c, 1)) == 1 && c != '\n' && c != '\r')
		if (b->len < MAXSECRET)
			buf_addc(b, c);
	if (tty) {
		tcsetattr(fd, TCSANOW, &old);
		write_all(fd, "\n", 1);
	}
	return n == 1 || b->len > 0 ? 0 : -1;
}

/* The prompt at run time: only on a terminal, never stdin (the message). */
static int
prompt(const struct secret_query *q, char **pw, struct err *e)
{
	struct buf	 b = { 0 };
	char		*msg;
	int		 fd, rv;

	if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
		return 1;
	msg = xasprintf("password for %s at %s: ", q->user, q->host);
	rv = read_secret_line(fd, 1, msg, &b);
	free(msg);
	close(fd);
	if (rv == -1) {
		buf_wipe(&b);
		return err_set(e, ERR_TEMP, "no password entered");
	}
	*pw = xstrdup(b.p ? b.p : "");
	buf_wipe(&b);
	return 0;
}

int
secret_get(const struct secret_query *q, char **pw, enum secret_source *src,
    struct err *e)
{
	struct err	kerr = { ERR_NONE, "" };
	int		rv;

	*pw = NULL;
	*src = SECRET_NONE;
	if (q->password != NULL) {
		*pw = xstrdup(q->password);
		*src = SECRET_CONFIG;
		return 0;
	}
	if (q->passwordeval != NULL) {
		*src = SECRET_EVAL;
		return run_eval(q, pw, e);
	}
	if ((rv = keyring_lookup(q, pw, &kerr)) == 0) {
		*src = SECRET_KEYRING;
		return 0;
	}
	if ((rv = prompt(q, pw, e)) == 0) {
		*src = SECRET_PROMPT;
		return 0;
	}
	if (rv == -1)
		return -1;
	if (kerr.cls != ERR_NONE) {
		*e = kerr;
		return -1;
	}
	return err_set(e, ERR_CONFIG, "no password: none in the config "
	    "(password, passwordeval), none in the keyring for host %s user "
	    "%s, and no terminal to ask on; store one with: outbox "
	    "--store-password -a %s", q->host, q->user, q->account);
}

int
secret_store(const struct secret_query *q, const char *pw, struct err *e)
{
	struct libsecret	 ls;
	GError			*gerr = NULL;
	char			*label;
	gboolean		 ok;

	if (load_libsecret(&ls, e) == -1)
		return -1;
	session_bus_find();
	label = xasprintf("outbox: %s at %s:%d", q->user, q->host, q->port);
	ok = ls.store(&outbox_schema, "default", label, pw, NULL, &gerr,
	    "host", q->host, "port", q->port, "service", "smtp", "user",
	    q->user, NULL);
	free(label);
	if (!ok && gerr != NULL)
		return keyring_error(&ls, gerr, "write to", e);
	if (!ok)
		return err_set(e, ERR_TEMP, "the keyring refused the password");
	return 0;
}

int
secret_forget(const struct secret_query *q, struct err *e)
{
	struct libsecret	 ls;
	GError			*gerr = NULL;
	gboolean		 ok;

	if (load_libsecret(&ls, e) == -1)
		return -1;
	session_bus_find();
	ok = ls.clear(&outbox_schema, NULL, &gerr, "host", q->host, "port",
	    q->port, "service", "smtp", "user", q->user, NULL);
	if (gerr != NULL)
		return keyring_error(&ls, gerr, "change", e);
	return ok ? 0 : 1;
}

int
secret_read_new(const struct secret_query *q, char **pw, struct err *e)
{
	struct buf	 b = { 0 };
	char		*msg;
	int		 fd = -1, tty = isatty(STDIN_FILENO);

	if (tty && (fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
		tty = 0;
	msg = xasprintf("password for %s at %s (account %s): ", q->user,
	    q->host, q->account);
	read_secret_line(tty ? fd : STDIN_FILENO, tty, msg, &b);
	free(msg);
	if (fd != -1)
		close(fd);
	if (b.len == 0) {
		buf_wipe(&b);
		return err_set(e, ERR_USAGE, "no password given");
	}
	*pw = xstrdup(b.p);
	buf_wipe(&b);
	return 0;
}

/*
 * SCRAM keys: a schema of their own, with a service other than "smtp" so
 * that no lookup of a password (msmtp's, by attribute) ever finds one.
 */
static const SecretSchema scram_schema = {
	.name = "org.outbox.ScramKey",
	.flags = SECRET_SCHEMA_NONE,
	.attributes = { { "host", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "port", SECRET_SCHEMA_ATTRIBUTE_INTEGER },
	  { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "user", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "mech", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "salt", SECRET_SCHEMA_ATTRIBUTE_STRING },
	  { "iter", SECRET_SCHEMA_ATTRIBUTE_INTEGER },
	  { NULL, 0 } }
};

#define SCRAM_SERVICE	"smtp-scram"

static size_t
scram_keylen(const char *hash)
{
	return strcmp(hash, "SCRAM-SHA-256") == 0 ? 64 :
	    strcmp(hash, "SCRAM-SHA-1") == 0 ? 40 : 0;
}

/* HMAC-SHA-256(password, "hash,salt,iter") in hex: 64 digits. */
static int
scram_check(const char *pw, const struct secret_scram *k, char hex[65])
{
	unsigned char	 mac[32];
	char		*msg;
	size_t		 i;
	int		 rv;

	msg = xasprintf("%s,%s,%lu", k->hash, k->salt, k->iter);
	rv = gnutls_hmac_fast(GNUTLS_MAC_SHA256, pw, strlen(pw), msg,
	    strlen(msg), mac);
	free(msg);
	for (i = 0; i < sizeof(mac); i++) {
		hex[2 * i] = "0123456789abcdef"[mac[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[mac[i] & 15];
	}
	hex[64] = '\0';
	explicit_bzero(mac, sizeof(mac));
	return rv == 0 ? 0 : -1;
}

/* a and b of the same length n, compared in time independent of them. */
static int
same(const char *a, const char *b, size_t n)
{
	unsigned char	d = 0;
	size_t		i;

	for (i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static int
all_hex(const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strchr("0123456789abcdef", p[i]) == NULL || p[i] == '\0')
			return 0;
	return 1;
}

static int
scram_usable(const struct secret_scram *k)
{
	return scram_keylen(k->hash) != 0 && k->iter > 0 &&
	    k->iter <= INT32_MAX && strlen(k->salt) <= SECRET_SALT_MAX;
}

/*
 * The item's secret is "KEY CHECK": the key in hex, then the check.  A
 * value of another form, or whose check is not the password's, is
 * dropped.
 */
static int
scram_parse(const char *v, const char *pw, const struct secret_scram *k,
    char key[SECRET_KEY_MAX])
{
	size_t	n = scram_keylen(k->hash);
	char	check[65];
	int	ok;

	if (strlen(v) != n + 1 + 64 || v[n] != ' ' || !all_hex(v, n) ||
	    scram_check(pw, k, check) == -1)
		return -1;
	ok = same(v + n + 1, check, 64);
	explicit_bzero(check, sizeof(check));
	if (!ok)
		return -1;
	memcpy(key, v, n);
	key[n] = '\0';
	return 0;
}

static void
scram_clear_one(struct libsecret *ls, const struct secret_query *q,
    const struct secret_scram *k)
{
	GError	*gerr = NULL;

	ls->clear(&scram_schema, NULL, &gerr, "host", q->host, "port",
	    q->port, "service", SCRAM_SERVICE, "user", q->user, "mech",
	    k->hash, "salt", k->salt, "iter", (int)k->iter, NULL);
	if (gerr != NULL)
		ls->errfree(gerr);
}

int
secret_scram_get(const struct secret_query *q, const char *pw,
    const struct secret_scram *k, char key[SECRET_KEY_MAX], struct err *e)
{
	struct libsecret	 ls;
	GError			*gerr = NULL;
	gchar			*v;
	int			 rv;

	key[0] = '\0';
	if (!scram_usable(k))
		return 1;
	if (load_libsecret(&ls, e) == -1)
		return -1;
	session_bus_find();
	v = ls.lookup(&scram_schema, NULL, &gerr, "host", q->host, "port",
	    q->port, "service", SCRAM_SERVICE, "user", q->user, "mech",
	    k->hash, "salt", k->salt, "iter", (int)k->iter, NULL);
	if (gerr != NULL)
		return keyring_error(&ls, gerr, "read", e);
	if (v == NULL)
		return 1;
	rv = scram_parse(v, pw, k, key);
	ls.pwfree(v);
	if (rv == -1) {
		/* Stale (the password changed) or damaged: never used. */
		scram_clear_one(&ls, q, k);
		return 1;
	}
	return 0;
}

int
secret_scram_put(const struct secret_query *q, const char *pw,
    const struct secret_scram *k, const char *key, struct err *e)
{
	struct libsecret	 ls;
	GError			*gerr = NULL;
	char			*label, *v, check[65];
	gboolean		 ok;

	if (!scram_usable(k) || strlen(key) != scram_keylen(k->hash))
		return 0;
	if (load_libsecret(&ls, e) == -1)
		return -1;
	session_bus_find();
	if (scram_check(pw, k, check) == -1)
		return err_set(e, ERR_SOFTWARE, "HMAC-SHA-256 failed");
	/*
	 * One key per account and hash: a server that salts anew at every
	 * login (one that keeps the password itself) must not fill the
	 * keyring with keys never used again.
	 */
	ls.clear(&scram_schema, NULL, &gerr, "host", q->host, "port", q->port,
	    "service", SCRAM_SERVICE, "user", q->user, "mech", k->hash, NULL);
	if (gerr != NULL) {
		explicit_bzero(check, sizeof(check));
		return keyring_error(&ls, gerr, "change", e);
	}
	v = xasprintf("%s %s", key, check);
	explicit_bzero(check, sizeof(check));
	label = xasprintf("outbox: %s key for %s at %s:%d", k->hash, q->user,
	    q->host, q->port);
	ok = ls.store(&scram_schema, "default", label, v, NULL, &gerr,
	    "host", q->host, "port", q->port, "service", SCRAM_SERVICE,
	    "user", q->user, "mech", k->hash, "salt", k->salt, "iter",
	    (int)k->iter, NULL);
	free(label);
	secret_free(v);
	if (!ok && gerr != NULL)
		return keyring_error(&ls, gerr, "write to", e);
	if (!ok)
		return err_set(e, ERR_TEMP, "the keyring refused the SCRAM key");
	return 0;
}

int
secret_scram_drop(const struct secret_query *q, struct err *e)
{
	struct libsecret	 ls;
	GError			*gerr = NULL;

	if (load_libsecret(&ls, e) == -1)
		return -1;
	session_bus_find();
	ls.clear(&scram_schema, NULL, &gerr, "host", q->host, "port",
	    q->port, "service", SCRAM_SERVICE, "user", q->user, NULL);
	if (gerr != NULL)
		return keyring_error(&ls, gerr, "change", e);
	return 0;
}
