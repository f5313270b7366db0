package service

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zipnvr/zipnvr/systemd"
)

func testProgram(name, unit string) Program {
	return Program{Name: name, Description: "test " + name, Unit: unit, DefaultConfig: "/etc/" + name + "/" + name + ".yaml",
		DataDir: func(string) (string, error) { return "/var/lib/" + name, nil }}
}

var programs = []Program{testProgram("hubd", systemd.Hubd), testProgram("relay", systemd.Relay)}

func packagedSpec(name string) Spec {
	return Spec{Binary: "/usr/bin/" + name, Config: "/etc/" + name + "/" + name + ".yaml", DataDir: "/var/lib/" + name, User: name, Group: name}
}

// The unit `service install` writes for the packaged paths is the packaged
// unit, byte for byte: one source, two ways to install it.
func TestRenderUnitOfPackagedPathsIsThePackagedUnit(t *testing.T) {
	for _, p := range programs {
		got, err := p.RenderUnit(packagedSpec(p.Name))
		if err != nil {
			t.Fatal(err)
		}
		if got != p.Unit {
			t.Errorf("%s: rendered unit differs from systemd/%s.service:\n%s", p.Name, p.Name, got)
		}
	}
}

// unitKeys parses a unit's key=value lines (the last value of a key wins,
// as systemd reads them for single-value settings).
func unitKeys(unit string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			m[k] = v
		}
	}
	return m
}

// The hardening the issue asks for is in both units.
func TestPackagedUnitsAreHardened(t *testing.T) {
	for _, p := range programs {
		k := unitKeys(p.Unit)
		want := map[string]string{
			"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/" + p.Name,
			"Restart": "on-failure", "User": p.Name, "Group": p.Name, "ProtectHome": "yes", "PrivateTmp": "yes",
		}
		for key, v := range want {
			if k[key] != v {
				t.Errorf("%s.service: %s=%q, want %q", p.Name, key, k[key], v)
			}
		}
	}
}

func TestRenderUnit(t *testing.T) {
	hubd := programs[0]
	custom := Spec{Binary: "/opt/zip/hubd", Config: "/opt/zip/hubd.yaml", DataDir: "/mnt/sd/rec", User: "cams", Group: "cams"}
	got, err := hubd.RenderUnit(custom)
	if err != nil {
		t.Fatal(err)
	}
	k := unitKeys(got)
	for key, v := range map[string]string{"ExecStart": "/opt/zip/hubd run -config /opt/zip/hubd.yaml", "User": "cams", "Group": "cams",
		"ReadWritePaths": "/mnt/sd/rec", "ProtectSystem": "strict"} {
		if k[key] != v {
			t.Errorf("%s=%q, want %q", key, k[key], v)
		}
	}
	if strings.Contains(got, "StateDirectory") {
		t.Error("StateDirectory kept for a data dir outside /var/lib/hubd (it would create an unused /var/lib/hubd)")
	}

	bad := []struct {
		name string
		mod  func(*Spec)
		want string
	}{
		{"relative binary", func(s *Spec) { s.Binary = "hubd" }, "absolute"},
		{"space in data dir", func(s *Spec) { s.DataDir = "/mnt/my disk" }, "cannot go into a service unit"},
		{"specifier in config", func(s *Spec) { s.Config = "/etc/h%d.yaml" }, "cannot go into a service unit"},
		{"template braces", func(s *Spec) { s.Config = "/etc/{{x}}.yaml" }, "cannot go into a service unit"},
		{"bad user", func(s *Spec) { s.User = "root;rm" }, "user"},
		{"empty group", func(s *Spec) { s.Group = "" }, "group"},
		{"user starting with a digit", func(s *Spec) { s.User = "0day" }, "user"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			s := packagedSpec("hubd")
			tt.mod(&s)
			_, err := hubd.RenderUnit(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %q", err, tt.want)
			}
			if _, err := hubd.RenderProcd(s); err == nil {
				t.Fatal("procd script rendered from a refused spec")
			}
		})
	}
	if _, err := (Program{Name: "x", Unit: "[Service]\nExecStart=/bin/x\n"}).RenderUnit(packagedSpec("x")); err == nil {
		t.Error("a unit without User= rendered")
	}
}

// systemd-analyze verify accepts the rendered units without one warning.
func TestRenderedUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (scripts/setup.sh installs systemd)")
	}
	bin, err := os.Executable() // ExecStart must name an executable that exists
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range programs {
		s := packagedSpec(p.Name)
		s.Binary = bin
		unit, err := p.RenderUnit(s)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), p.Name+".service")
		if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", p.Name, err, out)
		}
	}
}

func TestProcdScriptIsValidShell(t *testing.T) {
	for _, p := range programs {
		script, err := p.RenderProcd(packagedSpec(p.Name))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"USE_PROCD=1", "procd_set_param user " + p.Name, "procd_set_param command /usr/bin/" + p.Name + " run -config /etc/" + p.Name + "/" + p.Name + ".yaml"} {
			if !strings.Contains(script, want) {
				t.Errorf("%s procd script lacks %q", p.Name, want)
			}
		}
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s procd script: sh -n: %v: %s", p.Name, err, out)
		}
	}
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hubd.yaml")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := testProgram("hubd", systemd.Hubd)
	p.DataDir = func(path string) (string, error) {
		if path != cfg {
			return "", errors.New("no such config")
		}
		return filepath.Join(dir, "data"), nil
	}
	notRoot := host{systemdRunDir: filepath.Join(dir, "no-systemd"), geteuid: func() int { return 1000 }}
	bin, _ := os.Executable()
	tests := []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"no action", nil, "no action", ""},
		{"flags before the action", []string{"-config", cfg, "install"}, "action comes first", ""},
		{"unknown action", []string{"frob"}, "unknown action", ""},
		{"bad init", []string{"status", "-init", "upstart"}, "want systemd, procd or auto", ""},
		{"bad config", []string{"install", "-init", "systemd", "-config", filepath.Join(dir, "nope.yaml")}, "no such config", ""},
		{"install needs root", []string{"install", "-init", "systemd", "-config", cfg}, "needs root", ""},
		{"bad user", []string{"install", "-init", "systemd", "-config", cfg, "-user", "a b"}, "user", ""},
		{"dry run systemd", []string{"install", "-init", "systemd", "-config", cfg, "-bin", bin, "-dry-run"}, "",
			"ReadWritePaths=" + filepath.Join(dir, "data")},
		{"dry run procd", []string{"install", "-init", "procd", "-config", cfg, "-bin", bin, "-dry-run"}, "",
			"procd_set_param command " + bin + " run -config " + cfg},
		{"status without systemd running", []string{"status", "-init", "systemd"}, "", "hubd: "},
		{"start without systemd running", []string{"start", "-init", "systemd"}, "systemd is not running", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := command(p, notRoot, tt.args, &out, &errb)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v\n%s", err, errb.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Fatalf("output lacks %q:\n%s", tt.wantOut, out.String())
			}
		})
	}
}
