#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <gio/gio.h>

#include "desktop.h"
#include "secret.h"

#define NOTIFY_TIMEOUT_MS	2000

struct libgio {
	void		*h;
	GDBusConnection	*(*bus_get)(GBusType, GCancellable *, GError **);
	GVariant	*(*new_parsed)(const gchar *, ...);
	GVariant	*(*call)(GDBusConnection *, const gchar *,
			    const gchar *, const gchar *, const gchar *,
			    GVariant *, const GVariantType *, GDBusCallFlags,
			    gint, GCancellable *, GError **);
	void		 (*unref)(gpointer);
	void		 (*variant_unref)(GVariant *);
	void		 (*error_free)(GError *);
	gchar		*(*make_valid)(const gchar *, gssize);
	void		 (*free)(gpointer);
};

static int
load(struct libgio *g)
{
	memset(g, 0, sizeof(*g));
	if ((g->h = dlopen("libgio-2.0.so.0", RTLD_NOW | RTLD_LOCAL)) == NULL)
		return -1;
	*(void **)&g->bus_get = dlsym(g->h, "g_bus_get_sync");
	*(void **)&g->new_parsed = dlsym(g->h, "g_variant_new_parsed");
	*(void **)&g->call = dlsym(g->h, "g_dbus_connection_call_sync");
	*(void **)&g->unref = dlsym(g->h, "g_object_unref");
	*(void **)&g->variant_unref = dlsym(g->h, "g_variant_unref");
	*(void **)&g->error_free = dlsym(g->h, "g_error_free");
	*(void **)&g->make_valid = dlsym(g->h, "g_utf8_make_valid");
	*(void **)&g->free = dlsym(g->h, "g_free");
	if (g->bus_get == NULL || g->new_parsed == NULL || g->call == NULL ||
	    g->unref == NULL || g->variant_unref == NULL ||
	    g->error_free == NULL || g->make_valid == NULL || g->free == NULL)
		return -1;
	return 0;
}

int
desktop_notify(const char *summary, const char *body)
{
	struct libgio	 g;
	GDBusConnection	*bus;
	GVariant	*args, *reply;
	GError		*err = NULL;
	gchar		*sum, *text;
	int		 rv = -1;

	if (!session_bus_find() || load(&g) == -1)
		return -1;
	if ((bus = g.bus_get(G_BUS_TYPE_SESSION, NULL, &err)) == NULL) {
		g.error_free(err);
		return -1;
	}
	/* The strings go in as values (%s), never parsed, and as UTF-8. */
	sum = g.make_valid(summary, -1);
	text = g.make_valid(body, -1);
	args = g.new_parsed("('outbox', uint32 0, 'mail-send', %s, %s, "
	    "@as [], @a{sv} {}, -1)", sum, text);
	g.free(sum);
	g.free(text);
	reply = g.call(bus, "org.freedesktop.Notifications",
	    "/org/freedesktop/Notifications", "org.freedesktop.Notifications",
	    "Notify", args, NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START,
	    NOTIFY_TIMEOUT_MS, NULL, &err);
	if (reply != NULL) {
		g.variant_unref(reply);
		rv = 0;
	} else
		g.error_free(err);
	g.unref(bus);
	return rv;
}
