#!/usr/bin/python3
"""notifyd.py: a desktop notification daemon for the tests.

    notifyd.py LOGFILE

Owns org.freedesktop.Notifications on the session bus named by
DBUS_SESSION_BUS_ADDRESS and appends each Notify call to LOGFILE as one JSON
object per line: {"app": ..., "icon": ..., "summary": ..., "body": ...}.
Writes "ready" to stdout once the name is owned.
"""
import json
import sys

from gi.repository import Gio, GLib

XML = """
<node>
  <interface name="org.freedesktop.Notifications">
    <method name="Notify">
      <arg type="s" direction="in"/><arg type="u" direction="in"/>
      <arg type="s" direction="in"/><arg type="s" direction="in"/>
      <arg type="s" direction="in"/><arg type="as" direction="in"/>
      <arg type="a{sv}" direction="in"/><arg type="i" direction="in"/>
      <arg type="u" direction="out"/>
    </method>
    <method name="GetCapabilities"><arg type="as" direction="out"/></method>
    <method name="GetServerInformation">
      <arg type="s" direction="out"/><arg type="s" direction="out"/>
      <arg type="s" direction="out"/><arg type="s" direction="out"/>
    </method>
    <method name="CloseNotification"><arg type="u" direction="in"/></method>
  </interface>
</node>
"""

counter = [0]


def on_call(conn, sender, path, iface, method, params, invocation):
    if method == "Notify":
        app, _id, icon, summary, body, _actions, _hints, _t = params.unpack()
        with open(sys.argv[1], "a") as f:
            f.write(json.dumps({"app": app, "icon": icon, "summary": summary,
                                "body": body}) + "\n")
        counter[0] += 1
        invocation.return_value(GLib.Variant("(u)", (counter[0],)))
    elif method == "GetCapabilities":
        invocation.return_value(GLib.Variant("(as)", (["body"],)))
    elif method == "GetServerInformation":
        invocation.return_value(GLib.Variant("(ssss)", ("notifyd", "outbox", "1", "1.2")))
    else:
        invocation.return_value(None)


def main():
    info = Gio.DBusNodeInfo.new_for_xml(XML)
    loop = GLib.MainLoop()

    def on_bus(conn, name):
        conn.register_object("/org/freedesktop/Notifications", info.interfaces[0],
                             on_call, None, None)

    def on_name(conn, name):
        print("ready", flush=True)

    def on_lost(conn, name):
        loop.quit()

    Gio.bus_own_name(Gio.BusType.SESSION, "org.freedesktop.Notifications",
                     Gio.BusNameOwnerFlags.NONE, on_bus, on_name, on_lost)
    loop.run()


if __name__ == "__main__":
    main()
