package hub

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"

	"github.com/zipnvr/zipnvr/hubd/internal/recorder"
	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Source names where a camera came from. Cameras come and go at run time
// (the box's device tree changes, ONVIF finds one), so the hub keeps one
// list per source and merges them.
type Source string

// Camera sources, in precedence order: when two name the same camera id,
// the earlier one wins (what the operator wrote beats what was discovered).
const (
	FromConfig     Source = "config"
	FromDeviceTree Source = "device_tree_file"
	FromZipato     Source = "zipato_mqtt"
	FromONVIF      Source = "onvif"
)

var sourceOrder = []Source{FromConfig, FromDeviceTree, FromZipato, FromONVIF}

// cameraSet is the hub's current cameras and a recorder for each recorded
// one. A camera added starts recording, one removed stops (its segments stay
// in the ring and keep uploading), one changed restarts its recorder.
type cameraSet struct {
	h *Hub

	// apply serialises reconciliations: stopping a recorder waits for it
	// to close its segment, and a restart must not overlap the old one.
	apply sync.Mutex

	mu       sync.Mutex // guards what follows; never held while waiting
	bySource map[Source][]camera.Camera
	override map[string]bool // record on/off asked at run time (MQTT)
	active   map[string]*activeCamera
	invalid  map[string]string // camera key -> last reason logged, so a resync does not repeat it
	runCtx   context.Context   // nil before Run: recorders start then
	errs     []error           // recorders that failed at shutdown
	wg       sync.WaitGroup

	// changed wakes the reporter (cap 1: several changes, one report).
	changed chan struct{}
	// listeners are told the camera list after each change (MQTT state).
	listeners []func([]camera.Camera)
}

type activeCamera struct {
	cam    camera.Camera
	source Source
	rec    *recorder.Recorder // nil: not recorded (record: off)
	cancel context.CancelFunc
	done   chan struct{}
}

func newCameraSet(h *Hub) *cameraSet {
	return &cameraSet{
		h:        h,
		bySource: map[Source][]camera.Camera{},
		override: map[string]bool{},
		active:   map[string]*activeCamera{},
		invalid:  map[string]string{},
		changed:  make(chan struct{}, 1),
	}
}

// SetCameras replaces the cameras of one source and applies the result:
// recorders start, stop or restart as needed. A camera that does not
// validate is logged and left out; the others go on.
func (h *Hub) SetCameras(src Source, cams []camera.Camera) {
	h.cams.set(src, cams)
}

// Camera returns the camera with this id as the hub runs it now (with its
// credentials: for use on the hub only).
func (h *Hub) Camera(id string) (camera.Camera, bool) {
	s := h.cams
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.active[id]
	if !ok {
		return camera.Camera{}, false
	}
	return a.cam, true
}

// Cameras lists the hub's cameras, sorted by id.
func (h *Hub) Cameras() []camera.Camera {
	s := h.cams
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.camerasLocked()
}

// CameraSource says which source a camera came from.
func (h *Hub) CameraSource(id string) (Source, bool) {
	s := h.cams
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.active[id]
	if !ok {
		return "", false
	}
	return a.source, true
}

// Recorders lists the running recorders, sorted by camera id (status, metrics).
func (h *Hub) Recorders() []*recorder.Recorder {
	s := h.cams
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.idsLocked()
	out := make([]*recorder.Recorder, 0, len(ids))
	for _, id := range ids {
		if r := s.active[id].rec; r != nil {
			out = append(out, r)
		}
	}
	return out
}

// OnCamerasChanged registers f to be told the camera list after every
// change; call before Run.
func (h *Hub) OnCamerasChanged(f func([]camera.Camera)) {
	h.cams.mu.Lock()
	h.cams.listeners = append(h.cams.listeners, f)
	h.cams.mu.Unlock()
}

func (s *cameraSet) camerasLocked() []camera.Camera {
	out := make([]camera.Camera, 0, len(s.active))
	for _, id := range s.idsLocked() {
		out = append(out, s.active[id].cam)
	}
	return out
}

func (s *cameraSet) idsLocked() []string {
	ids := make([]string, 0, len(s.active))
	for id := range s.active {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (s *cameraSet) set(src Source, cams []camera.Camera) {
	s.mu.Lock()
	s.bySource[src] = slices.Clone(cams)
	s.mu.Unlock()
	s.reconcile()
}

type wanted struct {
	cam    camera.Camera
	source Source
}

// desired merges the sources: validation, precedence, record overrides.
func (s *cameraSet) desired() map[string]wanted {
	syntax := s.h.cfg.Templates
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]wanted{}
	seenInvalid := map[string]bool{}
	for _, src := range sourceOrder {
		for _, c := range s.bySource[src] {
			c.ApplyDefaults()
			key := fmt.Sprintf("%s/%s", src, c.ID)
			if err := c.Validate(syntax); err != nil {
				seenInvalid[key] = true
				if s.invalid[key] != err.Error() {
					s.h.log.Warn("camera ignored: invalid", "source", src, "camera", c.ID, "err", err)
					s.invalid[key] = err.Error()
				}
				continue
			}
			if prev, dup := out[c.ID]; dup {
				if prev.source != src {
					s.h.log.Debug("camera id known from a source of higher precedence; keeping that one",
						"camera", c.ID, "kept", prev.source, "ignored", src)
				} else {
					key := fmt.Sprintf("%s/dup/%s", src, c.ID)
					seenInvalid[key] = true
					if s.invalid[key] == "" {
						s.h.log.Warn("duplicate camera id from one source; keeping the first", "source", src, "camera", c.ID)
						s.invalid[key] = "duplicate"
					}
				}
				continue
			}
			if on, ok := s.override[c.ID]; ok {
				c = withRecording(c, on)
			}
			out[c.ID] = wanted{cam: c, source: src}
		}
	}
	for k := range s.invalid {
		if !seenInvalid[k] {
			delete(s.invalid, k)
		}
	}
	return out
}

// withRecording turns a camera's recording on (its configured quality, or
// the best stream it has) or off.
func withRecording(c camera.Camera, on bool) camera.Camera {
	if !on {
		c.Record = camera.RecordOff
		return c
	}
	if c.Record == camera.RecordOff {
		c.Record = ""
		c.ApplyDefaults()
	}
	return c
}

// reconcile brings the running recorders in line with the sources.
func (s *cameraSet) reconcile() {
	s.apply.Lock()
	defer s.apply.Unlock()
	want := s.desired()
	log := s.h.log

	s.mu.Lock()
	running := s.runCtx != nil && s.runCtx.Err() == nil
	var stop []*activeCamera
	var start []string
	changed := false
	for id, a := range s.active {
		w, ok := want[id]
		switch {
		case !ok:
			log.Info("camera removed: recording stops; its segments stay in the ring and keep uploading", "camera", id, "source", a.source)
			stop = append(stop, a)
			delete(s.active, id)
			changed = true
		case !reflect.DeepEqual(w.cam, a.cam):
			log.Info("camera changed: restarting its recorder", "camera", id, "source", w.source)
			stop = append(stop, a)
			s.active[id] = &activeCamera{cam: w.cam, source: w.source}
			start = append(start, id)
			changed = true
		default:
			a.source = w.source
			if running && a.done == nil && a.cam.Record != camera.RecordOff {
				start = append(start, id) // known before Run, starting now
			}
		}
	}
	for id, w := range want {
		if _, ok := s.active[id]; !ok {
			log.Info("camera added", "camera", id, "name", w.cam.Name, "source", w.source, "record", w.cam.Record)
			s.active[id] = &activeCamera{cam: w.cam, source: w.source}
			start = append(start, id)
			changed = true
		}
	}
	s.mu.Unlock()

	// Stop first: a restarted camera must close its segment before the new
	// recorder opens one.
	for _, a := range stop {
		if a.cancel != nil {
			a.cancel()
			<-a.done
		}
	}
	if running {
		sort.Strings(start)
		for _, id := range start {
			s.start(id)
		}
	}
	if changed {
		s.notify()
	}
}

// start runs the recorder of camera id if it is recorded.
func (s *cameraSet) start(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.active[id]
	if !ok || a.done != nil || s.runCtx == nil || s.runCtx.Err() != nil {
		return
	}
	if a.cam.Record == camera.RecordOff {
		s.h.log.Info("camera not recorded (record: off)", "camera", id)
		return
	}
	ctx, cancel := context.WithCancel(s.runCtx)
	a.rec = s.h.newRecorder(a.cam)
	a.cancel = cancel
	a.done = make(chan struct{})
	s.wg.Add(1)
	go func(rec *recorder.Recorder, done chan struct{}) {
		defer s.wg.Done()
		defer close(done)
		err := rec.Run(ctx)
		if err == nil {
			return
		}
		s.h.log.Error("camera stopped", "camera", id, "err", err)
		if s.runCtx.Err() != nil {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
		}
	}(a.rec, a.done)
}

// run starts the recorders of the cameras known so far under ctx; later
// changes start theirs as they come.
func (s *cameraSet) run(ctx context.Context) {
	s.mu.Lock()
	s.runCtx = ctx
	s.mu.Unlock()
	s.reconcile()
}

// wait blocks until every recorder has stopped (after the run context
// ended) and returns the errors of those that failed to close.
func (s *cameraSet) wait() error {
	s.apply.Lock() // no reconcile may start a recorder past this point
	defer s.apply.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

func (s *cameraSet) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
	s.mu.Lock()
	cams := s.camerasLocked()
	ls := slices.Clone(s.listeners)
	s.mu.Unlock()
	for _, f := range ls {
		f(cams)
	}
}
