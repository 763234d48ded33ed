# A test RTSP server (GStreamer's gst-rtsp-server through PyGObject, run with
# Debian's /usr/bin/python3): serves an H.264 Annex B file in a loop, in real
# time, at rtsp://127.0.0.1:PORT/clip, optionally behind Basic auth.
# Usage: rtsp_server.py PORT FILE FPS [USER PASSWORD]
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, path, fps = sys.argv[1], sys.argv[2], sys.argv[3]
user, password = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else ("", "")

server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    '( multifilesrc location="%s" loop=true caps="video/x-h264,stream-format=byte-stream,framerate=%s/1" '
    "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )" % (path, fps)
)
factory.set_shared(True)
if user:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken.new()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    factory.set_permissions(perms)
server.get_mount_points().add_factory("/clip", factory)
if server.attach(None) == 0:
    print("rtsp_server: cannot listen on port %s" % port, flush=True)
    sys.exit(1)
print("ready", flush=True)
GLib.MainLoop().run()
