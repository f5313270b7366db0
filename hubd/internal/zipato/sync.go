package zipato

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// requestFunc asks the box one request of its API, e.g. "networks/list" or
// "devices/<uuid>/info", and returns the answer's payload.
type requestFunc func(ctx context.Context, path string) ([]byte, error)

// syncer reads the box's device tree piece by piece over the request API
// (networks/list, then the info of networks, devices, endpoints), keeping
// what it read so that a device's status only re-reads that device, and a
// device that does not answer once keeps its last known cameras.
type syncer struct {
	req      requestFunc
	log      *slog.Logger
	parallel int

	mu       sync.Mutex
	networks map[string]*Network // every network's info; Devices are references
	devices  map[string]*Device  // IP devices, complete
}

func newSyncer(req requestFunc, log *slog.Logger) *syncer {
	return &syncer{req: req, log: log, parallel: 4, networks: map[string]*Network{}, devices: map[string]*Device{}}
}

// knownOther says whether id is a device of a network other than IP: its
// status never concerns cameras.
func (s *syncer) knownOther(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.networks {
		if _, ok := n.Devices[id]; ok && !n.IsIP() {
			return true
		}
	}
	return false
}

// sync reads the tree: everything when full (or when no IP network is known
// yet), else the IP networks' device lists plus the dirty and new devices.
// It fails only when the device lists cannot be read: the caller then keeps
// the cameras it has.
func (s *syncer) sync(ctx context.Context, full bool, dirty map[string]bool) (*Tree, error) {
	s.mu.Lock()
	var ipNets []string
	for id, n := range s.networks {
		if n.IsIP() {
			ipNets = append(ipNets, id)
		}
	}
	s.mu.Unlock()
	if full || len(ipNets) == 0 {
		ids, err := s.listNetworks(ctx)
		if err != nil {
			return nil, err
		}
		ipNets = nil
		nets := s.fetchNetworks(ctx, ids)
		s.mu.Lock()
		for _, id := range ids {
			n, ok := nets[id]
			if !ok {
				// No answer: keep what we knew of it (a box under load
				// drops a request now and then).
				if old, known := s.networks[id]; known {
					n = old
				} else {
					s.mu.Unlock()
					return nil, fmt.Errorf("network %s: no info", id)
				}
			}
			if n.IsIP() {
				ipNets = append(ipNets, id)
			}
			nets[id] = n
		}
		s.networks = nets
		s.mu.Unlock()
	} else {
		nets := s.fetchNetworks(ctx, ipNets)
		if len(nets) != len(ipNets) {
			return nil, errors.New("IP network: no info")
		}
		s.mu.Lock()
		for id, n := range nets {
			s.networks[id] = n
		}
		s.mu.Unlock()
	}

	// The IP devices now, and which of them to (re)read.
	s.mu.Lock()
	present := map[string]bool{}
	var fetch []string
	for _, nid := range ipNets {
		for id := range s.networks[nid].Devices {
			if !validUUID(id) {
				continue
			}
			present[id] = true
			if _, cached := s.devices[id]; full || dirty[id] || !cached {
				fetch = append(fetch, id)
			}
		}
	}
	for id := range s.devices {
		if !present[id] {
			delete(s.devices, id) // removed from the box
		}
	}
	s.mu.Unlock()
	sort.Strings(fetch)
	got := s.fetchDevices(ctx, fetch)
	s.mu.Lock()
	for id, d := range got {
		s.devices[id] = d
	}
	tree := s.treeLocked(ipNets)
	s.mu.Unlock()
	return tree, ctx.Err()
}

// treeLocked assembles the IP networks with the devices read so far.
func (s *syncer) treeLocked(ipNets []string) *Tree {
	t := &Tree{Networks: Entities[*Network]{}}
	for _, nid := range ipNets {
		src := s.networks[nid]
		n := &Network{UUID: nid, Name: src.Name, Config: src.Config, Devices: Entities[*Device]{}}
		for id := range src.Devices {
			if d, ok := s.devices[id]; ok {
				n.Devices[id] = d
			}
		}
		t.Networks[nid] = n
	}
	return t
}

func (s *syncer) listNetworks(ctx context.Context) ([]string, error) {
	data, err := s.req(ctx, "networks/list")
	if err != nil {
		return nil, fmt.Errorf("networks/list: %w", err)
	}
	var list Entities[*Network]
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("networks/list: %w", err)
	}
	var ids []string
	for _, id := range list.Sorted() {
		if validUUID(id) {
			ids = append(ids, id)
		} else {
			s.log.Warn("box network with an unusable uuid ignored", "uuid", clip(id))
		}
	}
	return ids, nil
}

// validUUID accepts what may stand in a topic level and a camera id: the
// box's UUIDs are hex and dashes; anything with / + # or spaces is refused.
func validUUID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return id[0] != '.' && id[0] != '-' && id[0] != '_'
}

// each runs f for every id, s.parallel at a time.
func (s *syncer) each(ctx context.Context, ids []string, f func(id string)) {
	sem := make(chan struct{}, s.parallel)
	var wg sync.WaitGroup
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			f(id)
		})
	}
	wg.Wait()
}

func (s *syncer) fetchNetworks(ctx context.Context, ids []string) map[string]*Network {
	out := map[string]*Network{}
	var mu sync.Mutex
	s.each(ctx, ids, func(id string) {
		var n Network
		if err := s.info(ctx, "networks", id, &n); err != nil {
			s.log.Warn("box network not read", "network", id, "err", err)
			return
		}
		n.UUID = id
		mu.Lock()
		out[id] = &n
		mu.Unlock()
	})
	return out
}

// fetchDevices reads each device, its endpoints and the camera class
// cluster endpoints. A device that fails keeps its cached version.
func (s *syncer) fetchDevices(ctx context.Context, ids []string) map[string]*Device {
	out := map[string]*Device{}
	var mu sync.Mutex
	s.each(ctx, ids, func(id string) {
		d, err := s.fetchDevice(ctx, id)
		if err != nil {
			s.log.Warn("box device not read; keeping what was known of it", "device", id, "err", err)
			return
		}
		mu.Lock()
		out[id] = d
		mu.Unlock()
	})
	return out
}

func (s *syncer) fetchDevice(ctx context.Context, id string) (*Device, error) {
	var d Device
	if err := s.info(ctx, "devices", id, &d); err != nil {
		return nil, err
	}
	d.UUID = id
	for _, eid := range d.Endpoints.Sorted() {
		if !validUUID(eid) {
			delete(d.Endpoints, eid)
			continue
		}
		var e Endpoint
		if err := s.info(ctx, "endpoints", eid, &e); err != nil {
			return nil, err
		}
		e.UUID = eid
		// Camera keys may sit in the IP cluster endpoint's config, which
		// an endpoint's answer may carry only as a reference.
		for _, cid := range e.ClusterEndpoints.Sorted() {
			ref := e.ClusterEndpoints[cid]
			if ref != nil && ref.Config != nil || !validUUID(cid) {
				continue
			}
			if ref != nil && ref.ClusterClass != "" && ref.ClusterClass != CameraClass {
				continue
			}
			var ce ClusterEndpoint
			if err := s.info(ctx, "clusterEndpoints", cid, &ce); err != nil {
				return nil, err
			}
			ce.UUID = cid
			e.ClusterEndpoints[cid] = &ce
		}
		d.Endpoints[eid] = &e
	}
	return &d, nil
}

// info asks <kind>/<uuid>/info and decodes the answer into v.
func (s *syncer) info(ctx context.Context, kind, id string, v any) error {
	path := kind + "/" + id + "/info"
	data, err := s.req(ctx, path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: answer: %w", path, describeJSONError(data, err))
	}
	return nil
}
