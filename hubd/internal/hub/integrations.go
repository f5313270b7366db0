package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/onvif"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/hubd/internal/snapshot"
	"github.com/zipnvr/zipnvr/hubd/internal/zipato"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/pkg/proto"
)

// integrations are the camera sources besides the config (the box's
// device tree from a file or over MQTT, ONVIF discovery) and the box's
// MQTT state and commands.
type integrations struct {
	mqtt *zipato.Client // nil without zipato.broker

	backlogMu  sync.Mutex
	backlogKey ring.Stats
	backlog    map[string]int
}

// recordFile keeps the record on/off asked over MQTT across restarts: a
// camera switched off for privacy must not record again after a power cut.
const recordFile = "record-overrides.json"

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// setupIntegrations runs in New: a device-tree file that cannot be read
// refuses the start with the key and the reason, like a bad config.
func (h *Hub) setupIntegrations() error {
	z := h.cfg.Zipato
	if err := h.loadOverrides(); err != nil {
		return err
	}
	if h.link != nil {
		h.link.Handle(proto.LinkPTZ, h.handleLinkPTZ)
	}
	if z.DeviceTreeFile != "" {
		cams, problems, err := zipato.LoadFile(z.DeviceTreeFile)
		if err != nil {
			return fmt.Errorf("zipato.device_tree_file: %s: %w", z.DeviceTreeFile, err)
		}
		for _, p := range problems {
			h.log.Warn("device tree endpoint not usable as a camera", "endpoint", p.Endpoint, "name", p.Name, "reason", p.Reason)
		}
		h.SetCameras(FromDeviceTree, cams)
	}
	if z.Broker != "" {
		c, err := zipato.New(zipato.Config{
			Broker: z.Broker, Username: z.Username, Password: z.Password, CAFile: z.CAFile,
			ClientID: h.cfg.MQTTClientID(), TopicRoot: z.TopicRoot(), QoS: byte(z.QoS),
			RequestTimeout: seconds(z.RequestTimeoutSeconds), ResyncInterval: seconds(z.ResyncSeconds),
			StateInterval: seconds(z.StateSeconds),
			OnCameras:     func(cams []camera.Camera) { h.SetCameras(FromZipato, cams) },
			Commands:      mqttCommands{h},
			State:         h.cameraStates,
			Logger:        h.log,
		})
		if err != nil {
			return err
		}
		h.integ.mqtt = c
	}
	h.OnCamerasChanged(func(cams []camera.Camera) {
		h.dropPTZ(cams)
		if h.integ.mqtt != nil {
			go h.integ.mqtt.PublishState() // a record on/off shows at once
		}
	})
	return nil
}

// runIntegrations starts the sources; they end with ctx.
func (h *Hub) runIntegrations(ctx context.Context, wg *sync.WaitGroup) {
	z, o := h.cfg.Zipato, h.cfg.ONVIF
	if z.DeviceTreeFile != "" {
		wg.Go(func() {
			zipato.FileWatch{Path: z.DeviceTreeFile, OnCameras: func(cams []camera.Camera) { h.SetCameras(FromDeviceTree, cams) }, Logger: h.log}.Run(ctx)
		})
	}
	if h.integ.mqtt != nil {
		wg.Go(func() { _ = h.integ.mqtt.Run(ctx) })
	}
	if o.Discovery {
		wg.Go(func() {
			onvif.Discoverer{Address: o.Address, Interval: seconds(o.IntervalSeconds), Wait: seconds(o.ProbeSeconds),
				Username: o.Username, Password: o.Password, Record: o.Record, Skip: h.knownHost,
				OnCameras: func(cams []camera.Camera) { h.SetCameras(FromONVIF, cams) }, Logger: h.log}.Run(ctx)
		})
	}
}

// knownHost says whether a camera of another source lives at host: ONVIF
// discovery leaves it alone (the box or the operator described it).
func (h *Hub) knownHost(host string) bool {
	s := h.cams
	s.mu.Lock()
	var cams []camera.Camera
	for _, a := range s.active {
		if a.source != FromONVIF {
			cams = append(cams, a.cam)
		}
	}
	s.mu.Unlock()
	for _, c := range cams {
		if c.IP == host {
			return true
		}
		for _, q := range camera.Qualities {
			if c.Streams.Get(q) == "" {
				continue
			}
			if u, err := c.URL(h.cfg.Templates, q); err == nil && u.Hostname() == host {
				return true
			}
		}
	}
	return false
}

// SetRecording turns a camera's recording on or off at run time; the
// choice is kept across restarts in the data dir.
func (h *Hub) SetRecording(id string, on bool) error {
	if _, ok := h.Camera(id); !ok {
		return statusErr(http.StatusNotFound, "camera %s is not a camera of this hub", id)
	}
	s := h.cams
	s.mu.Lock()
	s.override[id] = on
	snapshot := make(map[string]bool, len(s.override))
	for k, v := range s.override {
		snapshot[k] = v
	}
	s.mu.Unlock()
	if err := h.saveOverrides(snapshot); err != nil {
		h.log.Warn("record on/off not saved: it holds until hubd restarts", "camera", id, "err", err)
	}
	h.log.Info("recording switched", "camera", id, "on", on)
	s.reconcile()
	return nil
}

func (h *Hub) loadOverrides() error {
	data, err := os.ReadFile(filepath.Join(h.cfg.Hub.DataDir, recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", recordFile, err)
	}
	var m map[string]bool
	if err := json.Unmarshal(data, &m); err != nil {
		// Not fatal: a torn file loses switches, never recordings.
		h.log.Warn("record on/off file unreadable; ignoring it", "file", recordFile, "err", err)
		return nil
	}
	h.cams.mu.Lock()
	for k, v := range m {
		h.cams.override[k] = v
	}
	h.cams.mu.Unlock()
	return nil
}

func (h *Hub) saveOverrides(m map[string]bool) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	path := filepath.Join(h.cfg.Hub.DataDir, recordFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// cameraStates is what the box's MQTT gets: no credential in it.
func (h *Hub) cameraStates() []zipato.CameraState {
	backlog := h.uploadBacklog()
	recs := map[string]int{}
	all := h.Recorders()
	for i, r := range all {
		recs[r.Status().Camera] = i
	}
	var out []zipato.CameraState
	for _, c := range h.Cameras() {
		src, _ := h.CameraSource(c.ID)
		st := zipato.CameraState{ID: c.ID, Name: c.Name, Record: c.Record, Source: string(src),
			PTZ: c.PTZ.Kind != "" && c.PTZ.Kind != "none", UploadBacklog: backlog[c.ID]}
		if i, ok := recs[c.ID]; ok {
			rs := all[i].Status()
			st.Recording = true
			st.Online = rs.Connected
			st.LastError = rs.LastError
			if !rs.LastFragment.IsZero() {
				t := rs.LastFragment.UTC()
				st.LastSegment = &t
			}
		}
		out = append(out, st)
	}
	return out
}

// uploadBacklog counts each camera's closed segments not yet uploaded. The
// index is scanned only when the ring's counters moved since the last scan.
func (h *Hub) uploadBacklog() map[string]int {
	if h.uploader == nil {
		return nil // recording locally only: nothing waits to upload
	}
	in := &h.integ
	st := h.ring.Stats()
	in.backlogMu.Lock()
	defer in.backlogMu.Unlock()
	key := ring.Stats{Segments: st.Segments, Pending: st.Pending, Evicted: st.Evicted}
	if in.backlog != nil && key == in.backlogKey {
		return in.backlog
	}
	segs, err := h.ring.Pending(1 << 20)
	if err != nil {
		return in.backlog
	}
	m := map[string]int{}
	for _, s := range segs {
		m[s.Camera]++
	}
	in.backlog, in.backlogKey = m, key
	return m
}

// mqttCommands carries out the box's MQTT commands.
type mqttCommands struct{ h *Hub }

func (m mqttCommands) PTZ(ctx context.Context, id, action string, preset int) error {
	return commandErr(m.h.PTZ(ctx, id, action, preset))
}

func (m mqttCommands) Snapshot(ctx context.Context, id string) ([]byte, error) {
	cam, ok := m.h.Camera(id)
	if !ok {
		return nil, &zipato.CommandError{Status: http.StatusNotFound, Message: fmt.Sprintf("camera %s is not a camera of this hub", id)}
	}
	jpeg, err := snapshot.Capture(ctx, cam, m.h.cfg.Templates)
	switch {
	case err == nil:
		return jpeg, nil
	case errors.Is(err, snapshot.ErrNoSource):
		return nil, &zipato.CommandError{Status: http.StatusConflict, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return nil, &zipato.CommandError{Status: http.StatusGatewayTimeout, Message: err.Error()}
	}
	return nil, &zipato.CommandError{Status: http.StatusBadGateway, Message: err.Error()}
}

func (m mqttCommands) SetRecording(_ context.Context, id string, on bool) error {
	return commandErr(m.h.SetRecording(id, on))
}

func commandErr(err error) error {
	var se *StatusError
	if errors.As(err, &se) {
		return &zipato.CommandError{Status: se.Status, Message: se.Message}
	}
	return err
}
