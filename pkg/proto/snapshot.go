package proto

import (
	"fmt"
	"time"
)

// Snapshots and clips over the link.
//
// Agent snapshot: relay creates the entry, then asks the hub (LinkSnapshot);
// the hub captures a JPEG (the camera's snapshot URL, else one frame of its
// MJPEG stream), asks relay for a presigned PUT of exactly that size
// (LinkSnapshotUpload, hub -> relay), uploads it and answers. A scheduled
// thumbnail is the same upload with no entry yet: relay creates one.
//
// Clip coverage: while a clip waits for recordings, relay asks the hub what
// it still holds for the missing times (LinkCoverage): segments not yet
// uploaded will arrive; times the hub holds nothing for are gaps.

// Link request types.
const (
	LinkSnapshot       = "snapshot"        // relay -> hub: SnapshotRequest -> SnapshotResult
	LinkSnapshotUpload = "snapshot.upload" // hub -> relay: SnapshotUploadRequest -> SnapshotUpload
	LinkCoverage       = "coverage"        // relay -> hub: CoverageRequest -> Coverage
)

// SnapshotContentType is the only image type snapshots take.
const SnapshotContentType = "image/jpeg"

// SnapshotRequest asks a hub to capture one camera's picture and upload it
// for relay's snapshot entry Snapshot.
type SnapshotRequest struct {
	Camera   string `json:"camera"`    // the hub's camera id
	Snapshot string `json:"snapshot"`  // relay's snapshot id, quoted back in the upload request
	MaxBytes int64  `json:"max_bytes"` // larger captures are refused
}

// Validate checks what both ends must agree on.
func (r SnapshotRequest) Validate() error {
	switch {
	case r.Camera == "":
		return fmt.Errorf("snapshot: camera missing")
	case r.Snapshot == "":
		return fmt.Errorf("snapshot: snapshot id missing")
	case r.MaxBytes < 1:
		return fmt.Errorf("snapshot: max_bytes %d", r.MaxBytes)
	}
	return nil
}

// SnapshotResult is the hub's answer once the image is uploaded.
type SnapshotResult struct {
	Bytes    int64     `json:"bytes"`
	Captured time.Time `json:"captured"`
}

// SnapshotUploadRequest asks relay for a presigned PUT of one JPEG. Without
// Snapshot it is a scheduled thumbnail and relay creates the entry.
type SnapshotUploadRequest struct {
	Snapshot string    `json:"snapshot,omitempty"`
	Camera   string    `json:"camera"`
	Bytes    int64     `json:"bytes"`
	Captured time.Time `json:"captured"`
}

// SnapshotUpload is relay's answer: the entry and where to PUT the image.
type SnapshotUpload struct {
	Snapshot string `json:"snapshot"`
	Upload   Upload `json:"upload"`
}

// CoverageRequest asks a hub what its ring holds of a camera's [From, To).
type CoverageRequest struct {
	Camera string    `json:"camera"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// Interval is a span of wall-clock time.
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Coverage is what a hub will still upload for a camera in the asked range.
type Coverage struct {
	// Pending are the spans of closed segments not uploaded yet, merged
	// where they touch, oldest first.
	Pending []Interval `json:"pending"`
	// RecordingSince is the start of the segment being written; zero when
	// the camera is not recording now.
	RecordingSince time.Time `json:"recording_since,omitzero"`
}

// MaxCoverageIntervals bounds Coverage.Pending (the link's frame limit).
const MaxCoverageIntervals = 1000
