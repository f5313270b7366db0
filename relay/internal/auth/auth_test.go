package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range []Kind{User, Hub, Admin} {
		for range 100 {
			s := New(k)
			if KindOf(s) != k || len(s) != len(k)+43 {
				t.Fatalf("New(%q) = %q", k, s)
			}
			if strings.ContainsAny(s, "+/=") {
				t.Fatalf("%q is not unpadded base64url", s)
			}
			if seen[s] {
				t.Fatalf("duplicate secret %q", s)
			}
			seen[s] = true
		}
	}
	if KindOf("Bearer x") != "" || KindOf("") != "" {
		t.Fatal("KindOf of a foreign string")
	}
}

func TestEqual(t *testing.T) {
	a := New(User)
	tests := []struct {
		x, y string
		want bool
	}{
		{a, a, true},
		{a, a + "x", false},
		{a, a[:len(a)-1], false},
		{a, "", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := Equal(tt.x, tt.y); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v", tt.x, tt.y, got)
		}
	}
	if !HashEqual(Hash(a), Hash(a)) || HashEqual(Hash(a), Hash(New(User))) {
		t.Fatal("HashEqual")
	}
}

func TestLoadOrCreateAdminToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tok, path, created, err := LoadOrCreateAdminToken(dir)
	if err != nil || !created || KindOf(tok) != Admin || path != filepath.Join(dir, AdminTokenFile) {
		t.Fatalf("first start: %q %q %v %v", tok, path, created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	again, _, created, err := LoadOrCreateAdminToken(dir)
	if err != nil || created || again != tok {
		t.Fatalf("restart: %q %v %v, want the same token", again, created, err)
	}

	os.Chmod(path, 0o644)
	if _, _, _, err := LoadOrCreateAdminToken(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable file: %v", err)
	}
	os.WriteFile(path, []byte("tiny-secret\n"), 0o600)
	os.Chmod(path, 0o600)
	if _, _, _, err := LoadOrCreateAdminToken(dir); err == nil || strings.Contains(err.Error(), "tiny-secret") {
		t.Fatalf("short token: %v (must fail without quoting the token)", err)
	}
}
