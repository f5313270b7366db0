package zipato

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// LoadFile reads a device tree file (the sample's shape) into cameras.
func LoadFile(path string) ([]camera.Camera, []Problem, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, nil, err
	}
	t, err := ParseTree(data)
	if err != nil {
		return nil, nil, err
	}
	cams, problems := t.Cameras()
	return cams, problems, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTreeBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxTreeBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxTreeBytes)
	}
	return data, nil
}

// FileWatch follows a device tree file: it is read again when its size or
// modification time changes. A file that does not parse is logged and the
// cameras read before stay.
type FileWatch struct {
	Path      string
	Interval  time.Duration // default 5 s
	OnCameras func([]camera.Camera)
	Logger    *slog.Logger
}

// Run polls until ctx ends (a box's flash file system may lack inotify).
func (w FileWatch) Run(ctx context.Context) {
	if w.Interval <= 0 {
		w.Interval = 5 * time.Second
	}
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "zipato", "device_tree_file", w.Path)
	var lastStat os.FileInfo
	var lastData []byte
	var lastErr string
	first := true
	for {
		st, err := os.Stat(w.Path)
		changed := err == nil && (lastStat == nil || st.Size() != lastStat.Size() || !st.ModTime().Equal(lastStat.ModTime()))
		if err != nil && err.Error() != lastErr {
			log.Warn("device tree file not readable; keeping its cameras", "err", err)
			lastErr = err.Error()
		}
		if changed {
			lastStat = st
			data, err := readBounded(w.Path)
			if err == nil && !bytes.Equal(data, lastData) {
				var t *Tree
				if t, err = ParseTree(data); err == nil {
					lastData, lastErr = data, ""
					cams, problems := t.Cameras()
					for _, p := range problems {
						log.Warn("device tree endpoint not usable as a camera", "endpoint", p.Endpoint, "name", p.Name, "reason", p.Reason)
					}
					if !first {
						log.Info("device tree file changed", "cameras", len(cams))
					}
					if w.OnCameras != nil {
						w.OnCameras(cams)
					}
				}
			}
			if err != nil && err.Error() != lastErr {
				log.Warn("device tree file not usable; keeping the cameras read before", "err", err)
				lastErr = err.Error()
			}
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.Interval):
		}
	}
}
