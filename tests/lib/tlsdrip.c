/*
 * tlsdrip: a TLS 1.3 server that never sends application data, only
 * post-handshake records, one every INTERVAL milliseconds: a hostile server
 * that tries to hold a client past its timeout.
 *
 * Usage: tlsdrip PORTFILE CERT KEY keyupdate|ticket INTERVAL_MS SECONDS
 *
 * Listens on 127.0.0.1 (a free port, written to PORTFILE), accepts one
 * connection, does the handshake (implicit TLS), then for SECONDS sends a
 * KeyUpdate or a NewSessionTicket every INTERVAL_MS.  It then prints on
 * stdout how many it sent before the client went away ("sent N") and exits 0.
 *
 * Built by the test that uses it: cc -o tlsdrip tlsdrip.c -lgnutls
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

static void
die(const char *what, int rv)
{
	fprintf(stderr, "tlsdrip: %s: %s\n", what, rv ? gnutls_strerror(rv) :
	    "failed");
	exit(1);
}

static int
listen_any(const char *portfile)
{
	struct sockaddr_in	sa;
	socklen_t		len = sizeof(sa);
	FILE			*fp;
	char			tmp[4096];
	int			fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket", 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, 1) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1)
		die("listen", 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
	if ((fp = fopen(tmp, "w")) == NULL)
		die(tmp, 0);
	fprintf(fp, "%d\n", ntohs(sa.sin_port));
	if (fclose(fp) != 0 || rename(tmp, portfile) == -1)
		die(portfile, 0);
	return fd;
}

int
main(int argc, char **argv)
{
	gnutls_certificate_credentials_t cred;
	gnutls_session_t	session;
	gnutls_datum_t		tkey;
	struct timespec		ts;
	time_t			end;
	int			lfd, fd, rv, ticket, ms, sent = 0;

	if (argc != 7)
		die("usage: tlsdrip PORTFILE CERT KEY keyupdate|ticket MS "
		    "SECONDS", 0);
	signal(SIGPIPE, SIG_IGN);
	ticket = strcmp(argv[4], "ticket") == 0;
	ms = atoi(argv[5]);
	lfd = listen_any(argv[1]);
	if ((rv = gnutls_certificate_allocate_credentials(&cred)) < 0 ||
	    (rv = gnutls_certificate_set_x509_key_file(cred, argv[2], argv[3],
	    GNUTLS_X509_FMT_PEM)) < 0)
		die("certificate", rv);
	if ((fd = accept(lfd, NULL, NULL)) == -1)
		die("accept", 0);
	if ((rv = gnutls_init(&session, GNUTLS_SERVER)) < 0 ||
	    (rv = gnutls_priority_set_direct(session,
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL)) < 0 ||
	    (rv = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE,
	    cred)) < 0)
		die("session", rv);
	if (ticket && ((rv = gnutls_session_ticket_key_generate(&tkey)) < 0 ||
	    (rv = gnutls_session_ticket_enable_server(session, &tkey)) < 0))
		die("tickets", rv);
	gnutls_transport_set_int(session, fd);
	do {
		rv = gnutls_handshake(session);
	} while (rv < 0 && !gnutls_error_is_fatal(rv));
	if (rv < 0)
		die("handshake", rv);
	end = time(NULL) + atoi(argv[6]);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (time(NULL) < end) {
		nanosleep(&ts, NULL);
		rv = ticket ? gnutls_session_ticket_send(session, 1, 0) :
		    gnutls_session_key_update(session, 0);
		if (rv < 0)
			break;		/* the client has gone */
		sent++;
	}
	printf("sent %d\n", sent);
	gnutls_deinit(session);
	close(fd);
	return 0;
}
