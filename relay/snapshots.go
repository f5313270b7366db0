package main

import (
	"fmt"
	"log/slog"

	"github.com/zipnvr/zipnvr/relay/internal/api"
	"github.com/zipnvr/zipnvr/relay/internal/config"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/snapshots"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// newSnapshots builds the snapshot service over relay's store, objects and
// hub links; it registers the hubs' upload requests, so it is built before
// hubs connect. The caller Closes it before the store.
func newSnapshots(cfg *config.Config, st store.Store, objects api.ObjectStore, links *hublink.Registry, log *slog.Logger) (*snapshots.Service, error) {
	o, ok := objects.(snapshots.Objects)
	if !ok {
		return nil, fmt.Errorf("snapshots: the object store %T cannot read byte ranges", objects)
	}
	return snapshots.New(snapshots.Config{Store: st, Objects: o, Links: links, UploadExpiry: cfg.UploadURLExpiry(), Logger: log})
}
