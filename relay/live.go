package main

import (
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zipnvr/zipnvr/pkg/token"
	"github.com/zipnvr/zipnvr/relay/internal/config"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/live"
)

// newLive builds the live-view broker from the config: tokens are signed
// with live.token_key, else with a key derived from the admin token.
func newLive(cfg *config.Config, adminToken string, links *hublink.Registry, reg prometheus.Registerer, log *slog.Logger) (*live.Service, error) {
	secret := adminToken
	if cfg.Live.TokenKey != "" {
		secret = cfg.Live.TokenKey
	}
	ice := live.ICE{UDPPort: cfg.Live.ICE.UDPPort, Interfaces: cfg.Live.ICE.Interfaces, Loopback: cfg.Live.ICE.Loopback}
	if cfg.Live.ICE.PublicIP != "" {
		ice.PublicIPs = []string{cfg.Live.ICE.PublicIP}
	}
	for _, s := range cfg.Live.ICE.Servers {
		ice.Servers = append(ice.Servers, live.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return live.New(live.Config{
		PublicURL:   cfg.PublicURL,
		Key:         token.DeriveKey(secret),
		Hubs:        links,
		TokenTTL:    cfg.Live.TokenTTL(),
		StopAfter:   cfg.Live.StopAfter(),
		ICE:         ice,
		RecordsPath: filepath.Join(cfg.DataDir, "live.db"),
		Registerer:  reg,
		Logger:      log,
	})
}
