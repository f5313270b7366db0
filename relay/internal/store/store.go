// Package store keeps relay's metadata (tenants, users, hubs, cameras,
// channels, recordings) behind the Store interface; Bolt is the embedded
// default implementation, so another engine can follow without touching
// the API.
package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Errors of every Store implementation (compare with errors.Is).
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrChannelGone: a recording names a channel that is deleted or absent.
	ErrChannelGone = errors.New("channel deleted or absent")
	// ErrNotEmpty: a channel still has recordings and cannot be purged.
	ErrNotEmpty = errors.New("channel still has recordings")
	ErrClosed   = errors.New("store closed")
)

// Store is relay's metadata. Every method is safe for concurrent use. Times
// go in and come out in UTC; recording times have millisecond precision.
type Store interface {
	CreateTenant(ctx context.Context, t Tenant) error
	Tenant(ctx context.Context, id string) (Tenant, error)

	// CreateUser stores u; u.TokenHash must be unique (ErrExists).
	CreateUser(ctx context.Context, u User) error
	UserByTokenHash(ctx context.Context, hash []byte) (User, error)

	// CreateHub stores h; hub ids are global (ErrExists).
	CreateHub(ctx context.Context, h Hub) error
	Hub(ctx context.Context, id string) (Hub, error)
	HubByCredentialHash(ctx context.Context, hash []byte) (Hub, error)

	// SyncCameras makes cams the hub's camera list in one transaction:
	// cameras not in it are marked Removed, a camera seen for the first
	// time gets a channel (so its uploads can start at once). A camera
	// whose channel a user deleted gets none back (see EnsureChannel).
	// It returns the hub's cameras, removed ones included.
	SyncCameras(ctx context.Context, hub Hub, cams []camera.Camera, opts ChannelOptions) ([]Camera, error)
	Camera(ctx context.Context, id string) (Camera, error)
	// Cameras lists a tenant's cameras ("" = every tenant's), by id.
	Cameras(ctx context.Context, tenant string) ([]Camera, error)

	// EnsureChannel returns the camera's channel, creating one when it
	// has none; created says which.
	EnsureChannel(ctx context.Context, cameraID string, opts ChannelOptions) (ch Channel, created bool, err error)
	// Channel returns a channel, deleted ones included (check Deleted).
	Channel(ctx context.Context, id string) (Channel, error)
	Channels(ctx context.Context, q ChannelQuery) ([]Channel, error)
	// DeleteChannel marks a channel deleted and detaches it from its
	// camera; its recordings are removed later (retention), as removing
	// a million objects does not fit in a request.
	DeleteChannel(ctx context.Context, id string, at time.Time) error
	// PurgeChannel forgets a deleted channel that has no recordings left.
	PurgeChannel(ctx context.Context, id string) error

	// PutRecordings stores recordings in one durable transaction
	// (concurrent callers share commits). Idempotent: a recording whose
	// ID is stored already is returned as stored, Created false. All or
	// nothing: ErrChannelGone when any names a deleted channel.
	PutRecordings(ctx context.Context, recs []Recording) ([]PutResult, error)
	Recording(ctx context.Context, id string) (Recording, error)
	// Recordings lists a channel's recordings that overlap [From, To),
	// by start time, at most Limit, from an index seek (never a scan).
	Recordings(ctx context.Context, q RecordingQuery) ([]Recording, error)
	DeleteRecordings(ctx context.Context, ids []string) error

	// Clips (clips.go). PutClip creates or replaces; OpenClips lists those
	// in progress, so a restarted relay resumes them.
	PutClip(ctx context.Context, c Clip) error
	Clip(ctx context.Context, id string) (Clip, error)
	ChannelClips(ctx context.Context, channel string) ([]Clip, error) // "" = every channel
	OpenClips(ctx context.Context) ([]Clip, error)
	DeleteClip(ctx context.Context, id string) error
	PutClipLayout(ctx context.Context, id string, layout []byte) error
	ClipLayout(ctx context.Context, id string) ([]byte, error)

	// Snapshots (snapshots.go), listed newest first; channel "" = every channel.
	PutSnapshot(ctx context.Context, s Snapshot) error
	Snapshot(ctx context.Context, id string) (Snapshot, error)
	ChannelSnapshots(ctx context.Context, channel string, limit int) ([]Snapshot, error)
	DeleteSnapshot(ctx context.Context, id string) error

	Close() error
}

// Tenant is one customer: users, hubs, cameras and channels belong to one.
type Tenant struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// User holds an API token of one tenant; only the token's SHA-256 is kept.
type User struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Name      string    `json:"name"`
	TokenHash []byte    `json:"token_hash"`
	Created   time.Time `json:"created"`
}

// Hub is one home hub; only its credential's SHA-256 is kept.
type Hub struct {
	ID             string    `json:"id"`
	Tenant         string    `json:"tenant"`
	CredentialHash []byte    `json:"credential_hash"`
	Created        time.Time `json:"created"`
}

// Camera is a camera as its hub last reported it. Camera.Password is never
// set (camera.Camera's JSON drops it, and the API never fills it).
type Camera struct {
	// ID is "<hub>.<camera id on the hub>": hub ids have no dot, so the
	// first dot splits it, and a hub that reports again maps to the same ids.
	ID       string        `json:"id"`
	Tenant   string        `json:"tenant"`
	Hub      string        `json:"hub"`
	Camera   camera.Camera `json:"camera"`
	Removed  bool          `json:"removed,omitempty"`
	Channel  string        `json:"channel,omitempty"` // "" when it has none (deleted by a user)
	Created  time.Time     `json:"created"`
	Reported time.Time     `json:"reported"`
}

// Channel is a camera registered for recording: it owns the object prefix
// of its recordings and their retention.
type Channel struct {
	ID            string    `json:"id"`
	Tenant        string    `json:"tenant"`
	Camera        string    `json:"camera"`
	Prefix        string    `json:"prefix"` // <tenant>/<channel>/
	RetentionDays int       `json:"retention_days"`
	Created       time.Time `json:"created"`
	Deleted       time.Time `json:"deleted,omitzero"`
}

// IsDeleted says whether a user deleted the channel.
func (c Channel) IsDeleted() bool { return !c.Deleted.IsZero() }

// Recording is one uploaded, verified segment.
type Recording struct {
	ID      string    `json:"id"` // RecordingID(Key)
	Channel string    `json:"channel"`
	Camera  string    `json:"camera"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Bytes   int64     `json:"bytes"`
	Codec   string    `json:"codec"`
	Key     string    `json:"key"`
	ETag    string    `json:"etag"`
	Created time.Time `json:"created"`
}

// PutResult is the outcome for one recording of PutRecordings.
type PutResult struct {
	Recording Recording
	Created   bool // false: it was stored already (a repeated notify)
}

// ChannelOptions are what a new channel starts with.
type ChannelOptions struct {
	RetentionDays int
	Now           time.Time
}

// ChannelQuery selects channels.
type ChannelQuery struct {
	Tenant         string // "" = every tenant
	IncludeDeleted bool
}

// RecordingQuery selects a channel's recordings that overlap [From, To).
type RecordingQuery struct {
	Channel  string
	From, To time.Time
	Limit    int
	// After continues a listing after this recording (its Cursor).
	After *Cursor
}

// Cursor is a position in a channel's recordings.
type Cursor struct {
	Start time.Time
	ID    string
}

// MaxRecordingDuration bounds a recording's length: a listing that starts at
// From seeks this much earlier to find recordings that began before From and
// still overlap it, so listings stay an index seek.
const MaxRecordingDuration = time.Hour

// RecordingID is a recording's id: a hash of its object key, so that a
// repeated notify of the same upload finds the same recording.
func RecordingID(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:16])
}

// CameraID is the API id of camera cam of hub.
func CameraID(hub, cam string) string { return hub + "." + cam }

// SplitCameraID splits an API camera id at its first dot.
func SplitCameraID(id string) (hub, cam string, ok bool) {
	return strings.Cut(id, ".")
}

var hubIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidHubID says whether id may name a hub: camera ids ("<hub>.<cam>")
// need hub ids without dots.
func ValidHubID(id string) bool { return hubIDPattern.MatchString(id) }

// ChannelPrefix is the object prefix of a channel's media.
func ChannelPrefix(tenant, channel string) string { return tenant + "/" + channel + "/" }

// NewID returns a random id with a kind prefix (tn, us, ch): 64 random bits,
// lower-case hex, safe in URLs and object keys.
func NewID(kind string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return kind + "_" + hex.EncodeToString(b)
}

// MS truncates t to the millisecond precision the store keeps, in UTC.
func MS(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
