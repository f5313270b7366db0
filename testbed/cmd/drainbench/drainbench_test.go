package main

import (
	"context"
	"github.com/zipnvr/zipnvr/testbed/procstat"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1GiB": 1 << 30, "200MiB": 200 << 20, "7.5MB": 7_500_000, "1048576": 1 << 20,
		" 64 KiB ": 64 << 10, "2GB": 2e9, "10B": 10,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1MB", "x", "1XB", "NaN", "0.5", "2PiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestParseParallel(t *testing.T) {
	got, err := parseParallel("2, 4,8")
	if err != nil || !reflect.DeepEqual(got, []int{2, 4, 8}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "33", "2,,4", "x", "2,2"} {
		if _, err := parseParallel(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.bytes != 1<<30 || o.segBytes != 7_500_000 || !reflect.DeepEqual(o.parallel, []int{2}) || o.rounds != 2 {
		t.Fatalf("defaults: %+v", o)
	}
	for _, bad := range [][]string{
		{"-bytes", "1MB", "-segment-bytes", "2MB"},
		{"-rounds", "0"},
		{"-parallel", "64"},
		{"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRelayTimes(t *testing.T) {
	up, rec := "POST /api/v1/hub/uploads", "POST /api/v1/hub/recordings"
	before := map[string]float64{routeSeries("count", up): 4, routeSeries("sum", up): 1, "relay_recordings_stored_total": 4}
	after := map[string]float64{
		routeSeries("count", up): 14, routeSeries("sum", up): 1.5,
		routeSeries("count", rec): 10, routeSeries("sum", rec): 0.02,
		"relay_recordings_stored_total": 14,
	}
	got := relayTimes(before, after)
	want := relayStats{Presign: relayRoute{10, 0.05}, Notify: relayRoute{10, 0.002}, Stored: 10}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{4, 2}, 3}, {[]float64{5, 1, 3}, 3}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestSummarizeJudges(t *testing.T) {
	mk := func(up string, p int, secs float64, problems ...string) *result {
		return &result{Uploader: up, Parallel: p, Bytes: 1e9, Segments: 100, Seconds: secs, Problems: problems}
	}
	runs := []*result{
		mk("aws s3 cp", 10, 10), mk("hubd", 2, 14), mk("hubd", 8, 9),
		mk("aws s3 cp", 10, 12), mk("hubd", 2, 16), mk("hubd", 8, 11),
		mk("hubd", 8, 1, "broken"), // a broken run is not counted
	}
	sums := summarize(runs)
	if len(sums) != 3 {
		t.Fatalf("got %d summaries: %+v", len(sums), sums)
	}
	ref, p2, p8 := sums[0], sums[1], sums[2]
	if ref.Judged || ref.Seconds != 11 || math.Abs(ref.MBps-1000/11.0) > 1e-9 {
		t.Errorf("reference %+v", ref)
	}
	if !p2.Judged || p2.Pass || math.Abs(p2.Ratio-11.0/15) > 1e-9 {
		t.Errorf("parallel 2 (ratio 0.73) %+v", p2)
	}
	if !p8.Judged || !p8.Pass || p8.Runs != 2 || math.Abs(p8.Ratio-1.1) > 1e-9 {
		t.Errorf("parallel 8 (ratio 1.1) %+v", p8)
	}
	if allPass(sums) {
		t.Error("allPass with a miss")
	}
	if s := summarize(runs[1:3]); s[0].Judged || s[1].Judged {
		t.Errorf("judged without a reference: %+v", s)
	}
}

func TestHubdConfigParses(t *testing.T) {
	cfg := hubdConfig("hubd-r1-p2", `/tmp/a "b"`, 8<<30, "http://127.0.0.1:5", "hub_secret", 4)
	var got struct {
		Hub struct {
			ID        string `yaml:"id"`
			DataDir   string `yaml:"data_dir"`
			RingBytes int64  `yaml:"ring_bytes"`
		} `yaml:"hub"`
		Relay struct {
			URL        string `yaml:"url"`
			Credential string `yaml:"credential"`
			Parallel   int    `yaml:"parallel_uploads"`
		} `yaml:"relay"`
		Log     map[string]string `yaml:"log"`
		Cameras []any             `yaml:"cameras"`
	}
	dec := yaml.NewDecoder(strings.NewReader(cfg))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	if got.Hub.ID != "hubd-r1-p2" || got.Hub.DataDir != `/tmp/a "b"` || got.Hub.RingBytes != 8<<30 ||
		got.Relay.URL != "http://127.0.0.1:5" || got.Relay.Credential != "hub_secret" || got.Relay.Parallel != 4 ||
		got.Cameras == nil || len(got.Cameras) != 0 {
		t.Fatalf("decoded %+v from\n%s", got, cfg)
	}
}

func TestRelayConfigParses(t *testing.T) {
	s3 := &s3Server{endpoint: "http://127.0.0.1:9", accessKey: "ak", secretKey: "sk"}
	var got map[string]any
	if err := yaml.Unmarshal([]byte(relayConfig("127.0.0.1:8", "/tmp/r", "t0k3n", s3)), &got); err != nil {
		t.Fatal(err)
	}
	s, _ := got["s3"].(map[string]any)
	if got["listen"] != "127.0.0.1:8" || got["admin_token"] != "t0k3n" || s["endpoint"] != "http://127.0.0.1:9" ||
		s["bucket"] != bucket || s["path_style"] != true || s["access_key"] != "ak" {
		t.Fatalf("decoded %v", got)
	}
}

func TestAWSEnvDropsCallerSettings(t *testing.T) {
	s3 := &s3Server{accessKey: "ak", secretKey: "sk"}
	env := awsEnv([]string{"PATH=/bin", "AWS_PROFILE=prod", "AWS_ENDPOINT_URL=http://x", "HOME=/root"}, "/tmp/c", s3)
	joined := strings.Join(env, "\n")
	for _, want := range []string{"PATH=/bin", "HOME=/root", "AWS_ACCESS_KEY_ID=ak", "AWS_SECRET_ACCESS_KEY=sk", "AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/tmp/c"} {
		if !strings.Contains(joined, want+"\n") && !strings.HasSuffix(joined, want) {
			t.Errorf("env lacks %s", want)
		}
	}
	if strings.Contains(joined, "AWS_PROFILE") || strings.Contains(joined, "AWS_ENDPOINT_URL") {
		t.Errorf("caller's AWS settings kept:\n%s", joined)
	}
	if c := awsConfig(0); strings.Contains(c, "max_concurrent_requests") {
		t.Errorf("default config sets concurrency: %q", c)
	}
	if c := awsConfig(4); !strings.Contains(c, "max_concurrent_requests = 4") {
		t.Errorf("config %q", c)
	}
}

func TestSegmentDuration(t *testing.T) {
	for _, c := range []struct {
		bytes int64
		want  time.Duration
	}{{7_500_000, 30 * time.Second}, {1000, time.Second}, {5 << 30, time.Hour}} {
		if got := segmentDuration(c.bytes, cameraBitrate); got != c.want {
			t.Errorf("segmentDuration(%d) = %s, want %s", c.bytes, got, c.want)
		}
	}
}

// TestBacklog builds the generator (hubd's ring),
// writes a small backlog and clones it.
func TestBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	ctx := context.Background()
	root, err := procstat.ModuleRoot(ctx)
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	bin, err := buildRinggen(ctx, root, dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	o := &options{bytes: 2500, segBytes: 1000}
	bl, err := makeBacklog(ctx, o, binaries{ringgen: bin}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if bl.segments != 3 || bl.bytes != 2500 {
		t.Fatalf("backlog %+v", bl)
	}
	dst := filepath.Join(dir, "clone")
	if err := bl.clone(dst); err != nil {
		t.Fatal(err)
	}
	n, total, err := scanTree(filepath.Join(dst, segmentsDir))
	if err != nil || n != 3 || total != 2500 {
		t.Fatalf("clone holds %d files, %d bytes, %v", n, total, err)
	}
	if _, err := os.Stat(filepath.Join(dst, indexFile)); err != nil {
		t.Fatal(err)
	}
	// The pristine index is untouched by what a drain does to the clone's.
	a, _ := os.ReadFile(filepath.Join(bl.dataDir, indexFile))
	if err := os.WriteFile(filepath.Join(dst, indexFile), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(bl.dataDir, indexFile))
	if len(a) == 0 || string(a) != string(b) {
		t.Fatal("the clone's index is not a copy")
	}
}
