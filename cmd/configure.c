#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "front.h"
#include "../src/util.h"

/*
 * outbox --configure ADDRESS: find the submission server from DNS SRV
 * records (RFC 6186, RFC 8314: _submissions first), look at what it
 * offers, and print an account block ready to paste.
 */
struct srv {
	char	host[NS_MAXDNAME];
	int	port;
	int	prio;
	int	weight;
};

/*
 * OUTBOX_DNS=ADDR:PORT sends the lookups to that server: a test hook,
 * so that the suite can answer from a DNS server of its own on loopback.
 */
static void
resolver_init(void)
{
	const char		*dns = getenv("OUTBOX_DNS");
	struct sockaddr_in	 sin;
	char			 ip[64], *colon;

	res_init();
	if (dns == NULL || strlen(dns) >= sizeof(ip))
		return;
	snprintf(ip, sizeof(ip), "%s", dns);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(53);
	if ((colon = strchr(ip, ':')) != NULL) {
		*colon = '\0';
		sin.sin_port = htons((unsigned short)atoi(colon + 1));
	}
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1)
		return;
	_res.nsaddr_list[0] = sin;
	_res.nscount = 1;
}

/* The best SRV target for name; 1 when there is none. */
static int
lookup_srv(const char *name, struct srv *best)
{
	unsigned char	 ans[4096];
	ns_msg		 msg;
	ns_rr		 rr;
	int		 len, i, found = 0;

	len = res_query(name, ns_c_in, ns_t_srv, ans, sizeof(ans));
	if (len < 0 || ns_initparse(ans, len, &msg) < 0)
		return 1;
	for (i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		struct srv	 s;
		const unsigned char *rd;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0 ||
		    ns_rr_type(rr) != ns_t_srv || ns_rr_rdlen(rr) < 7)
			continue;
		rd = ns_rr_rdata(rr);
		s.prio = ns_get16(rd);
		s.weight = ns_get16(rd + 2);
		s.port = ns_get16(rd + 4);
		if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, s.host,
		    sizeof(s.host)) < 0)
			continue;
		/* "." means: no service here (RFC 2782). */
		if (strcmp(s.host, ".") == 0 || s.host[0] == '\0')
			continue;
		if (!found || s.prio < best->prio ||
		    (s.prio == best->prio && s.weight > best->weight))
			*best = s;
		found = 1;
	}
	return found ? 0 : 1;
}

static void
print_block(const char *acct, const char *addr, const struct srv *s,
    int implicit)
{
	printf("account %s\n", acct);
	printf("host %s\n", s->host);
	printf("port %d\n", s->port);
	printf("tls on\n");
	printf("tls_starttls %s\n", implicit ? "off" : "on");
	printf("auth on\n");
	printf("user %s\n", addr);
	printf("from %s\n", addr);
}

static void
print_template(const char *addr, const char *domain)
{
	printf("# No SRV records for %s: one of these hosts usually works.\n"
	    "# Try them with: outbox -S --host=HOST --port=PORT "
	    "[--tls-starttls=off]\n", domain);
	printf("account %s\n", domain);
	printf("host smtp.%s\n# host mail.%s\n", domain, domain);
	printf("port 587\n# or port 465 with tls_starttls off\n");
	printf("tls on\nauth on\nuser %s\nfrom %s\n", addr, addr);
}

/* Is host the domain itself or a name under it? */
static int
in_domain(const char *host, const char *domain)
{
	size_t	h = strlen(host), d = strlen(domain);

	if (h > 0 && host[h - 1] == '.')	/* the root: "mx.example.org." */
		h--;
	if (h == d)
		return strncasecmp(host, domain, d) == 0;
	return h > d && host[h - d - 1] == '.' &&
	    strncasecmp(host + h - d, domain, d) == 0;
}

/* Ask on the terminal; 1 for yes.  No terminal: no. */
static int
ask_yes(const char *question)
{
	char	answer[16];
	FILE	*tty;
	int	 yes;

	if ((tty = fopen("/dev/tty", "r+e")) == NULL)
		return 0;
	fprintf(tty, "%s [y/N] ", question);
	fflush(tty);
	yes = fgets(answer, sizeof(answer), tty) != NULL &&
	    (answer[0] == 'y' || answer[0] == 'Y');
	fclose(tty);
	return yes;
}

/*
 * DNS is not authenticated: an SRV target outside the address's domain
 * could be anyone's (RFC 6186, section 6).  Take it only when the user
 * says so, on the terminal or with --trust-srv.
 */
static int
srv_trusted(const struct run *r, const char *domain, const struct srv *s,
    struct err *e)
{
	char	q[NS_MAXDNAME * 2 + 200];

	if (in_domain(s->host, domain) || r->o->trust_srv)
		return 0;
	say_notice(r, "the DNS record for %s names the server %s, which is "
	    "outside %s", domain, s->host, domain);
	say_notice(r, "DNS answers are not authenticated: a forged one would "
	    "send your password to someone else's server");
	snprintf(q, sizeof(q), "Is %s the right server for %s?", s->host,
	    domain);
	if (ask_yes(q))
		return 0;
	return err_set(e, ERR_HOST, "%s is outside %s: not used; if your "
	    "provider says it is right, run again with --trust-srv",
	    s->host, domain);
}

/* Connect, secure and show what the server offers, as -S does. */
static int
probe(struct run *r, const char *acct, const struct srv *s, int implicit,
    struct err *e)
{
	char	port[16];

	front_adopt(r, account_new(acct));
	snprintf(port, sizeof(port), "%d", s->port);
	if (account_set(r->acct, "host", s->host, &ORIGIN_CMDLINE, e) == -1 ||
	    account_set(r->acct, "port", port, &ORIGIN_CMDLINE, e) == -1 ||
	    account_set(r->acct, "tls", "on", &ORIGIN_CMDLINE, e) == -1 ||
	    account_set(r->acct, "tls_starttls", implicit ? "off" : "on",
	    &ORIGIN_CMDLINE, e) == -1 || front_overrides(r, e) == -1 ||
	    front_ready(r, e) == -1)
		return -1;
	return front_serverinfo(r, stderr, e);
}

/* Providers whose servers take OAuth 2.0 only: their preset's name. */
static const char *
oauth_provider_of(const char *domain)
{
	static const char *const google[] = { "gmail.com", "googlemail.com",
	    NULL };
	static const char *const microsoft[] = { "outlook.com", "hotmail.com",
	    "live.com", "msn.com", "onmicrosoft.com", NULL };
	size_t	i, n = strlen(domain), k;

	for (i = 0; google[i] != NULL; i++)
		if (strcasecmp(domain, google[i]) == 0)
			return "google";
	for (i = 0; microsoft[i] != NULL; i++) {
		k = strlen(microsoft[i]);
		if (strcasecmp(domain, microsoft[i]) == 0 || (n > k &&
		    domain[n - k - 1] == '.' &&
		    strcasecmp(domain + n - k, microsoft[i]) == 0))
			return "microsoft";
	}
	return NULL;
}

static int
print_oauth(const char *addr, const char *domain, const char *provider)
{
	printf("# %s: %s, which takes OAuth 2.0 sign-in (outbox ships no "
	    "client id:\n# the README says how to register one)\n"
	    "account %s\nfrom %s\nuser %s\noauth_provider %s\n"
	    "oauth_client_id YOUR-CLIENT-ID\n", domain,
	    strcmp(provider, "google") == 0 ? "Google" : "Microsoft", domain,
	    addr, addr, provider);
	if (strcmp(provider, "google") == 0)
		printf("oauth_client_secret YOUR-CLIENT-SECRET\n");
	printf("# Add this to ~/.config/outbox/config, then sign in:\n"
	    "#   outbox --authorize -a %s\n", domain);
	return 0;
}

int
mode_configure(struct run *r, struct err *e)
{
	const char	*addr = r->o->configure;
	const char	*domain = strrchr(addr, '@');
	char		 name[NS_MAXDNAME + 32];
	struct srv	 s;
	int		 implicit = 1, rv;

	if (domain == NULL || domain[1] == '\0' || has_ctl(addr) ||
	    strchr(addr, ' ') != NULL) {
		err_set(e, ERR_USAGE, "--configure: expected an address such "
		    "as alice@example.org, not '%s'", addr);
		return -1;
	}
	domain++;
	if (oauth_provider_of(domain) != NULL)
		return print_oauth(addr, domain, oauth_provider_of(domain));
	resolver_init();
	snprintf(name, sizeof(name), "_submissions._tcp.%s", domain);
	if ((rv = lookup_srv(name, &s)) != 0) {
		implicit = 0;
		snprintf(name, sizeof(name), "_submission._tcp.%s", domain);
		rv = lookup_srv(name, &s);
	}
	if (rv != 0) {
		print_template(addr, domain);
		err_set(e, ERR_HOST, "no SRV records for %s (_submissions._tcp "
		    "or _submission._tcp); a template is printed above",
		    domain);
		return -1;
	}
	if (srv_trusted(r, domain, &s, e) == -1)
		return -1;
	printf("# %s: found by DNS (%s)\n", domain, name);
	if (probe(r, domain, &s, implicit, e) == -1) {
		print_block(domain, addr, &s, implicit);
		return server_error(r);
	}
	print_block(domain, addr, &s, implicit);
	printf("# Add this to ~/.config/outbox/config, then store the "
	    "password:\n#   outbox --store-password -a %s\n", domain);
	return 0;
}
