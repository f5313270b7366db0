// Package proto holds the messages hubd and relay exchange: the hub API of
// relay (camera reports, upload URLs, upload notices) and its JSON errors.
// Both sides encode and decode these types, so the wire cannot drift.
package proto

import (
	"net/http"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Paths of relay's hub API; a hub authenticates with its credential as a
// bearer token.
const (
	PathHubCameras    = "/api/v1/hub/cameras"    // PUT CameraReport -> CameraReportResult
	PathHubUploads    = "/api/v1/hub/uploads"    // POST UploadRequest -> Upload
	PathHubRecordings = "/api/v1/hub/recordings" // POST RecordingNotice -> Recording
)

// CameraReport is a hub's full camera list. camera.Camera drops passwords
// from its JSON: they never leave the hub.
type CameraReport struct {
	Cameras []camera.Camera `json:"cameras"`
}

// CameraReportResult is relay's view of the hub's cameras after a report,
// removed ones included.
type CameraReportResult struct {
	Cameras []ReportedCamera `json:"cameras"`
}

// ReportedCamera maps a hub's camera to relay's ids.
type ReportedCamera struct {
	ID       string `json:"id"`                // the hub's camera id
	CameraID string `json:"camera"`            // relay's: "<hub>.<id>"
	Channel  string `json:"channel,omitempty"` // "" when a user deleted it: uploads are refused
	Removed  bool   `json:"removed,omitempty"`
}

// UploadRequest asks for a presigned PUT for one closed segment.
type UploadRequest struct {
	Camera string    `json:"camera"` // the hub's camera id
	Start  time.Time `json:"start"`  // wall clock, UTC, ms precision
	End    time.Time `json:"end"`
	Bytes  int64     `json:"bytes"`
	Codec  string    `json:"codec"`
	MD5    string    `json:"md5"` // hex MD5 of the file
}

// Upload is a presigned PUT. The key depends only on the channel, camera
// and start, so asking again after a crash yields the same key (a re-upload
// overwrites, it never duplicates).
type Upload struct {
	Key    string `json:"key"`
	URL    string `json:"url"`
	Method string `json:"method"`
	// Headers must be sent as they are (the signature covers them).
	Headers http.Header `json:"headers"`
	Expires time.Time   `json:"expires"`
}

// RecordingNotice tells relay an upload is done; relay checks the object
// (size and MD5 against its ETag) before it records it.
type RecordingNotice struct {
	Key string `json:"key"`
	UploadRequest
}

// Recording is one stored recording. URL (a presigned GET) is set in
// listings for users.
type Recording struct {
	ID         string     `json:"id"`
	Channel    string     `json:"channel"`
	Camera     string     `json:"camera"`
	Start      time.Time  `json:"start"`
	End        time.Time  `json:"end"`
	Bytes      int64      `json:"bytes"`
	Codec      string     `json:"codec"`
	Key        string     `json:"key"`
	ETag       string     `json:"etag"`
	Created    time.Time  `json:"created"`
	URL        string     `json:"url,omitempty"`
	URLExpires *time.Time `json:"url_expires,omitempty"`
}

// Error is every error answer of relay: {"error": "..."} with a 4xx/5xx status.
type Error struct {
	Error string `json:"error"`
}
