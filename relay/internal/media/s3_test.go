package media

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestS3Misconfigured checks that Head does not mistake a configuration
// error for an absent object: a HEAD answer has no body, and versitygw says
// 404 to an unknown access key.
func TestS3Misconfigured(t *testing.T) {
	_, good, srv := newS3Env(t)
	put(t, good, "tenant/x.mp4", randBytes(10), "video/mp4")
	for _, c := range []struct {
		name string
		mod  func(*S3Config)
	}{
		{"unknown access key", func(c *S3Config) { c.AccessKey = "nobody" }},
		{"wrong secret key", func(c *S3Config) { c.SecretKey = "wrong" }},
		{"absent bucket", func(c *S3Config) { c.Bucket = "no-such-bucket" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := S3Config{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true}
			c.mod(&cfg)
			s, err := NewS3(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Check(ctxT(t)); err == nil {
				t.Error("Check passed")
			}
			for _, key := range []string{"tenant/x.mp4", "tenant/absent.mp4"} {
				if _, err := s.Head(ctxT(t), key); err == nil || errors.Is(err, ErrNotFound) {
					t.Errorf("Head(%s) = %v, want an error that is not ErrNotFound", key, err)
				}
			}
			if err := s.Delete(ctxT(t), "tenant/x.mp4"); err == nil {
				t.Error("Delete passed")
			}
		})
	}
	if _, err := good.Head(ctxT(t), "tenant/x.mp4"); err != nil {
		t.Fatalf("object lost: %v", err)
	}
}

// TestS3PresignedURL checks what the URLs sign and that virtual-host style
// addressing is used when asked (the SDK keeps path style for IP hosts).
func TestS3PresignedURL(t *testing.T) {
	ctx := context.Background()
	cfg := S3Config{Endpoint: "http://s3.example.test:9000", Bucket: "recordings", AccessKey: "ak", SecretKey: "sk"}
	s, err := NewS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.PresignPut(ctx, "tenant/a b.mp4", 17, "video/mp4", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "recordings.s3.example.test:9000" || u.Path != "/tenant/a b.mp4" {
		t.Fatalf("virtual-host URL %s", p.URL)
	}
	q := u.Query()
	if q.Get("X-Amz-Expires") != "900" || q.Get("X-Amz-SignedHeaders") != "content-length;content-type;host" {
		t.Fatalf("URL signs %v", q)
	}
	if strings.Contains(p.URL, "x-amz-checksum") || strings.Contains(p.URL, "x-amz-sdk-checksum") {
		t.Fatalf("URL asks for a checksum: %s", p.URL)
	}
	if len(p.Header) != 2 || p.Header.Get("Content-Length") != "17" || p.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("headers %v", p.Header)
	}
	if d := time.Until(p.Expires); d <= 14*time.Minute || d > 15*time.Minute {
		t.Fatalf("Expires in %s", d)
	}

	cfg.PathStyle = true
	s, err = NewS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.PresignGet(ctx, "tenant/a.mp4", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(g.URL); u.Host != "s3.example.test:9000" || u.Path != "/recordings/tenant/a.mp4" || g.Method != "GET" || len(g.Header) != 0 {
		t.Fatalf("path-style GET %+v", g)
	}
}
