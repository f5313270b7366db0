package config

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/pkg/token"
)

// Live configures live view: stream tokens, when an idle stream stops, and
// how viewers reach relay over WebRTC.
type Live struct {
	// TokenSeconds: how long a new stream token may start a session.
	TokenSeconds int `yaml:"token_seconds"`
	// StopAfterSeconds: a stream without viewers this long is stopped (the
	// hub stops pulling the camera).
	StopAfterSeconds float64 `yaml:"stop_after_seconds"`
	// TokenKey signs stream tokens. Empty: derived from the admin token
	// (changing that then invalidates tokens in flight, which live 60 s).
	TokenKey string  `yaml:"token_key"`
	ICE      LiveICE `yaml:"ice"`
}

// LiveICE is the WebRTC side of relay.
type LiveICE struct {
	// UDPPort, when set, serves every viewer on this one UDP port (one
	// firewall rule); 0: an ephemeral port per viewer.
	UDPPort int `yaml:"udp_port"`
	// PublicIP is announced instead of the host's own addresses: relay on a
	// cloud VM behind 1:1 NAT (an elastic IP).
	PublicIP string `yaml:"public_ip"`
	// Interfaces limits WebRTC to these network interfaces (empty: all).
	Interfaces []string `yaml:"interfaces"`
	// Loopback offers 127.0.0.1 as well (tests; a viewer on relay's host).
	Loopback bool `yaml:"loopback"`
	// Servers are STUN/TURN servers handed to viewers (TURN carries viewers
	// whose network blocks direct UDP) and used by relay itself.
	Servers []ICEServer `yaml:"servers"`
}

// ICEServer is one STUN or TURN server.
type ICEServer struct {
	URLs       []string `yaml:"urls"`
	Username   string   `yaml:"username"`
	Credential string   `yaml:"credential"`
}

func defaultLive() Live {
	return Live{TokenSeconds: 60, StopAfterSeconds: 5}
}

// TokenTTL and StopAfter as durations.
func (l Live) TokenTTL() time.Duration { return time.Duration(l.TokenSeconds) * time.Second }
func (l Live) StopAfter() time.Duration {
	return time.Duration(l.StopAfterSeconds * float64(time.Second))
}

// validate never quotes token_key or a TURN credential.
func (l Live) validate() error {
	bad := func(key, format string, a ...any) error {
		return &KeyError{Key: "live." + key, Reason: fmt.Sprintf(format, a...)}
	}
	if l.TokenSeconds < 10 || l.TokenSeconds > 3600 {
		return bad("token_seconds", "must be 10 to 3600, got %d", l.TokenSeconds)
	}
	if l.StopAfterSeconds < 1 || l.StopAfterSeconds > 600 {
		return bad("stop_after_seconds", "must be 1 to 600, got %g", l.StopAfterSeconds)
	}
	if l.TokenKey != "" && len(l.TokenKey) < token.MinKey {
		return bad("token_key", "must be at least %d characters (or empty: derived from the admin token), got %d", token.MinKey, len(l.TokenKey))
	}
	if p := l.ICE.UDPPort; p < 0 || p > 65535 {
		return bad("ice.udp_port", "must be 0 (ephemeral ports) or a port 1-65535, got %d", p)
	}
	if ip := l.ICE.PublicIP; ip != "" && net.ParseIP(ip) == nil {
		return bad("ice.public_ip", "must be an IP address, got %q", ip)
	}
	for i, s := range l.ICE.Servers {
		key := fmt.Sprintf("ice.servers[%d]", i)
		if len(s.URLs) == 0 {
			return bad(key+".urls", "at least one stun:, stuns:, turn: or turns: URL")
		}
		turn := false
		for _, u := range s.URLs {
			scheme, _, _ := strings.Cut(u, ":")
			switch scheme {
			case "stun", "stuns":
			case "turn", "turns":
				turn = true
			default:
				return bad(key+".urls", "%q: scheme must be stun, stuns, turn or turns", u)
			}
		}
		if turn && (s.Username == "" || s.Credential == "") {
			return bad(key, "a TURN server needs username and credential")
		}
	}
	return nil
}
