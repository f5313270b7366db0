// Package systemd holds the systemd units of hubd and relay: the packages
// install these files as they are, `service install` renders them.
package systemd

import _ "embed"

// Hubd is systemd/hubd.service.
//
//go:embed hubd.service
var Hubd string

// Relay is systemd/relay.service.
//
//go:embed relay.service
var Relay string
