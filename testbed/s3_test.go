package testbed

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestS3Server(t *testing.T) {
	srv := S3Server(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint %s is not on loopback", srv.Endpoint)
	}
	client := s3.New(s3.Options{
		Region:                     srv.Region,
		BaseEndpoint:               aws.String(srv.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	if err != nil {
		t.Fatalf("bucket %s: %v", srv.Bucket, err)
	}
	if len(list.Contents) != 0 {
		t.Fatalf("bucket not empty: %d objects", len(list.Contents))
	}
	body := []byte("segment bytes")
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(srv.Bucket), Key: aws.String("t/cam1/a.mp4"),
		Body: bytes.NewReader(body), ContentType: aws.String("video/mp4"),
	}); err != nil {
		t.Fatal(err)
	}
	// The posix backend keeps objects as plain files.
	onDisk, err := os.ReadFile(filepath.Join(srv.Dir, srv.Bucket, "t", "cam1", "a.mp4"))
	if err != nil || !bytes.Equal(onDisk, body) {
		t.Fatalf("object on disk: %q, %v", onDisk, err)
	}
	got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("t/cam1/a.mp4")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || !bytes.Equal(b, body) || aws.ToString(got.ContentType) != "video/mp4" {
		t.Fatalf("GET: %q %q %v", b, aws.ToString(got.ContentType), err)
	}

	srv.Stop()
	srv.Stop() // idempotent
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.Endpoint, "http://"), time.Second); err == nil {
		c.Close()
		t.Fatal("still listening after Stop")
	}
}

func TestLookVersitygw(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	root := t.TempDir()
	_, err := lookVersitygw(root, nil)
	if err == nil || !strings.Contains(err.Error(), "scripts/setup.sh") || !strings.Contains(err.Error(), "versitygw@"+versitygwVersion) {
		t.Fatalf("missing binary: %v", err)
	}
	if _, err := lookVersitygw("", os.ErrNotExist); err == nil || !strings.Contains(err.Error(), "scripts/setup.sh") {
		t.Fatalf("no module root: %v", err)
	}
	bin := filepath.Join(root, ".bin", "versitygw")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := lookVersitygw(root, nil); err != nil || p != bin {
		t.Fatalf("in .bin: %q, %v", p, err)
	}
}
