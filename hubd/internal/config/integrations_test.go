package config

import (
	"errors"
	"strings"
	"testing"
)

func TestIntegrationDefaults(t *testing.T) {
	cfg, err := Parse([]byte("hub: {id: box7}\nzipato: {broker: 'tcp://127.0.0.1:1883', client_id: zipabox-0107B6200D01C356}\n"))
	if err != nil {
		t.Fatal(err)
	}
	z := cfg.Zipato
	if z.TopicBase != "zipato/" || z.QoS != 1 || z.RequestTimeoutSeconds != 5 || z.ResyncSeconds != 600 || z.StateSeconds != 10 {
		t.Errorf("zipato defaults %+v", z)
	}
	if got := z.TopicRoot(); got != "zipato/zipabox-0107B6200D01C356/" {
		t.Errorf("topic root %q", got)
	}
	if got := cfg.MQTTClientID(); got != "hubd-box7" {
		t.Errorf("hubd's MQTT client id %q", got)
	}
	if cfg.ONVIF.Discovery || cfg.ONVIF.Address != "239.255.255.250:3702" {
		t.Errorf("onvif defaults %+v", cfg.ONVIF)
	}
	if cfg.PTZ.MoveSeconds != 1 || cfg.PTZ.TimeoutSeconds != 5 {
		t.Errorf("ptz defaults %+v", cfg.PTZ)
	}
	cfg, err = Parse([]byte("zipato: {broker: 'ssl://b:8883', topic_base: 'home/', topic_prefix: 'box/', hubd_client_id: me}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Zipato.TopicRoot(); got != "home/box/" {
		t.Errorf("topic root with prefix %q", got)
	}
	if cfg.MQTTClientID() != "me" {
		t.Errorf("hubd_client_id not used: %q", cfg.MQTTClientID())
	}
}

func TestIntegrationErrors(t *testing.T) {
	const mq = "zipato: {broker: 'tcp://127.0.0.1:1883', client_id: zipabox-1, "
	tests := []struct {
		name, doc, key string
		want           []string
	}{
		{"broker scheme", "zipato: {broker: 'http://b:1883', client_id: x}\n", "zipato.broker", []string{"http"}},
		{"broker without host", "zipato: {broker: 'tcp://:1883', client_id: x}\n", "zipato.broker", []string{"no host"}},
		{"broker with credentials", "zipato: {broker: 'tcp://u:hunter2@b:1883', client_id: x}\n", "zipato.broker", []string{"zipato.username"}},
		{"broker unparsable", "zipato: {broker: 'tcp://u:hunter2@b:port', client_id: x}\n", "zipato.broker", nil},
		{"no client id nor prefix", "zipato: {broker: 'tcp://b:1883'}\n", "zipato.client_id", []string{"topic_prefix"}},
		{"hubd takes the box's id", mq + "hubd_client_id: zipabox-1}\n", "zipato.hubd_client_id", []string{"disconnect"}},
		{"wildcard in base", mq + "topic_base: 'zipato/#/'}\n", "zipato.topic_base", []string{"wildcards"}},
		{"wildcard in client id", "zipato: {broker: 'tcp://b:1883', client_id: 'box+'}\n", "zipato.client_id", []string{"wildcards"}},
		{"base without slash", mq + "topic_base: zipato}\n", "zipato.topic_base", []string{`"/"`}},
		{"prefix without slash", mq + "topic_prefix: box}\n", "zipato.topic_prefix", nil},
		{"qos 3", mq + "qos: 3}\n", "zipato.qos", []string{"3"}},
		{"qos negative", mq + "qos: -1}\n", "zipato.qos", nil},
		{"password without user", "zipato: {password: hunter2}\n", "zipato.username", nil},
		{"request timeout 0", "zipato: {request_timeout_seconds: 0}\n", "zipato.request_timeout_seconds", nil},
		{"resync NaN", "zipato: {resync_seconds: .nan}\n", "zipato.resync_seconds", nil},
		{"state_seconds huge", "zipato: {state_seconds: 1e9}\n", "zipato.state_seconds", nil},
		{"onvif address", "onvif: {discovery: true, address: '239.255.255.250'}\n", "onvif.address", []string{"host:port"}},
		{"onvif interval", "onvif: {interval_seconds: 1}\n", "onvif.interval_seconds", nil},
		{"onvif probe", "onvif: {probe_seconds: -1}\n", "onvif.probe_seconds", nil},
		{"onvif record", "onvif: {record: best}\n", "onvif.record", []string{"best"}},
		{"onvif password without user", "onvif: {password: x}\n", "onvif.username", nil},
		{"ptz move 0", "ptz: {move_seconds: 0}\n", "ptz.move_seconds", nil},
		{"ptz timeout inf", "ptz: {timeout_seconds: .inf}\n", "ptz.timeout_seconds", nil},
		{"unknown zipato key", "zipato: {brokers: x}\n", "", []string{"brokers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.doc, cfg)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.key != "" {
				var ke *KeyError
				if !errors.As(err, &ke) || ke.Key != tt.key {
					t.Fatalf("error %v, want a KeyError for %s", err, tt.key)
				}
			}
		})
	}
}
