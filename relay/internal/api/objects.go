package api

import (
	"context"
	"time"

	"github.com/zipnvr/zipnvr/relay/internal/media"
)

// ObjectStore is what the API needs of object storage (S3, or the local
// store behind relay-signed URLs): presigned URLs, and a HEAD to verify an
// upload before it is recorded.
type ObjectStore interface {
	PresignPut(ctx context.Context, key string, size int64, contentType string, expiry time.Duration) (Presigned, error)
	PresignGet(ctx context.Context, key string, expiry time.Duration) (Presigned, error)
	// Head returns an error wrapping ErrObjectNotFound when key is absent.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	Delete(ctx context.Context, key string) error
}

// The API speaks relay/internal/media's types; *media.S3 and *media.Local
// implement ObjectStore.
type (
	Presigned  = media.Presigned
	ObjectInfo = media.ObjectInfo
)

// ErrObjectNotFound is wrapped by Head when the object does not exist.
var ErrObjectNotFound = media.ErrNotFound
