package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/zipnvr/zipnvr/relay/internal/api"
	"github.com/zipnvr/zipnvr/relay/internal/config"
	"github.com/zipnvr/zipnvr/relay/internal/media"
)

// mediaPath is where the local store serves its signed URLs.
const mediaPath = "/media/"

// openObjects returns relay's object storage: S3 when configured, else the
// local store in data_dir, whose signed-URL handler (nil for S3) relay
// must serve at mediaPath.
func openObjects(ctx context.Context, cfg *config.Config, adminToken string, log *slog.Logger) (api.ObjectStore, http.Handler, error) {
	if c := cfg.S3; c != nil {
		s3, err := media.NewS3(ctx, media.S3Config{Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket,
			AccessKey: c.AccessKey, SecretKey: c.SecretKey, PathStyle: c.PathStyle})
		if err != nil {
			return nil, nil, err
		}
		// S3 being down at start is not a config error: relay serves metadata
		// and answers 502 to media requests until it is back.
		if err := s3.Check(ctx); err != nil {
			log.Warn("S3 is not answering yet; media requests fail until it does", "bucket", c.Bucket, "err", err)
		}
		return s3, nil, nil
	}
	// The signing key follows from the admin token, so it survives restarts
	// without a second secret file; rotating the token only invalidates
	// URLs that expire within the hour anyway.
	secret := sha256.Sum256([]byte("zipnvr local media v1\n" + adminToken))
	local, err := media.NewLocal(media.LocalConfig{
		Dir:     filepath.Join(cfg.DataDir, "media"),
		BaseURL: strings.TrimRight(cfg.PublicURL, "/") + strings.TrimRight(mediaPath, "/"),
		Secret:  secret[:],
	})
	if err != nil {
		return nil, nil, fmt.Errorf("local media store: %w", err)
	}
	return local, local.Handler(), nil
}
