package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// contractExample holds the keys the contract names (design.md, "Config shape").
const contractExample = `listen: 127.0.0.1:9090
data_dir: /srv/relay
public_url: https://relay.example/
admin_token: "0123456789abcdef0123456789abcdef"
s3: {endpoint: "http://127.0.0.1:7070", region: eu-west-1, bucket: recordings, access_key: ak, secret_key: sk, path_style: true}
`

func defaultsParsed() Config {
	d := Defaults()
	d.PublicURL = "http://127.0.0.1:8080"
	return d
}

func TestDefaultsValid(t *testing.T) {
	d := defaultsParsed()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if d.S3 != nil || d.AdminToken != "" || d.MaxBodyBytes != 1<<20 || d.RetentionDays != 30 ||
		d.UploadURLExpiry().Minutes() != 15 || d.DownloadURLExpiry().Hours() != 1 {
		t.Fatalf("defaults %+v", d)
	}
}

func TestParseDefaults(t *testing.T) {
	for _, doc := range []string{"", "{}", "---\n", "# comment\n", "log: {}\n", "s3:\n", "s3: null\n"} {
		cfg, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		if !reflect.DeepEqual(*cfg, defaultsParsed()) {
			t.Fatalf("Parse(%q) = %+v, want the defaults", doc, *cfg)
		}
	}
}

func TestParseContractExample(t *testing.T) {
	cfg, err := Parse([]byte(contractExample))
	if err != nil {
		t.Fatal(err)
	}
	want := S3{Endpoint: "http://127.0.0.1:7070", Region: "eu-west-1", Bucket: "recordings", AccessKey: "ak", SecretKey: "sk", PathStyle: true}
	if cfg.Listen != "127.0.0.1:9090" || cfg.DataDir != "/srv/relay" || cfg.PublicURL != "https://relay.example" ||
		len(cfg.AdminToken) != 32 || cfg.S3 == nil || *cfg.S3 != want {
		t.Fatalf("parsed %+v %+v", cfg, cfg.S3)
	}
}

func TestParseKeepsOtherDefaults(t *testing.T) {
	tests := []struct {
		doc   string
		check func(c *Config) bool
	}{
		{"listen: 0.0.0.0:80\n", func(c *Config) bool { return c.PublicURL == "http://0.0.0.0:80" && c.DataDir == "/var/lib/relay" }},
		{"s3: {bucket: media, access_key: a, secret_key: s}\n", func(c *Config) bool {
			return *c.S3 == S3{Region: DefaultS3Region, Bucket: "media", AccessKey: "a", SecretKey: "s"} && c.RetentionDays == 30
		}},
		{"s3: {access_key: a, secret_key: s}\n", func(c *Config) bool {
			return c.S3.Region == DefaultS3Region && c.S3.Bucket == DefaultS3Bucket
		}},
		{"s3: {bucket: a.b.c, path_style: true, access_key: a, secret_key: s}\n", func(c *Config) bool { return c.S3.Bucket == "a.b.c" }},
		{"max_body_bytes: 64KiB\n", func(c *Config) bool { return c.MaxBodyBytes == 64<<10 && c.Log.Level == "info" }},
		{"log: {level: debug}\n", func(c *Config) bool { return c.Log == Log{Level: "debug", Format: "text"} }},
		{"retention_days: 7\nupload_url_seconds: 60\ndownload_url_seconds: 600\n", func(c *Config) bool {
			return c.RetentionDays == 7 && c.UploadURLExpiry().Seconds() == 60 && c.DownloadURLExpiry().Seconds() == 600
		}},
	}
	for _, tt := range tests {
		cfg, err := Parse([]byte(tt.doc))
		if err != nil || !tt.check(cfg) {
			t.Errorf("Parse(%q) = %+v, %v", tt.doc, cfg, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		key  string   // KeyError.Key when the error is a KeyError
		want []string // substrings of the error
	}{
		{name: "malformed", doc: "listen: [\n", want: []string{"line"}},
		{name: "unknown key", doc: "lisen: x\n", want: []string{"lisen"}},
		{name: "unknown s3 key", doc: "s3: {bucket_name: x}\n", want: []string{"bucket_name"}},
		{name: "unknown log key", doc: "log: {colour: red}\n", want: []string{"colour"}},
		{name: "two documents", doc: "listen: a:1\n---\nlisten: b:2\n", want: []string{"more than one YAML document"}},
		{name: "wrong type", doc: "retention_days: thirty\n", want: []string{"line 1", "thirty"}},
		{name: "listen without port", doc: "listen: localhost\n", key: "listen"},
		{name: "listen empty", doc: "listen: ''\n", key: "listen"},
		{name: "data_dir empty", doc: "data_dir: ''\n", key: "data_dir"},
		{name: "public_url no scheme", doc: "public_url: relay.example\n", key: "public_url"},
		{name: "public_url ftp", doc: "public_url: ftp://relay.example\n", key: "public_url"},
		{name: "public_url with credentials", doc: "public_url: https://u:p@relay.example\n", key: "public_url"},
		{name: "public_url with query", doc: "public_url: https://relay.example/?a=b\n", key: "public_url"},
		{name: "admin_token short", doc: "admin_token: too-short-secret\n", key: "admin_token", want: []string{"at least 32"}},
		{name: "admin_token spaces", doc: "admin_token: ' 0123456789abcdef0123456789abcdef'\n", key: "admin_token"},
		{name: "s3 endpoint", doc: "s3: {endpoint: 's3.example'}\n", key: "s3.endpoint"},
		{name: "s3 bucket upper case", doc: "s3: {bucket: Media}\n", key: "s3.bucket"},
		{name: "s3 bucket short", doc: "s3: {bucket: ab}\n", key: "s3.bucket"},
		{name: "s3 bucket dash end", doc: "s3: {bucket: media-}\n", key: "s3.bucket"},
		{name: "s3 without access key", doc: "s3: {}\n", key: "s3.access_key"},
		{name: "s3 without secret key", doc: "s3: {access_key: ak}\n", key: "s3.secret_key"},
		{name: "s3 region", doc: "s3: {region: EU West}\n", key: "s3.region"},
		{name: "s3 dotted bucket over https", doc: "s3: {bucket: a.b.c, endpoint: 'https://s3.example'}\n", key: "s3.bucket", want: []string{"path_style"}},
		{name: "retention 0", doc: "retention_days: 0\n", key: "retention_days"},
		{name: "upload url too short", doc: "upload_url_seconds: 1\n", key: "upload_url_seconds"},
		{name: "upload url beyond 7 days", doc: "upload_url_seconds: 604801\n", key: "upload_url_seconds"},
		{name: "download url negative", doc: "download_url_seconds: -5\n", key: "download_url_seconds"},
		{name: "max_body_bytes tiny", doc: "max_body_bytes: 100\n", key: "max_body_bytes", want: []string{"100B"}},
		{name: "max_body_bytes huge", doc: "max_body_bytes: 1GiB\n", key: "max_body_bytes"},
		{name: "max_body_bytes unparsable", doc: "max_body_bytes: lots\n", want: []string{"not a size"}},
		{name: "log level", doc: "log: {level: verbose}\n", key: "log.level", want: []string{"verbose"}},
		{name: "log format", doc: "log: {format: xml}\n", key: "log.format", want: []string{"xml"}},
		{name: "clip wait 0", doc: "clips: {max_wait_minutes: 0}\n", key: "clips.max_wait_minutes", want: []string{"got 0"}},
		{name: "clip wait beyond 30 days", doc: "clips: {max_wait_minutes: 43201}\n", key: "clips.max_wait_minutes"},
		{name: "clip wait in hours", doc: "clips: {max_wait_minutes: 24h}\n", want: []string{"24h"}},
		{name: "unknown clips key", doc: "clips: {max_wait: 5}\n", want: []string{"max_wait"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.doc))
			if err == nil || cfg != nil {
				t.Fatalf("Parse(%q) = %+v, %v; want an error", tt.doc, cfg, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.key != "" {
				var ke *KeyError
				if !errors.As(err, &ke) || ke.Key != tt.key || !strings.HasPrefix(err.Error(), tt.key+": ") {
					t.Fatalf("error %v (%T), want a KeyError for %s", err, err, tt.key)
				}
			}
			if strings.Contains(err.Error(), "yaml: ") {
				t.Errorf("error %q keeps the yaml: prefix", err)
			}
		})
	}
}

// Secrets are never quoted in errors: they end up in logs.
func TestErrorsDoNotQuoteSecrets(t *testing.T) {
	for _, doc := range []string{
		"admin_token: hunter2-short\n",
		"admin_token: ' hunter2-hunter2-hunter2-hunter2-hunter2'\n",
		"s3: {secret_key: hunter2}\n",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q): %v", doc, err)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.yaml")
	os.WriteFile(path, []byte(contractExample), 0o600)
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("bogus: 1\n"), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file loaded")
	}
}

// The example config in the repo documents every key: it must load and
// equal the built-in defaults.
func TestExampleConfigIsTheDefaults(t *testing.T) {
	cfg, err := Load("../../relay.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*cfg, defaultsParsed()) {
		t.Fatalf("relay/relay.yaml = %+v, want the defaults %+v", *cfg, defaultsParsed())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", contractExample, "s3: {access_key: a, secret_key: b}\n", "max_body_bytes: NaN\n", "listen: ':0'\n", "a: &a [*a]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			if cfg != nil {
				t.Fatal("config with an error")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted a config that does not validate: %v", err)
		}
	})
}

func TestClipsMaxWait(t *testing.T) {
	if got := Defaults().Clips.MaxWait(); got != 24*time.Hour {
		t.Errorf("default clip wait %v, want 24h", got)
	}
	cfg, err := Parse([]byte("clips: {max_wait_minutes: 90}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Clips.MaxWait(); got != 90*time.Minute {
		t.Errorf("clip wait %v, want 1h30m", got)
	}
}
