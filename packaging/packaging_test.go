package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDebVersion(t *testing.T) {
	at := time.Date(2026, 11, 25, 6, 7, 8, 0, time.UTC)
	tests := []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-dirty", "1.2.3.dirty"},
		{"v1.2.3-4-gabc1234", "1.2.3+4.gabc1234"},
		{"abc1234", "0.0.0~20261125060708.gabc1234"},
		{"abc1234-dirty", "0.0.0~20261125060708.gabc1234.dirty"},
		{"dev", "0.0.0~20261125060708.dev"},
	}
	for _, tt := range tests {
		got, err := debVersion(tt.in, at)
		if err != nil || got != tt.want {
			t.Errorf("debVersion(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "release candidate", "v1.2", "x; rm -rf /"} {
		if v, err := debVersion(bad, at); err == nil {
			t.Errorf("debVersion(%q) = %q, want an error", bad, v)
		}
	}
	// dpkg must order the versions the way builds happen.
	if _, err := exec.LookPath("dpkg"); err == nil {
		for _, pair := range [][2]string{{"0.0.0~20261125060708.gabc", "0.0.0~20261125060709.gdef"}, {"0.0.0~20261125060708.gabc", "0.1.0"},
			{"1.2.3", "1.2.3+4.gabc1234"}, {"1.2.3+4.gabc1234", "1.2.4"}} {
			if err := exec.Command("dpkg", "--compare-versions", pair[0], "lt", pair[1]).Run(); err != nil {
				t.Errorf("dpkg does not order %s before %s", pair[0], pair[1])
			}
		}
	}
}

var amd64Build struct {
	once sync.Once
	dir  string
	err  error
}

// amd64Binaries builds hubd and relay as make cross does (static) into a
// dist layout, once per test binary.
func amd64Binaries(t *testing.T) string {
	t.Helper()
	amd64Build.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			amd64Build.err = err
			return
		}
		amd64Build.dir, err = os.MkdirTemp("", "zipnvr-dist-")
		if err != nil {
			amd64Build.err = err
			return
		}
		for _, p := range []string{"hubd", "relay"} {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(amd64Build.dir, "linux-amd64", p), "./"+p)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=readonly")
			if out, err := cmd.CombinedOutput(); err != nil {
				amd64Build.err = err
				t.Logf("go build ./%s: %s", p, out)
				return
			}
		}
	})
	if amd64Build.err != nil {
		t.Fatal(amd64Build.err)
	}
	t.Cleanup(func() {}) // the dir is shared by the tests of this binary; TestMain removes it
	return amd64Build.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if amd64Build.dir != "" {
		os.RemoveAll(amd64Build.dir)
	}
	os.Exit(code)
}

// buildPackages packages the amd64 binaries of dist as version.
func buildPackages(t *testing.T, dist, version string, formats ...string) map[string]string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	pkgs, err := build(options{root: root, dist: dist, out: out, version: version, targets: targets[2:3],
		formats: formats, mtime: time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range pkgs {
		m[p.Program+"."+p.Format] = p.Path
	}
	return m
}

// readTarGz returns name -> (header, content) of a .tar.gz stream.
func readTarGz(t *testing.T, r io.Reader) map[string]*tarEntry {
	t.Helper()
	gz, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]*tarEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = &tarEntry{h, data}
	}
}

type tarEntry struct {
	h    *tar.Header
	data []byte
}

// The .ipk is what opkg reads: an outer tar.gz with debian-binary,
// control.tar.gz and data.tar.gz. No opkg is installed here, so its parts
// are checked one by one: control fields, conffiles, files and modes, and
// scripts that the shell accepts.
func TestIPKLayout(t *testing.T) {
	dist := amd64Binaries(t)
	pkgs := buildPackages(t, dist, "0.1.0", "ipk")
	f, err := os.Open(pkgs["hubd.ipk"])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	outer := readTarGz(t, f)
	if e := outer["debian-binary"]; e == nil || string(e.data) != "2.0\n" {
		t.Fatalf("debian-binary: %+v", e)
	}
	control := readTarGz(t, bytes.NewReader(outer["control.tar.gz"].data))
	data := readTarGz(t, bytes.NewReader(outer["data.tar.gz"].data))

	ctl := string(control["control"].data)
	for _, want := range []string{"Package: hubd\n", "Version: 0.1.0\n", "Architecture: x86_64\n"} {
		if !strings.Contains(ctl, want) {
			t.Errorf("control lacks %q:\n%s", want, ctl)
		}
	}
	if got := strings.TrimSpace(string(control["conffiles"].data)); got != "/etc/hubd/hubd.yaml" {
		t.Errorf("conffiles = %q, want the config", got)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		e := control[s]
		if e == nil {
			t.Errorf("no %s", s)
			continue
		}
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = bytes.NewReader(e.data)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v %s", s, err, out)
		}
	}
	wantFiles := map[string]int64{"usr/bin/hubd": 0o755, "etc/hubd/hubd.yaml": 0o640, "etc/init.d/hubd": 0o755}
	for name, mode := range wantFiles {
		e := data[name]
		if e == nil {
			t.Errorf("data lacks %s", name)
			continue
		}
		if e.h.Mode&0o7777 != mode || e.h.Uname != "root" {
			t.Errorf("%s: mode %o owner %s, want %o root", name, e.h.Mode, e.h.Uname, mode)
		}
	}
	if init := string(data["etc/init.d/hubd"].data); !strings.Contains(init, "procd_set_param user hubd") {
		t.Errorf("init script does not run hubd as its user:\n%s", init)
	}
	cfg, _ := os.ReadFile("hubd.yaml")
	if !bytes.Equal(data["etc/hubd/hubd.yaml"].data, cfg) {
		t.Error("packaged config differs from packaging/hubd.yaml")
	}
}
