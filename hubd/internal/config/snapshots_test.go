package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSnapshotsConfig(t *testing.T) {
	base := "hub: {id: h, data_dir: /tmp/h}\n"
	for _, tc := range []struct {
		yaml  string
		every time.Duration
		err   string
	}{
		{"", 0, ""},
		{"snapshots: {every_minutes: 15}\n", 15 * time.Minute, ""},
		{"snapshots: {every_minutes: 0.5}\n", 30 * time.Second, ""},
		{"snapshots: {every_minutes: 0.05}\n", 0, "snapshots.every_minutes: must be 0 (off) or 0.1 to 1440, got 0.05"},
		{"snapshots: {every_minutes: -1}\n", 0, "snapshots.every_minutes"},
		{"snapshots: {every_minutes: 2000}\n", 0, "snapshots.every_minutes"},
		{"snapshots: {every_minutes: .nan}\n", 0, "snapshots.every_minutes"},
		{"snapshots: {every_minute: 5}\n", 0, "every_minute"},
	} {
		cfg, err := Parse([]byte(base + tc.yaml))
		if tc.err != "" {
			var ke *KeyError
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.HasPrefix(tc.err, "snapshots.") && !errors.As(err, &ke) {
				t.Errorf("%q: %v, want an error with %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		if got := cfg.Snapshots.Every(); got != tc.every {
			t.Errorf("%q: every %v, want %v", tc.yaml, got, tc.every)
		}
	}
}
