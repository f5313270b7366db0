package zipato_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/zipnvr/zipnvr/hubd/internal/zipato"
	"github.com/zipnvr/zipnvr/pkg/camera"
	"github.com/zipnvr/zipnvr/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.RunInNetNS(m)) }

// logBuf collects a client's log for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// camSink receives the camera lists a client reports.
type camSink struct {
	mu   sync.Mutex
	last []camera.Camera
	n    int
}

func (s *camSink) set(c []camera.Camera) {
	s.mu.Lock()
	s.last, s.n = c, s.n+1
	s.mu.Unlock()
}

// wait waits until the last list has exactly ids.
func (s *camSink) wait(t *testing.T, timeout time.Duration, ids ...string) {
	t.Helper()
	sort.Strings(ids)
	deadline := time.Now().Add(timeout)
	var got []string
	for time.Now().Before(deadline) {
		s.mu.Lock()
		got = got[:0]
		for _, c := range s.last {
			got = append(got, c.ID)
		}
		n := s.n
		s.mu.Unlock()
		sort.Strings(got)
		if n > 0 && fmt.Sprint(got) == fmt.Sprint(ids) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cameras %v, want %v", got, ids)
}

func (s *camSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// fakeCommands records what the client asks the hub to do.
type fakeCommands struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeCommands) add(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeCommands) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeCommands) PTZ(_ context.Context, cam, action string, preset int) error {
	f.add(fmt.Sprintf("ptz %s %s %d", cam, action, preset))
	if cam == "noptz" {
		return &zipato.CommandError{Status: http.StatusConflict, Message: "camera noptz has no PTZ"}
	}
	return nil
}

func (f *fakeCommands) Snapshot(_ context.Context, cam string) ([]byte, error) {
	f.add("snapshot " + cam)
	return []byte("\xff\xd8\xff\xe0 a jpeg"), nil
}

func (f *fakeCommands) SetRecording(_ context.Context, cam string, on bool) error {
	f.add(fmt.Sprintf("record %s %v", cam, on))
	return nil
}

type clientOpts struct {
	broker, user, pass string
	caFile             string
	cmds               zipato.Commands
	state              func() []zipato.CameraState
}

func startClient(t *testing.T, o clientOpts) (*zipato.Client, *camSink, *logBuf) {
	t.Helper()
	sink := &camSink{}
	logs := &logBuf{}
	c, err := zipato.New(zipato.Config{
		Broker: o.broker, Username: o.user, Password: o.pass, CAFile: o.caFile, ClientID: "hubd-test-" + testbed.NewUUID()[:8],
		TopicRoot: testbed.ZipatoSampleRoot, QoS: 1,
		RequestTimeout: 1 * time.Second, ResyncInterval: time.Hour, StateInterval: 100 * time.Millisecond,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		OnCameras: sink.set, Commands: o.cmds, State: o.state,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("client log:\n%s", logs.String())
		}
	})
	return c, sink, logs
}

// observer subscribes to everything on the broker and keeps it.
type observer struct {
	cli  mqtt.Client
	mu   sync.Mutex
	msgs []mqtt.Message
}

func observe(t *testing.T, broker, user, pass, filter string) *observer {
	t.Helper()
	o := &observer{}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID("observer-" + testbed.NewUUID()[:8]).
		SetUsername(user).SetPassword(pass).SetOrderMatters(false)
	o.cli = mqtt.NewClient(opts)
	if tok := o.cli.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("observer: %v", tok.Error())
	}
	t.Cleanup(func() { o.cli.Disconnect(100) })
	if filter != "" {
		tok := o.cli.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
			o.mu.Lock()
			o.msgs = append(o.msgs, m)
			o.mu.Unlock()
		})
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("observer subscribe: %v", tok.Error())
		}
	}
	return o
}

func (o *observer) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	tok := o.cli.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// waitMsg waits for a message on topic whose payload satisfies ok.
func (o *observer) waitMsg(t *testing.T, topic string, ok func(m mqtt.Message) bool) mqtt.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		for _, m := range o.msgs {
			if m.Topic() == topic && (ok == nil || ok(m)) {
				o.mu.Unlock()
				return m
			}
		}
		o.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no message on %s", topic)
	return nil
}

func (o *observer) all() []mqtt.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]mqtt.Message(nil), o.msgs...)
}

func rtspCam(name string) *testbed.ZipatoCamera {
	return &testbed.ZipatoCamera{Name: name, Keys: map[string]any{
		"hiQualityStream": "rtsp://${ip}:8554/" + name, "staticIp": "127.0.0.1",
		"username": "admin", "password": "s3cret-" + name,
	}}
}

// TestReadsAndFollowsTheBox reads the tree over the box's request API,
// then follows devices/+/status: a camera added is picked up, one removed
// goes, a device that stops answering keeps its cameras.
func TestReadsAndFollowsTheBox(t *testing.T) {
	broker := testbed.Mosquitto(t, testbed.MosquittoOptions{})
	a, b := rtspCam("a"), rtspCam("b")
	box := testbed.StartZipatoBox(t, testbed.ZipatoBoxOptions{Broker: broker.URL, Tree: testbed.ZipatoTree(t, nil, a, b)})
	_, sink, logs := startClient(t, clientOpts{broker: broker.URL})
	sink.wait(t, 10*time.Second, a.Endpoint, b.Endpoint)

	reqs := strings.Join(box.Requests(), "\n")
	for _, want := range []string{"networks/list", "networks/ec2bdea2-0eba-46f9-99c9-268aea758b15/info",
		"devices/" + a.Device + "/info", "endpoints/" + a.Endpoint + "/info", "clusterEndpoints/" + a.Cluster + "/info"} {
		if !strings.Contains(reqs, want) {
			t.Errorf("the client never asked %s; asked:\n%s", want, reqs)
		}
	}

	c := rtspCam("c")
	box.AddCamera(c)
	sink.wait(t, 5*time.Second, a.Endpoint, b.Endpoint, c.Endpoint)
	box.RemoveDevice(b.Device)
	sink.wait(t, 5*time.Second, a.Endpoint, c.Endpoint)

	// A device that does not answer keeps what was known of it.
	box.Silence("devices/"+a.Device+"/info", true)
	n := sink.count()
	box.Publish(box.Root+"devices/"+a.Device+"/status", []byte(`{"online":true}`))
	time.Sleep(1800 * time.Millisecond)
	if sink.count() != n {
		t.Errorf("a silent device changed the cameras")
	}
	if !strings.Contains(logs.String(), "keeping what was known of it") {
		t.Error("the silent device was not logged")
	}
	box.Silence("devices/"+a.Device+"/info", false)
	for _, s := range []string{"s3cret-a", "s3cret-b", "s3cret-c"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("password %s in the log", s)
		}
	}
}

// TestBadBoxInput: a malformed answer, an endpoint missing its keys, a 1 MiB
// payload and a message outside the topic root are logged and ignored; the
// cameras stay.
func TestBadBoxInput(t *testing.T) {
	broker := testbed.Mosquitto(t, testbed.MosquittoOptions{})
	a := rtspCam("a")
	box := testbed.StartZipatoBox(t, testbed.ZipatoBoxOptions{Broker: broker.URL, Tree: testbed.ZipatoTree(t, nil, a)})
	cmds := &fakeCommands{}
	_, sink, logs := startClient(t, clientOpts{broker: broker.URL, cmds: cmds})
	sink.wait(t, 10*time.Second, a.Endpoint)
	n := sink.count()

	// An endpoint without keys: a problem, not a camera, the others stay.
	box.AddCamera(&testbed.ZipatoCamera{Name: "keyless", Keys: map[string]any{}})
	waitLog(t, logs, "box endpoint not usable as a camera")
	sink.wait(t, time.Second, a.Endpoint)

	// Garbage and 1 MiB where the box's answers go, and a 1 MiB status.
	big := bytes.Repeat([]byte("x"), 1<<20)
	box.Publish(box.Root+"networks/list", []byte("{not json"))
	waitLog(t, logs, "MQTT message without a request waiting ignored")
	box.Publish(box.Root+"devices/"+a.Device+"/info", big)
	box.Publish(box.Root+"devices/"+a.Device+"/status", big)
	// A malformed device answer while the client asks for it.
	box.Silence("devices/"+a.Device+"/info", true)
	box.Publish(box.Root+"devices/"+a.Device+"/status", []byte("{}"))
	time.Sleep(300 * time.Millisecond)
	box.Publish(box.Root+"devices/"+a.Device+"/info", []byte(`{"endpoints": "nope"}`))
	waitLog(t, logs, "box device not read")
	box.Silence("devices/"+a.Device+"/info", false)
	time.Sleep(500 * time.Millisecond)
	sink.wait(t, time.Second, a.Endpoint)
	if sink.count() != n {
		t.Errorf("bad input changed the camera list (%d reports, was %d)", sink.count(), n)
	}
	if len(cmds.list()) != 0 {
		t.Errorf("bad input ran commands: %v", cmds.list())
	}
}

func waitLog(t *testing.T, logs *logBuf, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCommandsAndState: commands in, answers out; retained state published
// and cleared; nothing outside the root, too large or unknown runs.
func TestCommandsAndState(t *testing.T) {
	broker := testbed.Mosquitto(t, testbed.MosquittoOptions{})
	root := testbed.ZipatoSampleRoot
	cmds := &fakeCommands{}
	var stMu sync.Mutex
	last := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	states := []zipato.CameraState{
		{ID: "cam1", Name: "Front", Online: true, Recording: true, Record: "high", PTZ: true, LastSegment: &last, UploadBacklog: 3},
		{ID: "cam2", Name: "Back", Record: "off"},
	}
	obs := observe(t, broker.URL, "", "", "#")
	c, _, logs := startClient(t, clientOpts{broker: broker.URL, cmds: cmds, state: func() []zipato.CameraState {
		stMu.Lock()
		defer stMu.Unlock()
		return append([]zipato.CameraState(nil), states...)
	}})
	obs.waitMsg(t, root+"hubd/status", func(m mqtt.Message) bool { return string(m.Payload()) == "online" })
	st := obs.waitMsg(t, root+"cameras/cam1/state", nil)
	var got zipato.CameraState
	if err := json.Unmarshal(st.Payload(), &got); err != nil || got.UploadBacklog != 3 || !got.Recording || got.LastSegment == nil {
		t.Errorf("cam1 state %s (%v)", st.Payload(), err)
	}
	if !st.Retained() && !c.Connected() {
		t.Error("state not retained")
	}
	// A late subscriber gets the retained state (once it was published).
	obs.waitMsg(t, root+"cameras/cam2/state", nil)
	late := observe(t, broker.URL, "", "", root+"cameras/+/state")
	late.waitMsg(t, root+"cameras/cam2/state", func(m mqtt.Message) bool { return m.Retained() })

	// answer waits for a command's answer and returns it with what was
	// published before it (the snapshot's image), then forgets both.
	answer := func(cam, verb string) (zipato.Answer, []mqtt.Message) {
		t.Helper()
		m := obs.waitMsg(t, root+"cameras/"+cam+"/"+verb, nil)
		var a zipato.Answer
		if err := json.Unmarshal(m.Payload(), &a); err != nil {
			t.Fatalf("answer %s: %v", m.Payload(), err)
		}
		obs.mu.Lock()
		seen := obs.msgs
		obs.msgs = nil
		obs.mu.Unlock()
		return a, seen
	}
	tests := []struct {
		topic, payload string
		call           string // expected command call ("" none)
		status         int
	}{
		{"request/cameras/cam1/ptz", "up", "ptz cam1 up 0", 200},
		{"request/cameras/cam1/ptz", "HOME", "ptz cam1 home 0", 200},
		{"request/cameras/cam1/ptz", "preset/4", "ptz cam1 preset 4", 200},
		{"request/cameras/noptz/ptz", "left", "ptz noptz left 0", 409},
		{"request/cameras/cam1/ptz", "spin", "", 400},
		{"request/cameras/cam1/ptz", "preset/999", "", 400},
		{"request/cameras/cam1/record", "off", "record cam1 false", 200},
		{"request/cameras/cam1/record", "maybe", "", 400},
		{"request/cameras/cam1/snapshot", "get", "snapshot cam1", 200},
		{"request/cameras/cam1/ptz", strings.Repeat("up", 1<<19), "", 400}, // 1 MiB
	}
	for _, tt := range tests {
		before := len(cmds.list())
		obs.publish(t, root+tt.topic, []byte(tt.payload))
		verb := tt.topic[strings.LastIndex(tt.topic, "/")+1:]
		cam := strings.Split(tt.topic, "/")[2]
		a, seen := answer(cam, verb)
		calls := cmds.list()[before:]
		if a.Status != tt.status || a.OK != (tt.status == 200) {
			t.Errorf("%s %.20q: answer %+v, want status %d", tt.topic, tt.payload, a, tt.status)
		}
		if (tt.call == "" && len(calls) != 0) || (tt.call != "" && (len(calls) != 1 || calls[0] != tt.call)) {
			t.Errorf("%s %.20q: calls %v, want %q", tt.topic, tt.payload, calls, tt.call)
		}
		if verb == "snapshot" && a.OK {
			var img []byte
			for _, m := range seen {
				if m.Topic() == root+"cameras/cam1/snapshot/image" {
					img = m.Payload()
				}
			}
			if !bytes.HasPrefix(img, []byte("\xff\xd8")) || a.Bytes != len(img) || a.Image != root+"cameras/cam1/snapshot/image" {
				t.Errorf("snapshot image %q, answer %+v", img, a)
			}
		}
	}
	// Outside the root, and malformed command topics: nothing runs.
	before := len(cmds.list())
	for _, topic := range []string{"zipato/other-box/request/cameras/cam1/ptz", "request/cameras/cam1/ptz", root + "request/cameras/cam1/ptz/extra", root + "request/cameras/cam1/reboot"} {
		obs.publish(t, topic, []byte("up"))
	}
	time.Sleep(300 * time.Millisecond)
	if calls := cmds.list()[before:]; len(calls) != 0 {
		t.Errorf("commands outside the API ran: %v", calls)
	}
	if !strings.Contains(logs.String(), "MQTT command ignored") && !strings.Contains(logs.String(), "MQTT command refused") {
		t.Error("malformed command topics not logged")
	}

	// A camera gone: its retained state is cleared.
	stMu.Lock()
	states = states[:1]
	stMu.Unlock()
	obs.waitMsg(t, root+"cameras/cam2/state", func(m mqtt.Message) bool { return len(m.Payload()) == 0 })
	for _, m := range obs.all() {
		if bytes.Contains(m.Payload(), []byte("s3cret")) {
			t.Errorf("a password on %s", m.Topic())
		}
	}
}

// TestPasswordAndACL: mosquitto with a password file and an ACL. Wrong
// credentials are refused, logged and retried without the password in the
// log; right ones read the tree; the ACL confines hubd to the box's root.
func TestPasswordAndACL(t *testing.T) {
	acl := "user box\ntopic readwrite zipato/#\n\nuser hubd\ntopic readwrite " + testbed.ZipatoSampleRoot + "#\n"
	broker := testbed.Mosquitto(t, testbed.MosquittoOptions{Users: map[string]string{"box": "box-pw", "hubd": "hubd-pw"}, ACL: acl})
	a := rtspCam("a")
	testbed.StartZipatoBox(t, testbed.ZipatoBoxOptions{Broker: broker.URL, Username: "box", Password: "box-pw", Tree: testbed.ZipatoTree(t, nil, a)})

	c, sink, logs := startClient(t, clientOpts{broker: broker.URL, user: "hubd", pass: "wrong-pw"})
	waitLog(t, logs, "not Authorized")
	time.Sleep(500 * time.Millisecond)
	if c.Connected() || sink.count() != 0 {
		t.Error("connected with a wrong password")
	}
	if n := strings.Count(logs.String(), "MQTT broker not reachable"); n != 1 {
		t.Errorf("refusal logged %d times, want once", n)
	}
	if strings.Contains(logs.String(), "wrong-pw") {
		t.Error("password in the log")
	}

	_, sink, _ = startClient(t, clientOpts{broker: broker.URL, user: "hubd", pass: "hubd-pw"})
	sink.wait(t, 10*time.Second, a.Endpoint)
	if !strings.Contains(broker.Logs(), "hubd") {
		t.Errorf("mosquitto log does not show hubd:\n%s", broker.Logs())
	}
}

// Anything that reaches dispatch from outside the root is only logged.
func TestOutsideRootIgnored(t *testing.T) {
	_, err := zipato.New(zipato.Config{Broker: "tcp://127.0.0.1:1", ClientID: "x", TopicRoot: "zipato/#/"})
	if err == nil {
		t.Error("a topic root with a wildcard was accepted")
	}
	if _, err := zipato.ParseCommand("request/cameras/../ptz", []byte("up")); err == nil {
		t.Error("a camera id of .. was accepted")
	}
	if _, err := zipato.ParseCommand("request/cameras/a+b/ptz", []byte("up")); err == nil {
		t.Error("a camera id with + was accepted")
	}
	if cmd, err := zipato.ParseCommand("request/cameras/cam1/ptz", []byte(" Preset/12 \n")); err != nil || cmd.Preset != 12 {
		t.Errorf("preset: %+v, %v", cmd, err)
	}
	var ce *zipato.CommandError
	if errors.As(errors.New("x"), &ce) {
		t.Error("errors.As matched a plain error")
	}
}

func FuzzParseCommand(f *testing.F) {
	f.Add("request/cameras/cam1/ptz", []byte("up"))
	f.Add("request/cameras/cam1/ptz", []byte("preset/3"))
	f.Add("request/cameras/cam1/record", []byte("on"))
	f.Add("request/cameras/x/snapshot", []byte("get"))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		cmd, err := zipato.ParseCommand(topic, payload)
		if err != nil {
			return
		}
		if cmd.Camera == "" || strings.ContainsAny(cmd.Camera, "/+#") {
			t.Fatalf("bad camera %q accepted", cmd.Camera)
		}
		if cmd.Verb == "ptz" && cmd.Action == "preset" && (cmd.Preset < 1 || cmd.Preset > 255) {
			t.Fatalf("preset %d accepted", cmd.Preset)
		}
	})
}

// TestBrokerRestart: the broker goes away and comes back. Meanwhile the
// client keeps its cameras (no empty list), publishing returns at once
// (recording never waits on MQTT), and it reconnects with its backoff:
// the retained state is published again to the new broker, which kept
// nothing, and the box's tree is read again.
func TestBrokerRestart(t *testing.T) {
	broker := testbed.Mosquitto(t, testbed.MosquittoOptions{})
	a := rtspCam("a")
	tree := testbed.ZipatoTree(t, nil, a)
	testbed.StartZipatoBox(t, testbed.ZipatoBoxOptions{Broker: broker.URL, Tree: tree})
	state := func() []zipato.CameraState {
		return []zipato.CameraState{{ID: a.Endpoint, Name: "a", Online: true, Recording: true, Record: "high"}}
	}
	c, sink, logs := startClient(t, clientOpts{broker: broker.URL, state: state})
	sink.wait(t, 10*time.Second, a.Endpoint)
	observe(t, broker.URL, "", "", testbed.ZipatoSampleRoot+"cameras/+/state").
		waitMsg(t, testbed.ZipatoSampleRoot+"cameras/"+a.Endpoint+"/state", func(m mqtt.Message) bool { return m.Retained() })
	n := sink.count()

	broker.Stop()
	waitLog(t, logs, "MQTT connection lost")
	if c.Connected() {
		t.Error("connected to a stopped broker")
	}
	done := make(chan struct{})
	go func() { c.PublishState(); c.Resync(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("PublishState blocked while the broker is down")
	}
	time.Sleep(time.Second) // a few reconnect attempts fail
	if sink.count() != n {
		t.Errorf("the cameras changed while the broker was down")
	}
	if !strings.Contains(logs.String(), "MQTT broker not reachable") {
		t.Error("the failed reconnect was not logged")
	}

	back := testbed.Mosquitto(t, testbed.MosquittoOptions{Port: broker.Port})
	b := rtspCam("b")
	testbed.StartZipatoBox(t, testbed.ZipatoBoxOptions{Broker: back.URL, Tree: testbed.ZipatoTree(t, tree, b)})
	sink.wait(t, 10*time.Second, a.Endpoint, b.Endpoint)
	// Subscribed after the reconnect, so that the state comes as retained
	// (a subscriber present at the publish gets it with retain unset).
	observe(t, back.URL, "", "", testbed.ZipatoSampleRoot+"cameras/+/state").
		waitMsg(t, testbed.ZipatoSampleRoot+"cameras/"+a.Endpoint+"/state", func(m mqtt.Message) bool { return m.Retained() })
	if !c.Connected() || strings.Count(logs.String(), "MQTT connected") < 2 {
		t.Errorf("not reconnected:\n%s", logs.String())
	}
}

// TestTLSBroker: an ssl:// broker (mosquitto with a certificate of a
// private CA) is used with zipato.ca_file; without it the certificate is
// refused, and the refusal is logged.
func TestTLSBroker(t *testing.T) {
	broker := testbed.Mosquitto(t, testbed.MosquittoOptions{TLS: true, Users: map[string]string{"box": "box-pw", "hubd": "hubd-pw"}})
	a := rtspCam("a")
	testbed.StartZipatoBox(t, testbed.ZipatoBoxOptions{Broker: broker.URL, Username: "box", Password: "box-pw", Tree: testbed.ZipatoTree(t, nil, a)})

	_, sink, _ := startClient(t, clientOpts{broker: broker.TLSURL, user: "hubd", pass: "hubd-pw", caFile: broker.CAFile})
	sink.wait(t, 10*time.Second, a.Endpoint)

	c, sink, logs := startClient(t, clientOpts{broker: broker.TLSURL, user: "hubd", pass: "hubd-pw"})
	waitLog(t, logs, "certificate")
	if c.Connected() || sink.count() != 0 {
		t.Error("connected to a broker whose certificate it cannot verify")
	}
	if _, err := zipato.New(zipato.Config{Broker: broker.TLSURL, ClientID: "x", TopicRoot: "r/", CAFile: "/nonexistent"}); err == nil {
		t.Error("a missing ca_file was accepted")
	}
}
