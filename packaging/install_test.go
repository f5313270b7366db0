package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/zipnvr/zipnvr/internal/service"
	"github.com/zipnvr/zipnvr/systemd"
	"github.com/zipnvr/zipnvr/testbed"
)

// account is a passwd entry of the scratch root.
type account struct {
	uid, gid    int
	home, shell string
}

func lookup(t *testing.T, r *testbed.ScratchRoot, name string) (account, bool) {
	t.Helper()
	out, err := r.Chroot("getent", "passwd", name)
	if err != nil {
		return account{}, false
	}
	f := strings.Split(strings.TrimSpace(out), ":")
	if len(f) != 7 {
		t.Fatalf("getent passwd %s: %q", name, out)
	}
	uid, _ := strconv.Atoi(f[2])
	gid, _ := strconv.Atoi(f[3])
	return account{uid: uid, gid: gid, home: f[5], shell: f[6]}, true
}

// stat returns mode and owner of a path of the scratch root.
func stat(t *testing.T, r *testbed.ScratchRoot, path string) (os.FileMode, int, int, bool) {
	t.Helper()
	fi, err := os.Lstat(r.Path(path))
	if err != nil {
		return 0, 0, 0, false
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode(), int(st.Uid), int(st.Gid), true
}

func mustRun(t *testing.T, what string) func(string, error) string {
	return func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		return out
	}
}

// verifyUnit runs systemd-analyze verify on a unit inside the root: no
// output at all is the pass (it exits 0 on mere warnings).
func verifyUnit(t *testing.T, r *testbed.ScratchRoot, unit string) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: unit not verified (scripts/setup.sh installs systemd)")
		return
	}
	out, err := r.Chroot("systemd-analyze", "verify", unit)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}

// checkInstalled checks what installing program p must leave in the root.
func checkInstalled(t *testing.T, r *testbed.ScratchRoot, p program) account {
	t.Helper()
	acct, ok := lookup(t, r, p.Name)
	if !ok {
		t.Fatalf("no user %s", p.Name)
	}
	if acct.uid == 0 || acct.uid >= 1000 || acct.home != p.DataDir || !strings.HasSuffix(acct.shell, "nologin") {
		t.Errorf("user %s: %+v, want a system account (uid < 1000) at %s without login", p.Name, acct, p.DataDir)
	}
	if mode, uid, gid, ok := stat(t, r, p.DataDir); !ok || !mode.IsDir() || mode.Perm() != 0o750 || uid != acct.uid || gid != acct.gid {
		t.Errorf("%s: %v uid %d gid %d, want a 0750 dir of %s", p.DataDir, mode, uid, gid, p.Name)
	}
	if mode, uid, gid, ok := stat(t, r, p.Config); !ok || mode.Perm() != 0o640 || uid != 0 || gid != acct.gid {
		t.Errorf("%s: %v uid %d gid %d, want 0640 root:%s", p.Config, mode, uid, gid, p.Name)
	}
	if mode, _, _, ok := stat(t, r, "/usr/bin/"+p.Name); !ok || mode.Perm() != 0o755 {
		t.Errorf("/usr/bin/%s: %v", p.Name, mode)
	}
	unit, err := os.ReadFile(r.Path("/lib/systemd/system/" + p.Name + ".service"))
	if err != nil || string(unit) != p.Unit {
		t.Errorf("packaged unit of %s missing or not systemd/%s.service: %v", p.Name, p.Name, err)
	}
	if _, err := os.Lstat(r.Path("/etc/systemd/system/multi-user.target.wants/" + p.Name + ".service")); err != nil {
		t.Errorf("%s.service not enabled: %v", p.Name, err)
	}
	verifyUnit(t, r, "/lib/systemd/system/"+p.Name+".service")
	out := mustRun(t, p.Name+" version")(r.Chroot("/usr/bin/"+p.Name, "version"))
	if !strings.HasPrefix(out, p.Name+" ") {
		t.Errorf("%s version: %q", p.Name, out)
	}
	return acct
}

func dpkgVersion(t *testing.T, r *testbed.ScratchRoot, name string) string {
	out, err := r.Exec("dpkg-query", "--admindir="+r.Path("/var/lib/dpkg"), "-W", "-f", "${Status} ${Version}", name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// TestDebLifecycle installs the amd64 .debs of hubd and relay into a
// scratch copy of this Debian machine with dpkg --root (the maintainer
// scripts run chrooted in it), then upgrades, removes and purges them:
//   - install: files, modes, the system users, data dirs, config
//     permissions, the enabled unit that systemd-analyze verify accepts;
//     hubd runs as its user with the installed config and makes its index;
//   - upgrade: the admin's config edit and the recordings stay;
//   - remove: the recordings, the config and the user stay;
//   - purge: the data dir and config go.
func TestDebLifecycle(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not installed")
	}
	dist := amd64Binaries(t)
	v1 := buildPackages(t, dist, "0.1.0", "deb")
	v2 := buildPackages(t, dist, "0.2.0", "deb")
	r := testbed.NewScratchRoot(t)
	dpkg := func(args ...string) (string, error) {
		return r.Exec("dpkg", append([]string{"--root=" + r.Dir}, args...)...)
	}
	mustRun(t, "install")(dpkg("-i", v1["hubd.deb"], v1["relay.deb"]))
	var accts [2]account
	for i, p := range programs {
		if got := dpkgVersion(t, r, p.Name); got != "install ok installed 0.1.0" {
			t.Errorf("%s: dpkg status %q", p.Name, got)
		}
		accts[i] = checkInstalled(t, r, p)
	}

	// hubd runs as its user with the installed config: it can read it and
	// write its data dir (the index and control socket appear), and stops
	// cleanly on SIGTERM.
	hubd := r.Command("chroot", r.Dir, "setpriv", "--reuid=hubd", "--regid=hubd", "--init-groups", "/usr/bin/hubd", "run", "-config", "/etc/hubd/hubd.yaml")
	var hubdLog bytes.Buffer
	hubd.Stdout, hubd.Stderr = &hubdLog, &hubdLog
	if err := hubd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := os.Stat(r.Path("/var/lib/hubd/hubd.sock")); return err == nil }, "hubd's control socket", &hubdLog)
	_ = hubd.Process.Signal(syscall.SIGTERM)
	if err := hubd.Wait(); err != nil {
		t.Fatalf("hubd as user hubd: %v\n%s", err, hubdLog.String())
	}
	if _, err := os.Stat(r.Path("/var/lib/hubd/index.db")); err != nil {
		t.Fatalf("hubd made no index: %v\n%s", err, hubdLog.String())
	}
	// A recording, and an admin's edit of each config.
	rec := r.Path("/var/lib/hubd/segments/cam1/2026-11-25/060000.000-1.mp4")
	if err := os.MkdirAll(filepath.Dir(rec), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec, []byte("recording"), 0o640); err != nil {
		t.Fatal(err)
	}
	const edit = "\n# edited by the admin\n"
	for _, p := range programs {
		f, err := os.OpenFile(r.Path(p.Config), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(edit)
		f.Close()
	}

	// Upgrade: no question asked (stdin is not a terminal), config and recordings kept.
	mustRun(t, "upgrade")(dpkg("-i", v2["hubd.deb"], v2["relay.deb"]))
	for i, p := range programs {
		if got := dpkgVersion(t, r, p.Name); got != "install ok installed 0.2.0" {
			t.Errorf("%s after upgrade: dpkg status %q", p.Name, got)
		}
		if a := checkInstalled(t, r, p); a != accts[i] {
			t.Errorf("%s: user changed by the upgrade: %+v, was %+v", p.Name, a, accts[i])
		}
		if cfg, _ := os.ReadFile(r.Path(p.Config)); !bytes.HasSuffix(cfg, []byte(edit)) {
			t.Errorf("%s: the upgrade lost the admin's edit of %s", p.Name, p.Config)
		}
	}
	for _, f := range []string{rec, r.Path("/var/lib/hubd/index.db")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("upgrade lost %s", f)
		}
	}

	// Remove: binaries and units go; recordings, configs and users stay.
	mustRun(t, "remove")(dpkg("-r", "hubd", "relay"))
	for _, p := range programs {
		for _, gone := range []string{"/usr/bin/" + p.Name, "/lib/systemd/system/" + p.Name + ".service"} {
			if _, _, _, ok := stat(t, r, gone); ok {
				t.Errorf("remove left %s", gone)
			}
		}
		if _, ok := lookup(t, r, p.Name); !ok {
			t.Errorf("remove deleted user %s", p.Name)
		}
		if cfg, _ := os.ReadFile(r.Path(p.Config)); !bytes.HasSuffix(cfg, []byte(edit)) {
			t.Errorf("remove lost %s", p.Config)
		}
	}
	if data, err := os.ReadFile(rec); err != nil || string(data) != "recording" {
		t.Errorf("remove lost a recording: %v", err)
	}

	// Purge: data dirs and configs go.
	mustRun(t, "purge")(dpkg("-P", "hubd", "relay"))
	for _, p := range programs {
		for _, gone := range []string{p.DataDir, p.Config} {
			if _, _, _, ok := stat(t, r, gone); ok {
				t.Errorf("purge left %s", gone)
			}
		}
		if got := dpkgVersion(t, r, p.Name); strings.Contains(got, "installed") && !strings.Contains(got, "not-installed") {
			t.Errorf("%s after purge: dpkg status %q", p.Name, got)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, what string, log *bytes.Buffer) {
	t.Helper()
	for range 100 {
		if cond() {
			return
		}
		exec.Command("sleep", "0.1").Run()
	}
	t.Fatalf("no %s after 10 s\n%s", what, log.String())
}

// TestServiceInstall runs `hubd service install` and `relay service
// install` in a scratch root where systemd is installed but not running (as
// in a container): they create the user, the data dir and the config
// permissions, write a unit that is the packaged one with their paths and
// that systemd-analyze verify accepts, and enable it; status, a second
// install and uninstall answer as they should.
func TestServiceInstall(t *testing.T) {
	dist := amd64Binaries(t)
	r := testbed.NewScratchRoot(t)
	for _, p := range programs {
		t.Run(p.Name, func(t *testing.T) {
			bin := "/usr/local/bin/" + p.Name
			data, err := os.ReadFile(filepath.Join(dist, "linux-amd64", p.Name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(r.Path(bin), data, 0o755); err != nil {
				t.Fatal(err)
			}
			// hubd records onto an SD card mount; relay keeps its default data dir.
			cfgPath, dataDir, cfg := "/etc/"+p.Name+"/"+p.Name+".yaml", p.DataDir, ""
			if p.Name == "hubd" {
				dataDir, cfg = "/srv/sd/hubd", "hub: {data_dir: /srv/sd/hubd}\n"
			}
			if err := os.MkdirAll(filepath.Dir(r.Path(cfgPath)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(r.Path(cfgPath), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}

			out := mustRun(t, "service install")(r.Chroot(bin, "service", "install", "-config", cfgPath))
			for _, want := range []string{"created system user " + p.Name, "wrote /etc/systemd/system/" + p.Name + ".service", "starts at the next boot"} {
				if !strings.Contains(out, want) {
					t.Errorf("install output lacks %q:\n%s", want, out)
				}
			}
			unitPath := "/etc/systemd/system/" + p.Name + ".service"
			unit, err := os.ReadFile(r.Path(unitPath))
			if err != nil {
				t.Fatalf("no unit written: %v\n%s", err, out)
			}
			want, err := service.Program{Name: p.Name, Unit: map[string]string{"hubd": systemd.Hubd, "relay": systemd.Relay}[p.Name]}.
				RenderUnit(service.Spec{Binary: bin, Config: cfgPath, DataDir: dataDir, User: p.Name, Group: p.Name})
			if err != nil {
				t.Fatal(err)
			}
			if string(unit) != want {
				t.Errorf("unit written:\n%s\nwant:\n%s", unit, want)
			}
			verifyUnit(t, r, unitPath)
			if _, err := os.Lstat(r.Path("/etc/systemd/system/multi-user.target.wants/" + p.Name + ".service")); err != nil {
				t.Errorf("unit not enabled: %v", err)
			}
			acct, ok := lookup(t, r, p.Name)
			if !ok || acct.uid >= 1000 || acct.home != dataDir {
				t.Errorf("user %s: %+v %v", p.Name, acct, ok)
			}
			if mode, uid, _, ok := stat(t, r, dataDir); !ok || mode.Perm() != 0o750 || uid != acct.uid {
				t.Errorf("data dir %s: %v uid %d", dataDir, mode, uid)
			}
			if mode, uid, gid, _ := stat(t, r, cfgPath); mode.Perm() != 0o640 || uid != 0 || gid != acct.gid {
				t.Errorf("config %s: %v %d:%d, want 0640 root:%s", cfgPath, mode, uid, gid, p.Name)
			}

			if out := mustRun(t, "status")(r.Chroot(bin, "service", "status")); !strings.Contains(out, "installed, not running") {
				t.Errorf("status: %q", out)
			}
			if out, err := r.Chroot(bin, "service", "install", "-config", cfgPath); err == nil || !strings.Contains(out, "already installed") {
				t.Errorf("second install: %v %q", err, out)
			}
			if out, err := r.Chroot(bin, "service", "start"); err == nil || !strings.Contains(out, "systemd is not running") {
				t.Errorf("start without systemd: %v %q", err, out)
			}
			mustRun(t, "uninstall")(r.Chroot(bin, "service", "uninstall"))
			for _, gone := range []string{unitPath, "/etc/systemd/system/multi-user.target.wants/" + p.Name + ".service"} {
				if _, _, _, ok := stat(t, r, gone); ok {
					t.Errorf("uninstall left %s", gone)
				}
			}
			if _, _, _, ok := stat(t, r, dataDir); !ok {
				t.Error("uninstall removed the data dir")
			}
			if out := mustRun(t, "status")(r.Chroot(bin, "service", "status")); !strings.Contains(out, "not installed") {
				t.Errorf("status after uninstall: %q", out)
			}
		})
	}
}
