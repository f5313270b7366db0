package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zipnvr/zipnvr/relay/internal/api"
	"github.com/zipnvr/zipnvr/relay/internal/clips"
	"github.com/zipnvr/zipnvr/relay/internal/config"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// newClips builds the clip coordinator over relay's store, objects and hub
// links; serve runs it (clips in progress resume after a restart).
func newClips(cfg *config.Config, st store.Store, objects api.ObjectStore, links *hublink.Registry, reg prometheus.Registerer, log *slog.Logger) (*clips.Coordinator, error) {
	o, ok := objects.(clips.Objects)
	if !ok {
		return nil, fmt.Errorf("clips: the object store %T cannot compose objects", objects)
	}
	return clips.New(clips.Config{Store: st, Objects: o, Hubs: links, Logger: log, Registerer: reg, MaxWait: cfg.Clips.MaxWait()})
}
