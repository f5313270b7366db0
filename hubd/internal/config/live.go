package config

import (
	"fmt"
	"net"
)

// Live configures live view on the hub: relay asks over the control link
// for a camera stream; LAN clients may hand hubd a stream token directly.
type Live struct {
	// LANListen, when set, is the address (host:port) where LAN clients
	// POST /live/start with a stream token (the seed's step 3: the client
	// gives the token to the agent). hubd does not hold the signing key: it
	// checks the token's form, relay URL and camera, and relay checks the
	// signature when hubd opens the stream socket, before the camera is pulled.
	// Empty (default): only relay starts streams.
	LANListen string `yaml:"lan_listen"`
	// MaxStreams bounds the camera streams pushed at once (each one is a
	// camera pull and an upload of its bitrate).
	MaxStreams int `yaml:"max_streams"`
}

func defaultLive() Live { return Live{MaxStreams: 4} }

func (l Live) validate() error {
	if l.LANListen != "" {
		if _, port, err := net.SplitHostPort(l.LANListen); err != nil || port == "" {
			return &KeyError{Key: "live.lan_listen", Reason: fmt.Sprintf("must be host:port (e.g. 0.0.0.0:8091) or empty, got %q", l.LANListen)}
		}
	}
	if l.MaxStreams < 1 || l.MaxStreams > 64 {
		return &KeyError{Key: "live.max_streams", Reason: fmt.Sprintf("must be 1 to 64, got %d", l.MaxStreams)}
	}
	return nil
}
