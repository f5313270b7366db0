package testbed

import (
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// zipatoSample is a real box's device tree (firmware 1.3.61: its IP and
// mqtt networks), from ../shared/zipato/device-tree-sample.json. It holds
// no camera endpoint: tests add theirs in the same shape (ZipatoCamera).
//
//go:embed testdata/zipato-device-tree-sample.json
var zipatoSample []byte

// ZipatoSample returns a copy of the sample device tree.
func ZipatoSample() []byte { return append([]byte(nil), zipatoSample...) }

// ZipatoSampleRoot is the sample box's topic root (topicBase "zipato/",
// no topicPrefix, clientId "zipabox-<serial>").
const ZipatoSampleRoot = "zipato/zipabox-0107B6200D01C356/"

// ZipatoCamera is a camera endpoint to add to a device tree, written in the
// sample's shape: an IP device with one endpoint that has a cluster
// endpoint of class com.zipato.network.ip.IP.
type ZipatoCamera struct {
	Device, Endpoint, Cluster string // UUIDs; empty: new random ones
	Name                      string
	// Keys are the camera keys (hiQualityStream, mjpegUrl, snapshot,
	// username, password, staticIp, port, ptzClassName, templateId...).
	Keys map[string]any
	// KeysInCluster puts the keys in the cluster endpoint's
	// config.configuration instead of the endpoint's config.
	KeysInCluster bool
}

// NewUUID returns a random UUID in the box's form.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (c *ZipatoCamera) fill() {
	if c.Device == "" {
		c.Device = NewUUID()
	}
	if c.Endpoint == "" {
		c.Endpoint = NewUUID()
	}
	if c.Cluster == "" {
		c.Cluster = NewUUID()
	}
	if c.Name == "" {
		c.Name = "Camera " + c.Endpoint[:8]
	}
}

// device builds the device entity of c under the network ipNet.
func (c *ZipatoCamera) device(ipNet string) map[string]any {
	c.fill()
	ref := func(kind, id, name string) map[string]any {
		return map[string]any{"uuid": id, "link": "/" + kind + "/" + id, "name": name}
	}
	netRef := ref("networks", ipNet, "IP")
	epConfig := map[string]any{
		"uuid": c.Endpoint, "tags": nil, "order": nil, "iconType": "sensor.camera", "discovered": "generic",
		"descriptorFlags": nil, "status": "ENABLED", "description": "", "category": "CAMERA", "templateId": "CAMERA",
		"parent": c.Device, "hidden": false, "nd": true, "showIcon": true, "iconId": 0, "userIconId": 0,
		"iconColors": nil, "name": c.Name, "type": nil, "locationId": nil, "cv": 1, "sv": 0, "deleted": false,
	}
	clConfig := map[string]any{
		"uuid": c.Endpoint, "tags": nil, "order": nil, "queryInterval": nil, "queryAttributes": nil,
		"shouldBeQueried": false, "isSecurity": false, "templateId": "CAMERA", "clusterClass": "com.zipato.network.ip.IP",
		"parent": c.Endpoint, "hidden": false, "pullName": nil, "showIcon": true, "iconId": 0, "userIconId": 0,
		"iconColors": nil, "name": c.Name, "clusterId": "camera", "nd": true, "cv": 0, "sv": 0, "deleted": false,
		"configuration": map[string]any{},
	}
	clConfig["uuid"] = c.Cluster
	if c.KeysInCluster {
		clConfig["configuration"] = c.Keys
	} else {
		for k, v := range c.Keys {
			epConfig[k] = v
		}
	}
	ip, _ := c.Keys["staticIp"].(string)
	if ip == "" {
		ip = "127.0.0.1"
	}
	return map[string]any{
		"uuid": c.Device,
		"link": "devices/" + c.Device,
		"config": map[string]any{
			"uuid": c.Device, "descriptorFlags": "keepName", "locationId": nil, "description": nil, "model": "IPCAM",
			"serial": nil, "firmware": nil, "periodicallyWakeUp": false, "user": nil, "hidden": false,
			"savedWakeUpInterval": 0, "showIcon": true, "iconId": 0, "userIconId": 0, "iconColors": nil,
			"name": c.Name + " device", "cv": 1, "sv": 0, "parent": ipNet, "nd": true, "tags": nil, "order": nil,
			"templateId": nil, "wakeUpInterval": 0, "manufacturerId": nil, "deleted": false, "mac": "02:00:00:00:00:01",
			"mac2": nil, "discoveredIp": ip, "status": "ENABLED", "upnpUuid": nil, "onvifUuid": nil,
			"discoveryInfo": map[string]any{"Http": map[string]any{"http": true, "https": false}}, "configuration": map[string]any{},
		},
		"state": map[string]any{
			"device": c.Device, "address": ip, "receiveTimestamp": time.Now().UnixMilli(), "batteryTimestamp": 0,
			"batteryLevel": 0, "trouble": false, "onlineState": "ONLINE", "mainsPower": true, "sentTimestamp": 0,
		},
		"network":    netRef,
		"templateId": nil,
		"endpoints": map[string]any{
			c.Endpoint: map[string]any{
				"uuid":   c.Endpoint,
				"link":   "endpoints/" + c.Endpoint,
				"config": epConfig,
				"clusterEndpoints": map[string]any{
					c.Cluster: map[string]any{
						"uuid": c.Cluster, "config": clConfig, "device": ref("devices", c.Device, c.Name+" device"),
						"attributes": map[string]any{}, "link": "clusterEndpoints/" + c.Cluster,
						"clusterClass": "com.zipato.network.ip.IP", "endpoint": ref("endpoints", c.Endpoint, c.Name),
						"category": "SENSOR", "network": netRef, "templateId": nil,
					},
				},
				"sourceBindings": map[string]any{}, "targetBindings": map[string]any{},
				"device": ref("devices", c.Device, c.Name+" device"), "attributes": []any{},
				"network": netRef, "templateId": nil,
			},
		},
	}
}

// ZipatoTree returns tree (the sample when nil) with cams added to its IP
// network, as JSON.
func ZipatoTree(t testing.TB, tree []byte, cams ...*ZipatoCamera) []byte {
	t.Helper()
	if tree == nil {
		tree = zipatoSample
	}
	var m map[string]any
	if err := json.Unmarshal(tree, &m); err != nil {
		t.Fatalf("testbed: ZipatoTree: %v", err)
	}
	ipNet, devices := ipNetwork(m)
	if devices == nil {
		t.Fatal("testbed: ZipatoTree: no IP network in the tree")
	}
	for _, c := range cams {
		c.fill()
		devices[c.Device] = c.device(ipNet)
	}
	out, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ipNetwork finds the network named IP and its devices map.
func ipNetwork(tree map[string]any) (string, map[string]any) {
	nets, _ := tree["networks"].(map[string]any)
	for id, n := range nets {
		nm, _ := n.(map[string]any)
		cfg, _ := nm["config"].(map[string]any)
		if name, _ := cfg["name"].(string); name == "IP" {
			devs, _ := nm["devices"].(map[string]any)
			if devs == nil {
				devs = map[string]any{}
				nm["devices"] = devs
			}
			return id, devs
		}
	}
	return "", nil
}

// ZipatoBoxOptions configures a box simulator.
type ZipatoBoxOptions struct {
	Broker             string // tcp://127.0.0.1:PORT
	Username, Password string
	// Root is the box's topic root; default ZipatoSampleRoot.
	Root string
	// Tree is the device tree JSON; nil: the sample.
	Tree []byte
	QoS  byte // default 1
}

// ZipatoBox simulates a Zipato box's MQTT API against a real broker: it
// answers request/networks/list and request/{networks|devices|endpoints|
// clusterEndpoints}/<uuid>/info from its device tree (lists as references,
// as the API gives them), publishes devices/<uuid>/status when a device
// is added, changed or removed, and records every request it saw.
type ZipatoBox struct {
	Root string
	t    testing.TB
	qos  byte
	cli  mqtt.Client

	mu       sync.Mutex
	tree     map[string]any
	requests []string
	silent   map[string]bool // paths not answered (a box that drops requests)
}

// StartZipatoBox connects the simulator to the broker and serves until the test ends.
func StartZipatoBox(t testing.TB, o ZipatoBoxOptions) *ZipatoBox {
	t.Helper()
	if o.Root == "" {
		o.Root = ZipatoSampleRoot
	}
	if o.Tree == nil {
		o.Tree = zipatoSample
	}
	if o.QoS == 0 {
		o.QoS = 1
	}
	b := &ZipatoBox{Root: o.Root, t: t, qos: o.QoS, silent: map[string]bool{}}
	if err := json.Unmarshal(o.Tree, &b.tree); err != nil {
		t.Fatalf("testbed: ZipatoBox: tree: %v", err)
	}
	opts := mqtt.NewClientOptions().AddBroker(o.Broker).SetClientID("zipabox-sim-" + NewUUID()[:8]).
		SetUsername(o.Username).SetPassword(o.Password).SetCleanSession(true).SetAutoReconnect(true).
		SetOrderMatters(false).SetConnectTimeout(5 * time.Second)
	b.cli = mqtt.NewClient(opts)
	if tok := b.cli.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("testbed: ZipatoBox: connect %s: %v", o.Broker, tok.Error())
	}
	t.Cleanup(func() { b.cli.Disconnect(100) })
	tok := b.cli.Subscribe(o.Root+"request/#", o.QoS, func(_ mqtt.Client, m mqtt.Message) {
		b.serve(strings.TrimPrefix(m.Topic(), o.Root+"request/"))
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("testbed: ZipatoBox: subscribe: %v", tok.Error())
	}
	return b
}

// Requests lists the API paths asked so far (e.g. "devices/<uuid>/info").
func (b *ZipatoBox) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

// Silence makes the box ignore requests of path (it answers again with Silence(path, false)).
func (b *ZipatoBox) Silence(path string, on bool) {
	b.mu.Lock()
	b.silent[path] = on
	b.mu.Unlock()
}

// AddCamera adds (or replaces) a camera device and publishes its status.
func (b *ZipatoBox) AddCamera(c *ZipatoCamera) {
	b.mu.Lock()
	ipNet, devices := ipNetwork(b.tree)
	c.fill()
	devices[c.Device] = c.device(ipNet)
	b.mu.Unlock()
	b.status(c.Device)
}

// RemoveDevice deletes a device from the tree and publishes its status.
func (b *ZipatoBox) RemoveDevice(id string) {
	b.mu.Lock()
	_, devices := ipNetwork(b.tree)
	delete(devices, id)
	b.mu.Unlock()
	b.status(id)
}

func (b *ZipatoBox) status(id string) {
	payload, _ := json.Marshal(map[string]any{"uuid": id, "timestamp": time.Now().UTC().Format(time.RFC3339), "online": true})
	b.Publish(b.Root+"devices/"+id+"/status", payload)
}

// Publish sends a raw message (any topic, for bad-input tests).
func (b *ZipatoBox) Publish(topic string, payload []byte) {
	tok := b.cli.Publish(topic, b.qos, false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.t.Errorf("testbed: ZipatoBox: publish %s: %v", topic, tok.Error())
	}
}

func (b *ZipatoBox) serve(path string) {
	b.mu.Lock()
	b.requests = append(b.requests, path)
	silent := b.silent[path]
	answer, ok := b.answerLocked(path)
	b.mu.Unlock()
	if !ok || silent {
		return // the box does not answer what it does not know
	}
	data, err := json.Marshal(answer)
	if err != nil {
		return
	}
	b.Publish(b.Root+path, data)
}

// answerLocked builds the answer of one API path from the tree.
func (b *ZipatoBox) answerLocked(path string) (any, bool) {
	nets, _ := b.tree["networks"].(map[string]any)
	if path == "networks/list" {
		var list []any
		for id, n := range nets {
			cfg, _ := n.(map[string]any)["config"].(map[string]any)
			list = append(list, map[string]any{"uuid": id, "name": cfg["name"], "link": "networks/" + id})
		}
		return list, true
	}
	parts := strings.Split(path, "/")
	if len(parts) != 3 || parts[2] != "info" {
		return nil, false
	}
	kind, id := parts[0], parts[1]
	for _, n := range nets {
		nm := n.(map[string]any)
		if kind == "networks" && nm["uuid"] == id {
			return withRefs(nm, "devices", "devices"), true
		}
		devs, _ := nm["devices"].(map[string]any)
		for did, d := range devs {
			dm := d.(map[string]any)
			if kind == "devices" && did == id {
				return withRefs(dm, "endpoints", "endpoints"), true
			}
			eps, _ := dm["endpoints"].(map[string]any)
			for eid, e := range eps {
				em := e.(map[string]any)
				if kind == "endpoints" && eid == id {
					return withRefs(em, "clusterEndpoints", "clusterEndpoints"), true
				}
				ces, _ := em["clusterEndpoints"].(map[string]any)
				if ce, ok := ces[id]; ok && kind == "clusterEndpoints" {
					return ce, true
				}
			}
		}
	}
	return nil, false
}

// withRefs copies an entity with its children (key) replaced by an array
// of references {uuid, name, link[, clusterClass]}.
func withRefs(entity map[string]any, key, kind string) map[string]any {
	out := map[string]any{}
	for k, v := range entity {
		out[k] = v
	}
	children, _ := entity[key].(map[string]any)
	refs := []any{}
	for id, c := range children {
		cm, _ := c.(map[string]any)
		cfg, _ := cm["config"].(map[string]any)
		ref := map[string]any{"uuid": id, "link": kind + "/" + id, "name": cfg["name"]}
		if cc, ok := cm["clusterClass"]; ok {
			ref["clusterClass"] = cc
		}
		refs = append(refs, ref)
	}
	out[key] = refs
	return out
}
