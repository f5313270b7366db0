package main

import (
	"io"

	"github.com/zipnvr/zipnvr/internal/service"
	"github.com/zipnvr/zipnvr/relay/internal/config"
	"github.com/zipnvr/zipnvr/systemd"
)

// serviceProgram is relay as the service manager sees it.
var serviceProgram = service.Program{
	Name:          "relay",
	Description:   "zipnvr's cloud API: metadata and presigned URLs",
	Unit:          systemd.Relay,
	DefaultConfig: "/etc/relay/relay.yaml",
	DataDir: func(path string) (string, error) {
		cfg, err := config.Load(path)
		if err != nil {
			return "", err
		}
		return cfg.DataDir, nil
	},
}

func cmdService(args []string, stdout, stderr io.Writer) error {
	return service.Command(serviceProgram, args, stdout, stderr)
}
