package zipato

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Config of the box's MQTT client.
type Config struct {
	Broker   string // tcp://host:1883, ssl://host:8883, ...
	Username string
	Password string
	CAFile   string // PEM roots for ssl:// (empty: the system's)
	// ClientID is hubd's own MQTT client id (not the box's).
	ClientID string
	// TopicRoot is topicBase + (topicPrefix or the box's clientId + "/").
	TopicRoot string
	QoS       byte
	// RequestTimeout bounds each request of the box's API (default 5 s).
	RequestTimeout time.Duration
	// ResyncInterval re-reads the whole tree (default 10 min).
	ResyncInterval time.Duration
	// StateInterval is how often changed camera state is published (default 10 s).
	StateInterval time.Duration
	// MinBackoff and MaxBackoff bound the reconnect wait (default 1 s, 30 s).
	MinBackoff, MaxBackoff time.Duration

	// OnCameras is told the box's cameras after each read of the tree that
	// succeeded. It is never told an empty list because the broker is down.
	OnCameras func([]camera.Camera)
	// OnProblems is told the endpoints that could not become cameras.
	OnProblems func([]Problem)
	// Commands carries out commands; nil: commands are answered with an error.
	Commands Commands
	// State returns every camera's state for publishing; nil: none.
	State  func() []CameraState
	Logger *slog.Logger
}

// MaxCommandsInFlight bounds the MQTT commands carried out at once (a
// camera request can take seconds); more are answered "busy".
const MaxCommandsInFlight = 4

// Client is hubd's MQTT client of the box: device tree, state, commands.
type Client struct {
	cfg  Config
	log  *slog.Logger
	sync *syncer
	cli  mqtt.Client

	connected atomic.Bool
	lost      chan error // the connection dropped
	resync    chan struct{}

	mu      sync.Mutex
	waiters map[string][]chan []byte // response topic -> requests waiting
	dirty   map[string]bool          // devices whose status came in
	// published is the state last published per camera (kept across
	// connections, so that a camera removed meanwhile is cleared);
	// republish sends every state again after a connect.
	published map[string]CameraState
	republish bool

	cmdSem chan struct{} // bounds commands in flight
}

// Payload bounds: a command is a word; an answer of the box is a piece of
// the device tree.
const (
	maxCommandBytes = 1 << 10
	maxAnswerBytes  = MaxTreeBytes
)

// New checks the config and prepares the client; Run connects.
func New(cfg Config) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 10 * time.Minute
	}
	if cfg.StateInterval <= 0 {
		cfg.StateInterval = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.TopicRoot == "" || strings.ContainsAny(cfg.TopicRoot, "+#") {
		return nil, fmt.Errorf("zipato: unusable topic root %q", cfg.TopicRoot)
	}
	c := &Client{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "zipato"),
		lost:      make(chan error, 1),
		resync:    make(chan struct{}, 1),
		waiters:   map[string][]chan []byte{},
		dirty:     map[string]bool{},
		published: map[string]CameraState{},
		cmdSem:    make(chan struct{}, MaxCommandsInFlight),
	}
	c.sync = newSyncer(c.request, c.log)

	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(true).
		SetAutoReconnect(false). // Run reconnects, so that it sees and logs each failure
		SetConnectRetry(false).
		SetConnectTimeout(10*time.Second).
		SetKeepAlive(30*time.Second).
		SetPingTimeout(10*time.Second).
		SetOrderMatters(false).
		SetWill(c.topic(statusTopic), "offline", cfg.QoS, true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.connected.Store(false)
			select {
			case c.lost <- err:
			default:
			}
		}).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { c.dispatch(m.Topic(), m.Payload()) })
	if strings.HasPrefix(cfg.Broker, "ssl://") || strings.HasPrefix(cfg.Broker, "tls://") || strings.HasPrefix(cfg.Broker, "mqtts://") || strings.HasPrefix(cfg.Broker, "wss://") {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("zipato.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("zipato.ca_file %s: no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		opts.SetTLSConfig(tc)
	}
	c.cli = mqtt.NewClient(opts)
	return c, nil
}

// Topics below the root that hubd itself publishes or serves.
const (
	statusTopic   = "hubd/status"       // retained online/offline (will)
	cameraTopic   = "cameras/"          // cameras/<id>/state, answers cameras/<id>/<command>
	commandPrefix = "request/cameras/"  // request/cameras/<id>/<command>
	requestPrefix = "request/"          // the box's API: request/<path> -> <path>
	snapshotImage = "/snapshot/image"   // cameras/<id>/snapshot/image: the JPEG
	stateSuffix   = "/state"            // cameras/<id>/state
	deviceStatus  = "devices/+/status"  // the box's unsolicited device status
	networksList  = "networks/list"     // answer to request/networks/list
	infoFilter    = "%s/+/info"         // networks|devices|endpoints|clusterEndpoints
	commandFilter = "request/cameras/#" // commands to hubd
)

func (c *Client) topic(rel string) string { return c.cfg.TopicRoot + rel }

// Connected says whether the broker connection is up.
func (c *Client) Connected() bool { return c.connected.Load() }

// CommandsInFlight is the number of MQTT commands being carried out now
// (at most MaxCommandsInFlight; more are refused as busy).
func (c *Client) CommandsInFlight() int { return len(c.cmdSem) }

// Resync asks for a full re-read of the tree soon.
func (c *Client) Resync() {
	select {
	case c.resync <- struct{}{}:
	default:
	}
}

// Run connects, reads the tree, follows it and publishes state until ctx
// ends, reconnecting with capped, jittered backoff. Recording never waits
// on any of it.
func (c *Client) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { c.publishLoop(ctx) })
	wg.Go(func() { c.syncLoop(ctx) })
	defer wg.Wait()

	backoff := c.cfg.MinBackoff
	lastErr := ""
	for ctx.Err() == nil {
		err := c.connect(ctx)
		if err == nil {
			backoff = c.cfg.MinBackoff
			lastErr = ""
			select {
			case <-ctx.Done():
				c.disconnect()
				return nil
			case err = <-c.lost:
				c.log.Warn("MQTT connection lost; reconnecting", "broker", c.cfg.Broker, "err", err)
			}
		} else if ctx.Err() != nil {
			break
		} else if msg := err.Error(); msg != lastErr {
			c.log.Warn("MQTT broker not reachable; retrying", "broker", c.cfg.Broker, "err", err, "retry_in", backoff)
			lastErr = msg
		}
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff)/2+1))
		backoff = min(2*backoff, c.cfg.MaxBackoff)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

func (c *Client) connect(ctx context.Context) error {
	select {
	case <-c.lost: // a stale signal of the last connection
	default:
	}
	tok := c.cli.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	filters := map[string]byte{
		c.topic(networksList):                                c.cfg.QoS,
		c.topic(fmt.Sprintf(infoFilter, "networks")):         c.cfg.QoS,
		c.topic(fmt.Sprintf(infoFilter, "devices")):          c.cfg.QoS,
		c.topic(fmt.Sprintf(infoFilter, "endpoints")):        c.cfg.QoS,
		c.topic(fmt.Sprintf(infoFilter, "clusterEndpoints")): c.cfg.QoS,
		c.topic(deviceStatus):                                c.cfg.QoS,
		c.topic(commandFilter):                               c.cfg.QoS,
	}
	sub := c.cli.SubscribeMultiple(filters, nil)
	if !sub.WaitTimeout(c.cfg.RequestTimeout) || sub.Error() != nil {
		err := sub.Error()
		if err == nil {
			err = errors.New("no SUBACK in time")
		}
		c.cli.Disconnect(100)
		return fmt.Errorf("subscribe: %w", err)
	}
	c.connected.Store(true)
	c.log.Info("MQTT connected", "broker", c.cfg.Broker, "client_id", c.cfg.ClientID, "topic_root", c.cfg.TopicRoot)
	c.publish(c.topic(statusTopic), true, []byte("online"))
	c.mu.Lock()
	c.republish = true
	c.mu.Unlock()
	go c.PublishState()
	c.Resync()
	return nil
}

func (c *Client) disconnect() {
	if c.connected.Load() {
		c.publish(c.topic(statusTopic), true, []byte("offline"))
	}
	c.connected.Store(false)
	c.cli.Disconnect(250)
}

// publish sends one message; it never blocks longer than the request
// timeout and never fails the caller: state is sent again later anyway.
func (c *Client) publish(topic string, retained bool, payload []byte) bool {
	if !c.connected.Load() {
		return false
	}
	tok := c.cli.Publish(topic, c.cfg.QoS, retained, payload)
	if !tok.WaitTimeout(c.cfg.RequestTimeout) {
		c.log.Debug("MQTT publish not acknowledged in time", "topic", topic)
		return false
	}
	if err := tok.Error(); err != nil {
		c.log.Debug("MQTT publish failed", "topic", topic, "err", err)
		return false
	}
	return true
}

// request publishes "get" on request/<path> and waits for the answer on
// <path>. The box's API has no correlation id: any answer on that topic
// answers every request waiting for it.
func (c *Client) request(ctx context.Context, path string) ([]byte, error) {
	if !c.connected.Load() {
		return nil, errors.New("not connected to the broker")
	}
	resp := c.topic(path)
	ch := make(chan []byte, 1)
	c.mu.Lock()
	c.waiters[resp] = append(c.waiters[resp], ch)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		list := c.waiters[resp]
		for i, w := range list {
			if w == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(c.waiters, resp)
		} else {
			c.waiters[resp] = list
		}
	}()
	if !c.publish(c.topic(requestPrefix+path), false, []byte("get")) {
		return nil, errors.New("request not sent")
	}
	t := time.NewTimer(c.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case data := <-ch:
		return data, nil
	case <-t.C:
		return nil, fmt.Errorf("no answer within %v", c.cfg.RequestTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dispatch routes one incoming message. Nothing from outside the topic
// root, and nothing malformed, goes further than a log line.
func (c *Client) dispatch(topic string, payload []byte) {
	rel, ok := strings.CutPrefix(topic, c.cfg.TopicRoot)
	if !ok {
		c.log.Warn("MQTT message outside the topic root ignored", "topic", clip(topic), "root", c.cfg.TopicRoot)
		return
	}
	if strings.HasPrefix(rel, commandPrefix) {
		c.command(rel, payload)
		return
	}
	if len(payload) > maxAnswerBytes {
		c.log.Warn("MQTT message too large ignored", "topic", clip(topic), "bytes", len(payload), "max", maxAnswerBytes)
		return
	}
	if id, ok := deviceOfStatus(rel); ok {
		c.deviceStatus(id)
		return
	}
	c.mu.Lock()
	ws := c.waiters[topic]
	delete(c.waiters, topic)
	c.mu.Unlock()
	if len(ws) == 0 {
		// Answers to another client's request (the box's app uses the
		// same API) land here too: not worth more than a debug line.
		c.log.Debug("MQTT message without a request waiting ignored", "topic", clip(topic), "bytes", len(payload))
	}
	for _, w := range ws {
		w <- payload
	}
}

// deviceOfStatus parses devices/<uuid>/status.
func deviceOfStatus(rel string) (string, bool) {
	rest, ok := strings.CutPrefix(rel, "devices/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/status")
	if !ok || !validUUID(id) {
		return "", false
	}
	return id, true
}

// deviceStatus marks a device to re-read: its config may have changed
// (a camera added, edited or removed on the box).
func (c *Client) deviceStatus(id string) {
	if c.sync.knownOther(id) {
		return // a Z-Wave sensor reporting, say: no camera there
	}
	c.mu.Lock()
	c.dirty[id] = true
	c.mu.Unlock()
	select {
	case c.resync <- struct{}{}:
	default:
	}
}

// syncLoop reads the tree when asked (connect, device status) and every
// ResyncInterval. Status bursts are coalesced.
func (c *Client) syncLoop(ctx context.Context) {
	full := true
	timer := time.NewTimer(c.cfg.ResyncInterval)
	defer timer.Stop()
	var lastCams []camera.Camera
	var lastProblems []Problem
	haveCams := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.resync:
		case <-timer.C:
			full = true
		}
		// Coalesce: a change on the box sends several statuses at once.
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		if !c.connected.Load() {
			full = true
			continue
		}
		c.mu.Lock()
		dirty := c.dirty
		c.dirty = map[string]bool{}
		c.mu.Unlock()
		began := time.Now()
		tree, err := c.sync.sync(ctx, full, dirty)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("device tree not read; keeping the cameras known so far", "err", err)
			full = true
			c.mu.Lock()
			for id := range dirty {
				c.dirty[id] = true
			}
			c.mu.Unlock()
			continue
		}
		if full {
			timer.Reset(c.cfg.ResyncInterval)
		}
		cams, problems := tree.Cameras()
		c.log.Debug("device tree read", "full", full, "cameras", len(cams), "took", time.Since(began).Round(time.Millisecond))
		full = false
		if !reflect.DeepEqual(problems, lastProblems) {
			for _, p := range problems {
				c.log.Warn("box endpoint not usable as a camera", "endpoint", p.Endpoint, "name", p.Name, "reason", p.Reason)
			}
			lastProblems = problems
			if c.cfg.OnProblems != nil {
				c.cfg.OnProblems(problems)
			}
		}
		if !haveCams || !reflect.DeepEqual(cams, lastCams) {
			c.log.Info("cameras of the box", "cameras", len(cams))
			haveCams, lastCams = true, cams
			if c.cfg.OnCameras != nil {
				c.cfg.OnCameras(cams)
			}
		}
	}
}
