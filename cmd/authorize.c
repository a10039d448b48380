#include <sys/wait.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "front.h"
#include "../src/oauth.h"
#include "../src/secret.h"
#include "../src/util.h"

/* How long a user has to finish in the browser. */
#define BROWSER_WAIT_MS	(10 * 60 * 1000)

/* What --authorize needs that the account lacks, named. */
static int
check_account(const struct account *a, const char *flow, struct err *e)
{
	const char	*need = NULL;

	if (acct_str(a, CF_OAUTH_CLIENT_ID) == NULL)
		return err_set(e, ERR_CONFIG, "account %s has no "
		    "oauth_client_id: register a client with the provider (the "
		    "README says how, for Google and Microsoft) and add "
		    "'oauth_client_id ID'", a->name);
	if (acct_str(a, CF_OAUTH_TOKEN_URL) == NULL)
		need = "oauth_token_url (or oauth_provider)";
	else if (strcmp(flow, "device") == 0 &&
	    acct_str(a, CF_OAUTH_DEVICE_URL) == NULL)
		need = "oauth_device_url (or oauth_provider)";
	else if (strcmp(flow, "browser") == 0 &&
	    acct_str(a, CF_OAUTH_AUTH_URL) == NULL)
		need = "oauth_auth_url (or oauth_provider)";
	if (need != NULL)
		return err_set(e, ERR_CONFIG, "account %s: oauth_flow %s needs "
		    "%s", a->name, flow, need);
	return 0;
}

static int
device_flow(const struct run *r, struct oauth_tokens *t, struct err *e)
{
	const struct account	*a = r->acct;
	struct oauth_client	cl;
	struct oauth_device	d;
	long long		until;
	long			interval;
	int			rv;

	front_oauth_client(a, &cl);
	if (oauth_device_start(&cl, acct_str(a, CF_OAUTH_DEVICE_URL),
	    acct_str(a, CF_OAUTH_SCOPE), &d, e) == -1)
		return -1;
	say_notice(r, "to authorize account %s, open %s and enter the code %s",
	    a->name, d.verification_uri, d.user_code);
	if (d.verification_uri_complete != NULL)
		say_notice(r, "or open %s", d.verification_uri_complete);
	fflush(stderr);
	interval = d.interval;
	until = now_ms() + d.expires_in * 1000LL;
	for (;;) {
		if (now_ms() + interval * 1000 > until) {
			rv = err_set(e, ERR_TEMP, "the device code expired "
			    "before the sign-in was finished; run outbox "
			    "--authorize again");
			break;
		}
		sleep((unsigned)interval);
		if ((rv = oauth_device_poll(&cl, acct_str(a,
		    CF_OAUTH_TOKEN_URL), d.device_code, &interval, t, e)) != 1)
			break;
	}
	oauth_device_free(&d);
	return rv;
}

/* xdg-open, when there is a display; its output is not ours. */
static void
open_browser(const char *url)
{
	pid_t	pid;
	int	fd;

	if (getenv("DISPLAY") == NULL && getenv("WAYLAND_DISPLAY") == NULL)
		return;
	if ((pid = fork()) != 0)
		return;
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execlp("xdg-open", "xdg-open", url, (char *)NULL);
	_exit(127);
}

static int
browser_flow(const struct run *r, struct oauth_tokens *t, struct err *e)
{
	const struct account	*a = r->acct;
	struct oauth_client	 cl;
	char			 verifier[64], challenge[64], state[32];
	char			 redirect[64], *url, *code;
	int			 fd, port, rv;

	front_oauth_client(a, &cl);
	if (oauth_pkce(verifier, challenge, state, e) == -1 ||
	    oauth_listen(&fd, &port, e) == -1)
		return -1;
	snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%d/", port);
	url = oauth_auth_url(acct_str(a, CF_OAUTH_AUTH_URL), cl.client_id,
	    redirect, acct_str(a, CF_OAUTH_SCOPE), state, challenge);
	say_notice(r, "to authorize account %s, sign in at this address (in a "
	    "browser on this machine):\n%s", a->name, url);
	fflush(stderr);
	open_browser(url);
	free(url);
	rv = oauth_redirect_wait(fd, state, BROWSER_WAIT_MS, &code, e);
	close(fd);
	if (rv == 0) {
		rv = oauth_code_exchange(&cl, acct_str(a, CF_OAUTH_TOKEN_URL),
		    code, verifier, redirect, t, e);
		secret_free(code);
	}
	explicit_bzero(verifier, sizeof(verifier));
	return rv;
}

/* Where the refresh token goes: the keyring, or the user is told. */
static int
keep_refresh(struct run *r, const char *token, struct err *e)
{
	const struct account	*a = r->acct;
	struct secret_query	 q;
	char			 where[300];

	if (acct_str(a, CF_PASSWORDEVAL) != NULL ||
	    acct_str(a, CF_PASSWORD) != NULL) {
		enum cfkey k = acct_str(a, CF_PASSWORDEVAL) != NULL ?
		    CF_PASSWORDEVAL : CF_PASSWORD;

		origin_str(&a->org[k], where, sizeof(where));
		say_notice(r, "account %s takes its refresh token from %s "
		    "(%s): put the token printed on standard output there, or "
		    "remove that line and run outbox --authorize again to keep "
		    "it in the keyring", a->name, cfkey_name(k), where);
		printf("%s\n", token);
		return 0;
	}
	if (acct_str(a, CF_USER) == NULL)
		return err_set(e, ERR_CONFIG, "account %s has no user; add "
		    "'user ADDRESS' first", a->name);
	front_secret_query(a, &q);
	if (secret_store(&q, token, e) == -1)
		return -1;
	say_notice(r, "stored the refresh token for %s at %s:%d (account %s) "
	    "in the keyring", q.user, q.host, q.port, q.account);
	return 0;
}

int
mode_authorize(struct run *r, struct err *e)
{
	struct oauth_tokens	 t;
	struct oauth_client	 cl;
	const char		*flow;
	int			 rv;

	if (front_account(r, e) == -1)
		return -1;
	flow = acct_str(r->acct, CF_OAUTH_FLOW);
	if (flow == NULL)
		flow = acct_str(r->acct, CF_OAUTH_DEVICE_URL) != NULL ||
		    acct_str(r->acct, CF_OAUTH_AUTH_URL) == NULL ?
		    "device" : "browser";
	if (check_account(r->acct, flow, e) == -1)
		return -1;
	memset(&t, 0, sizeof(t));
	if (strcmp(flow, "client_credentials") == 0) {
		front_oauth_client(r->acct, &cl);
		rv = oauth_client_credentials(&cl, acct_str(r->acct,
		    CF_OAUTH_TOKEN_URL), acct_str(r->acct, CF_OAUTH_SCOPE), &t,
		    e);
	} else if (strcmp(flow, "device") == 0)
		rv = device_flow(r, &t, e);
	else
		rv = browser_flow(r, &t, e);
	if (rv == -1) {
		err_prefix(e, "account %s: --authorize", r->acct->name);
		return -1;
	}
	front_oauth_keep(r, t.access, t.expires_in);
	if (strcmp(flow, "client_credentials") == 0)
		say_notice(r, "account %s: the client credentials work; there "
		    "is no refresh token to keep", r->acct->name);
	else if (t.refresh == NULL) {
		oauth_tokens_free(&t);
		err_set(e, ERR_PROTO, "--authorize: the token endpoint sent no "
		    "refresh token (ask for offline access: the scope "
		    "offline_access for Microsoft)");
		return -1;
	} else if (keep_refresh(r, t.refresh, e) == -1) {
		oauth_tokens_free(&t);
		return server_error(r);
	}
	oauth_tokens_free(&t);
	return 0;
}
