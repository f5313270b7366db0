package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/zipnvr/zipnvr/hubd/internal/config"
	"github.com/zipnvr/zipnvr/internal/service"
	"github.com/zipnvr/zipnvr/systemd"
)

// serviceProgram is hubd as the service manager sees it.
var serviceProgram = service.Program{
	Name:          "hubd",
	Description:   "records this hub's cameras",
	Unit:          systemd.Hubd,
	DefaultConfig: "/etc/hubd/hubd.yaml",
	DataDir: func(path string) (string, error) {
		cfg, err := config.Load(path)
		if err != nil {
			return "", err
		}
		// The unit lets hubd write its data dir only: the control socket must be in it.
		dir, sock := filepath.Clean(cfg.Hub.DataDir), filepath.Clean(cfg.Hub.ControlSocket)
		if !strings.HasPrefix(sock, dir+string(filepath.Separator)) {
			return "", fmt.Errorf("hub.control_socket %s is outside hub.data_dir %s, which is all the service may write", sock, dir)
		}
		return dir, nil
	},
}

func cmdService(args []string, stdout, stderr io.Writer) error {
	return service.Command(serviceProgram, args, stdout, stderr)
}
