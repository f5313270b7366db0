// Package config loads and validates relay's YAML configuration: every key has
// a default, unknown keys and bad values are refused with the key and the reason.
package config

import (
	"errors"
	"fmt"
	"github.com/zipnvr/zipnvr/pkg/yamlconf"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/relay/internal/auth"
)

// Config is relay's whole configuration.
type Config struct {
	// Listen is the TCP address of the API (host:port).
	Listen  string `yaml:"listen"`
	DataDir string `yaml:"data_dir"`
	// PublicURL is how clients and hubs reach relay; locally signed media URLs
	// start with it. Default: http://<listen>.
	PublicURL string `yaml:"public_url"`
	// AdminToken authorizes the /admin routes. Empty: relay generates one at
	// start and keeps it in <data_dir>/admin_token (mode 0600).
	AdminToken string `yaml:"admin_token"`
	// S3 is nil when the section is absent: media then lives in data_dir
	// behind relay-signed URLs.
	S3                 *S3      `yaml:"s3"`
	RetentionDays      int      `yaml:"retention_days"`
	UploadURLSeconds   int      `yaml:"upload_url_seconds"`
	DownloadURLSeconds int      `yaml:"download_url_seconds"`
	MaxBodyBytes       ByteSize `yaml:"max_body_bytes"`
	Log                Log      `yaml:"log"`
	Live               Live     `yaml:"live"`
	Clips              Clips    `yaml:"clips"`
}

// S3 is any S3-compatible object store.
type S3 struct {
	// Endpoint is empty for AWS itself, else the server's URL.
	Endpoint string `yaml:"endpoint"`
	Region   string `yaml:"region"`
	Bucket   string `yaml:"bucket"`
	// AccessKey and SecretKey are required: relay holds the only S3
	// credential and signs with it (static credentials, no SDK chain).
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	// PathStyle addresses the bucket as endpoint/bucket/key instead of
	// bucket.endpoint/key (most self-hosted servers want it).
	PathStyle bool `yaml:"path_style"`
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Defaults of the s3 section, applied to the keys a present section leaves out.
const (
	DefaultS3Region = "us-east-1"
	DefaultS3Bucket = "zipnvr"
)

// maxURLSeconds is S3's longest presigned URL lifetime (7 days).
const maxURLSeconds = 7 * 24 * 3600

// Defaults returns the configuration every key falls back to; PublicURL is
// derived from Listen by Parse when left empty.
func Defaults() Config {
	return Config{
		Listen:             "127.0.0.1:8080",
		DataDir:            "/var/lib/relay",
		RetentionDays:      30,
		UploadURLSeconds:   900,
		DownloadURLSeconds: 3600,
		MaxBodyBytes:       1 << 20,
		Log:                Log{Level: "info", Format: "text"},
		Live:               defaultLive(),
		Clips:              defaultClips(),
	}
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML over the defaults and validates the result.
func Parse(data []byte) (*Config, error) {
	cfg := Defaults()
	if err := yamlconf.Decode(data, "relay", &cfg); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) applyDefaults() {
	if c.PublicURL == "" && c.Listen != "" {
		c.PublicURL = "http://" + c.Listen
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.S3 != nil {
		if c.S3.Region == "" {
			c.S3.Region = DefaultS3Region
		}
		if c.S3.Bucket == "" {
			c.S3.Bucket = DefaultS3Bucket
		}
	}
}

// KeyError names the config key that is wrong.
type KeyError struct{ Key, Reason string }

func (e *KeyError) Error() string { return e.Key + ": " + e.Reason }

// Validate checks every key; the first problem is returned. Reasons never
// quote admin_token or s3.secret_key: config errors end up in logs.
func (c *Config) Validate() error {
	bad := func(key, format string, a ...any) error {
		return &KeyError{Key: key, Reason: fmt.Sprintf(format, a...)}
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil || port == "" {
		return bad("listen", "must be host:port (e.g. 127.0.0.1:8080), got %q", c.Listen)
	}
	_ = host // empty host (":8080") listens on every interface, which is allowed
	if c.DataDir == "" {
		return bad("data_dir", "must not be empty")
	}
	if err := checkHTTPURL(c.PublicURL); err != nil {
		return bad("public_url", "%v", err)
	}
	if c.AdminToken != "" && len(c.AdminToken) < auth.MinAdminToken {
		return bad("admin_token", "must be at least %d characters (or empty: relay generates one), got %d", auth.MinAdminToken, len(c.AdminToken))
	}
	if strings.TrimSpace(c.AdminToken) != c.AdminToken {
		return bad("admin_token", "must not start or end with white space")
	}
	if c.S3 != nil {
		if err := c.S3.validate(); err != nil {
			return err
		}
	}
	ints := []struct {
		key      string
		v        int
		min, max int
	}{
		{"retention_days", c.RetentionDays, 1, 36500},
		{"upload_url_seconds", c.UploadURLSeconds, 10, maxURLSeconds},
		{"download_url_seconds", c.DownloadURLSeconds, 10, maxURLSeconds},
	}
	for _, i := range ints {
		if i.v < i.min || i.v > i.max {
			return bad(i.key, "must be %d to %d, got %d", i.min, i.max, i.v)
		}
	}
	if c.MaxBodyBytes < 4<<10 || c.MaxBodyBytes > 64<<20 {
		return bad("max_body_bytes", "must be 4KiB to 64MiB, got %s", c.MaxBodyBytes)
	}
	if err := c.Live.validate(); err != nil {
		return err
	}
	if err := c.Clips.validate(); err != nil {
		return err
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	return nil
}

func (s *S3) validate() error {
	bad := func(key, format string, a ...any) error {
		return &KeyError{Key: "s3." + key, Reason: fmt.Sprintf(format, a...)}
	}
	if s.Endpoint != "" {
		if err := checkHTTPURL(s.Endpoint); err != nil {
			return bad("endpoint", "%v", err)
		}
	}
	if !regionPattern.MatchString(s.Region) {
		return bad("region", "must be a region name (a-z 0-9 -), got %q", s.Region)
	}
	if !bucketPattern(s.Bucket) {
		return bad("bucket", "must be 3-63 of a-z 0-9 . - starting and ending with a letter or digit, got %q", s.Bucket)
	}
	if strings.Contains(s.Bucket, ".") && !s.PathStyle && !strings.HasPrefix(s.Endpoint, "http:") {
		return bad("bucket", "%q has dots, which breaks TLS with virtual-host addressing: set s3.path_style", s.Bucket)
	}
	if s.AccessKey == "" {
		return bad("access_key", "required with an s3 section")
	}
	if s.SecretKey == "" {
		return bad("secret_key", "required with an s3 section")
	}
	return nil
}

var regionPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// bucketPattern follows S3's bucket naming rules (the subset that matters
// for addressing: virtual-host style puts the name into a host name).
func bucketPattern(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i, r := range b {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !alnum && (r != '.' && r != '-' || i == 0 || i == len(b)-1) {
			return false
		}
	}
	return true
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http:// or https:// URL with a host, got %q", s)
	}
	if u.User != nil {
		return errors.New("must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not have a query or fragment, got %q", s)
	}
	return nil
}

// Durations, for the packages that take time.Duration.
func (c *Config) UploadURLExpiry() time.Duration {
	return time.Duration(c.UploadURLSeconds) * time.Second
}
func (c *Config) DownloadURLExpiry() time.Duration {
	return time.Duration(c.DownloadURLSeconds) * time.Second
}
