package zipato

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type countCommands struct {
	mu sync.Mutex
	n  int
}

func (c *countCommands) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *countCommands) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
func (c *countCommands) PTZ(context.Context, string, string, int) error { c.add(); return nil }
func (c *countCommands) Snapshot(context.Context, string) ([]byte, error) {
	c.add()
	return nil, nil
}
func (c *countCommands) SetRecording(context.Context, string, bool) error { c.add(); return nil }

// TestDispatchOutsideRoot: hubd subscribes only below its root, so a
// broker should never deliver anything else; if one does (a bridge, a
// shared subscription, a root changed in the config), the message is
// logged and goes no further: no command, no answer, no waiting request
// served, no resync.
func TestDispatchOutsideRoot(t *testing.T) {
	var logs bytes.Buffer
	cmds := &countCommands{}
	c, err := New(Config{Broker: "tcp://127.0.0.1:1", ClientID: "t", TopicRoot: "zipato/box-a/", Commands: cmds,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	waiter := make(chan []byte, 1)
	c.waiters["zipato/box-a/networks/list"] = []chan []byte{waiter}
	for _, topic := range []string{
		"zipato/box-b/request/cameras/cam1/ptz",
		"zipato/box-a", // the root without its slash
		"zipato/box-ab/request/cameras/cam1/ptz",
		"zipato/box-b/devices/0d2c7a70-1c0a-4a8a-9d4e-3f1d2b5c6e7f/status",
		"zipato/box-b/zipato/box-a/networks/list",
	} {
		c.dispatch(topic, []byte("up"))
	}
	time.Sleep(50 * time.Millisecond) // commands run off the caller's goroutine
	if n := cmds.count(); n != 0 {
		t.Errorf("%d commands ran from outside the root", n)
	}
	if n := strings.Count(logs.String(), "MQTT message outside the topic root ignored"); n != 5 {
		t.Errorf("logged %d times, want 5:\n%s", n, logs.String())
	}
	select {
	case <-waiter:
		t.Error("a message outside the root answered a request")
	case <-c.resync:
		t.Error("a message outside the root started a resync")
	default:
	}
}

// FuzzBoxAnswer feeds the device-tree reader what the box (or anything
// publishing under its root) may answer to a device's and an endpoint's
// info request: it must not panic, and every camera it yields has a usable
// id and only the stream kinds it supports.
func FuzzBoxAnswer(f *testing.F) {
	const dev, ep = "d0d0d0d0-0000-4000-8000-000000000001", "e0e0e0e0-0000-4000-8000-000000000002"
	f.Add([]byte(`{"uuid":"`+dev+`","config":{"name":"cam","discoveredIp":"10.0.0.2"},"endpoints":[{"uuid":"`+ep+`","name":"cam"}]}`),
		[]byte(`{"uuid":"`+ep+`","config":{"hiQualityStream":"rtsp://${ip}/1","port":"554","ptzClassName":"HikvisionPTZ"},"clusterEndpoints":[{"uuid":"c","clusterClass":"com.zipato.network.ip.IP","config":{}}]}`))
	f.Add([]byte(`{"endpoints":{"`+ep+`":null}}`), []byte(`{"clusterClass":"com.zipato.network.ip.IP","config":{"mjpegUrl":"http://x/","port":"99999"}}`))
	f.Add([]byte(`{"endpoints":"nope"}`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, devAnswer, epAnswer []byte) {
		answers := map[string][]byte{
			"networks/list":             []byte(`[{"uuid":"n1","name":"IP"}]`),
			"networks/n1/info":          []byte(`{"config":{"name":"IP"},"devices":[{"uuid":"` + dev + `"}]}`),
			"devices/" + dev + "/info":  devAnswer,
			"endpoints/" + ep + "/info": epAnswer,
			"clusterEndpoints/c/info":   []byte(`{"clusterClass":"com.zipato.network.ip.IP","config":{}}`),
		}
		s := newSyncer(func(_ context.Context, path string) ([]byte, error) {
			if a, ok := answers[path]; ok {
				return a, nil
			}
			return nil, fmt.Errorf("no answer")
		}, slog.New(slog.DiscardHandler))
		tree, err := s.sync(context.Background(), true, nil)
		if err != nil {
			return
		}
		if _, err := json.Marshal(tree); err != nil {
			t.Fatalf("tree does not marshal: %v", err)
		}
		cams, _ := tree.Cameras()
		for _, c := range cams {
			if !validUUID(c.ID) {
				t.Fatalf("camera id %q", c.ID)
			}
			for _, u := range []string{c.Streams.High, c.Streams.Mid, c.Streams.Low} {
				if u != "" && !strings.HasPrefix(strings.ToLower(u), "rtsp") {
					t.Fatalf("stream %q kept as RTSP", u)
				}
			}
			if c.Port < 0 || c.Port > 65535 {
				t.Fatalf("port %d", c.Port)
			}
		}
	})
}
