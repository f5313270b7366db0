package testbed

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// DownloadFile GETs url (a presigned or relay-signed URL) into a file
// named name in the test's temp dir and returns its path; any status but
// 200 fails the test with the answer's body.
func DownloadFile(t testing.TB, url, name string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("GET %s: %s %s", name, resp.Status, body)
	}
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Fatal(err)
	}
	return path
}
