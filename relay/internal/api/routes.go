package api

import (
	"net/http"
	"strings"
)

// route is one entry of the API: the ServeMux pattern (method and path with
// {id} wildcards), who may call it, and its handler.
type route struct {
	method, path string
	access       access
	handle       func(s *Server, w http.ResponseWriter, r *http.Request, p principal) error
}

// Prefix of the REST API.
const Prefix = "/api/v1"

// routeTable is the one list of routes: the server registers it and the
// OpenAPI test compares it with relay/openapi.yaml.
func routeTable() []route {
	return []route{
		{"GET", "/healthz", public, (*Server).healthz},
		{"GET", "/metrics", public, (*Server).serveMetrics},

		{"POST", Prefix + "/admin/tenants", adminOnly, (*Server).createTenant},
		{"POST", Prefix + "/admin/tenants/{id}/users", adminOnly, (*Server).createUser},
		{"POST", Prefix + "/admin/tenants/{id}/hubs", adminOnly, (*Server).createHub},

		{"PUT", Prefix + "/hub/cameras", hubOnly, (*Server).reportCameras},
		{"POST", Prefix + "/hub/uploads", hubOnly, (*Server).presignUpload},
		{"POST", Prefix + "/hub/recordings", hubOnly, (*Server).notifyRecording},
		{"GET", Prefix + "/hub/link", hubOnly, (*Server).hubLink},
		{"GET", Prefix + "/hub/live", hubOnly, (*Server).hubLive},

		{"GET", Prefix + "/cameras", users, (*Server).listCameras},
		{"GET", Prefix + "/cameras/{id}", users, (*Server).getCamera},
		{"POST", Prefix + "/cameras/{id}/channel", users, (*Server).ensureChannel},
		// PTZ (ptz.go), through the camera's hub control link.
		{"POST", Prefix + "/cameras/{id}/ptz/{action}", users, (*Server).ptzAction},
		{"POST", Prefix + "/cameras/{id}/ptz/preset/{n}", users, (*Server).ptzPreset},
		{"GET", Prefix + "/channels", users, (*Server).listChannels},
		{"GET", Prefix + "/channels/{id}", users, (*Server).getChannel},
		{"DELETE", Prefix + "/channels/{id}", users, (*Server).deleteChannel},
		{"GET", Prefix + "/channels/{id}/recordings", users, (*Server).listRecordings},

		// Snapshots (snapshots.go): POST ?source=agent asks the hub.
		{"POST", Prefix + "/channels/{id}/snapshots", users, (*Server).createSnapshot},
		{"GET", Prefix + "/channels/{id}/snapshots", users, (*Server).listSnapshots},
		{"GET", Prefix + "/snapshots/{id}", users, (*Server).getSnapshot},

		// Clips (clips.go); the playlist URL is signed, not bearer-authorized.
		{"POST", Prefix + "/channels/{id}/clips", users, (*Server).createClip},
		{"GET", Prefix + "/channels/{id}/clips", users, (*Server).listClips},
		{"GET", Prefix + "/clips/{id}", users, (*Server).getClip},
		{"DELETE", Prefix + "/clips/{id}", users, (*Server).deleteClip},
		{"PUT", Prefix + "/clips/{id}/pin", users, (*Server).pinClip},
		{"DELETE", Prefix + "/clips/{id}/pin", users, (*Server).unpinClip},
		{"GET", Prefix + "/clips/{id}/playlist.m3u8", public, (*Server).clipPlaylist},

		// Live view (live.go): the stream token routes are public here; the
		// stream token is checked by the live service.
		{"POST", Prefix + "/channels/{id}/stream-token", users, (*Server).createStreamToken},
		{"GET", Prefix + "/channels/{id}/live", users, (*Server).liveState},
		{"GET", Prefix + "/channels/{id}/live/sessions", users, (*Server).liveSessions},
		{"POST", Prefix + "/channels/{id}/whep", public, (*Server).whep},
		{"DELETE", Prefix + "/channels/{id}/whep/{session}", public, (*Server).deleteWHEP},
		{"GET", Prefix + "/channels/{id}/live/ws", public, (*Server).liveWS},
		{"GET", Prefix + "/channels/{id}/live/mjpeg", public, (*Server).liveMJPEG},
		{"GET", "/{$}", public, (*Server).webPage},
		{"GET", "/web/{file}", public, (*Server).webPage},
	}
}

// Route is a method and path pattern of the API, as ServeMux and OpenAPI
// write it (e.g. GET /api/v1/cameras/{id}).
type Route struct {
	Method, Path string
	// Public routes take no token.
	Public bool
}

// Routes lists every route the server registers.
func Routes() []Route {
	var out []Route
	for _, rt := range routeTable() {
		// "/{$}" (ServeMux: exactly "/") is "/" in OpenAPI.
		out = append(out, Route{Method: rt.method, Path: strings.TrimSuffix(rt.path, "{$}"), Public: rt.access == public})
	}
	return out
}
