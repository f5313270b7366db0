# RTSP camera stand-in for Go integration tests (package testbed).
# Configuration comes as one JSON argument so that Go owns every default;
# the script prints "READY <port>" once the server socket is bound.
import json
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def pipeline(c):
    src = (
        "videotestsrc is-live=true pattern=smpte ! "
        "video/x-raw,width=%d,height=%d,framerate=%d/1 ! timeoverlay ! "
        % (c["width"], c["height"], c["fps"])
    )
    if c["codec"] == "h265":
        enc = (
            "x265enc tune=zerolatency speed-preset=superfast bitrate=%d key-int-max=%d "
            "option-string=scenecut=0:bframes=0:pools=1 ! video/x-h265,profile=main ! "
            "h265parse config-interval=-1 ! rtph265pay name=pay0 pt=96 config-interval=-1"
            % (c["bitrate"], c["keyint"])
        )
    else:
        enc = (
            "x264enc tune=zerolatency speed-preset=superfast bitrate=%d key-int-max=%d "
            "bframes=0 option-string=scenecut=0 threads=1 ! video/x-h264,profile=main ! "
            "h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1"
            % (c["bitrate"], c["keyint"])
        )
    return "( " + src + enc + " )"


def main():
    c = json.loads(sys.argv[1])
    Gst.init(None)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(c["port"]))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(c))
    # A shared pipeline rewinds RTP timestamps for earlier clients when a new
    # one plays (gst 1.22), so every client gets its own encoder.
    factory.set_shared(False)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP | GstRtsp.RTSPLowerTrans.TCP)

    # Without a pool the per-client RTP/RTCP sockets bind to 0.0.0.0.
    pool = GstRtspServer.RTSPAddressPool()
    if not pool.add_range("127.0.0.1", "127.0.0.1", c["rtp_min"], c["rtp_max"], 0):
        sys.exit("cannot add address range to pool")
    factory.set_address_pool(pool)

    if c["auth"]:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        if c["auth"] == "basic":
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(c["user"], c["pass"]), token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        elif c["auth"] == "digest":
            auth.add_digest(c["user"], c["pass"], token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        else:
            sys.exit("unknown auth method %r" % c["auth"])
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.new_from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )

    server.get_mount_points().add_factory(c["path"], factory)
    if server.attach(None) == 0:
        sys.exit("cannot listen on 127.0.0.1:%s" % c["port"])

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("READY %d" % server.get_bound_port(), flush=True)
    loop.run()


main()
