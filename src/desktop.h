#ifndef OUTBOX_DESKTOP_H
#define OUTBOX_DESKTOP_H

/*
 * A desktop notification (org.freedesktop.Notifications) when a session
 * bus is reachable; nothing, and nothing loaded, when none is.  GIO is
 * loaded with dlopen() for it.  Failures are silent: a notice is a
 * courtesy, the mail's fate does not hang on it.  Returns 0 if the notice
 * was shown, -1 if not.
 */
int	 desktop_notify(const char *summary, const char *body);

#endif
