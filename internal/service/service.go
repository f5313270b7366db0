// Package service installs, removes and controls hubd and relay as system
// services (systemd, or procd on OpenWrt) through kardianos/service.
package service

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	ks "github.com/kardianos/service"
)

// Program is one of our daemons as the service manager sees it.
type Program struct {
	Name        string // unit and init script name; the default user and group
	Description string
	// Unit is the packaged systemd unit (package systemd), which RenderUnit fills in.
	Unit          string
	DefaultConfig string // e.g. /etc/hubd/hubd.yaml
	// DataDir loads a config file, refusing a bad one, and returns the
	// directory the program writes: the unit lets it write there only.
	DataDir func(configPath string) (string, error)
}

// Init systems we install into.
const (
	InitSystemd = "systemd"
	InitProcd   = "procd"
)

// Paths of the host, variables so tests can point them elsewhere.
type host struct {
	systemdRunDir string   // exists while systemd is PID 1
	packagedUnits []string // where a distribution package puts its unit (per name)
	geteuid       func() int
}

func defaultHost() host {
	return host{
		systemdRunDir: "/run/systemd/system",
		packagedUnits: []string{"/lib/systemd/system", "/usr/lib/systemd/system"},
		geteuid:       os.Geteuid,
	}
}

const usageFmt = `Usage: %[1]s service ACTION [flags]

Installs %[1]s as a system service running as a dedicated user, and controls it.

Actions:
  install    create the user and the data dir, write the unit (systemd) or
             init script (procd), enable it; -dry-run prints it instead
  uninstall  stop and remove the unit or init script (the user, the data
             dir with its recordings and the config stay)
  start, stop, restart
  status     installed? running?

The unit is the packaged systemd/%[1]s.service with this binary, config,
user and data dir written in: hardened (NoNewPrivileges, ProtectSystem=strict
with only the data dir writable, no capabilities), Restart=on-failure.
A host with systemd installed but not running (a container, a chroot) gets
the unit written and enabled; it starts at the next boot.

Flags:
`

// Command runs `NAME service ACTION [flags]`; args start at ACTION.
func Command(p Program, args []string, stdout, stderr io.Writer) error {
	return command(p, defaultHost(), args, stdout, stderr)
}

func command(p Program, h host, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", p.DefaultConfig, "install: the YAML config `file` the service runs with (read now for the data dir; a bad one is refused)")
	user := fs.String("user", p.Name, "install: the dedicated `account` to run as; created (system account, no login) when missing")
	bin := fs.String("bin", "", "install: the `executable` the service starts (default: this one)")
	initSys := fs.String("init", "auto", "`system`: systemd, procd or auto (systemd when installed, else procd)")
	dry := fs.Bool("dry-run", false, "install: print the unit or init script and change nothing")
	fs.Usage = func() {
		fmt.Fprintf(stderr, usageFmt, p.Name)
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return errors.New("no action given")
	}
	if strings.HasPrefix(args[0], "-") {
		if err := fs.Parse(args); err != nil {
			return err // -h
		}
		fs.Usage()
		return errors.New("the action comes first: service ACTION [flags]")
	}
	action := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	sys, err := chooseInit(*initSys, h)
	if err != nil {
		return err
	}
	switch action {
	case "install":
		spec, err := p.spec(*cfg, *user, *bin)
		if err != nil {
			return err
		}
		return p.install(h, sys, spec, *dry, stdout)
	case "uninstall", "start", "stop", "restart", "status":
		return p.control(h, sys, action, stdout)
	default:
		fs.Usage()
		return fmt.Errorf("unknown action %q", action)
	}
}

// chooseInit picks the init system. kardianos/service's own detection picks
// systemd only while it runs as PID 1; a container or chroot that has
// systemd installed should still get a unit for the next boot.
func chooseInit(name string, h host) (string, error) {
	switch name {
	case InitSystemd, InitProcd:
		return name, nil
	case "auto":
	default:
		return "", fmt.Errorf("-init %q: want systemd, procd or auto", name)
	}
	if _, err := os.Stat(h.systemdRunDir); err == nil {
		return InitSystemd, nil
	}
	if _, err := exec.LookPath("systemctl"); err == nil {
		return InitSystemd, nil
	}
	for _, p := range []string{"/sbin/procd"} {
		if _, err := os.Stat(p); err == nil {
			return InitProcd, nil
		}
	}
	if _, err := exec.LookPath("procd"); err == nil {
		return InitProcd, nil
	}
	return "", errors.New("neither systemd nor procd is installed here: start `run -config FILE` from your init system as a dedicated user")
}

// spec resolves the flags of install into absolute paths and the account.
func (p Program) spec(cfgPath, user, bin string) (Spec, error) {
	var s Spec
	var err error
	if s.Config, err = filepath.Abs(cfgPath); err != nil {
		return s, err
	}
	dataDir, err := p.DataDir(s.Config)
	if err != nil {
		return s, fmt.Errorf("config %s: %w", s.Config, err)
	}
	if s.DataDir, err = filepath.Abs(dataDir); err != nil {
		return s, err
	}
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return s, fmt.Errorf("find this executable (pass -bin): %w", err)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return s, err
	}
	if s.Binary, err = filepath.EvalSymlinks(bin); err != nil {
		return s, fmt.Errorf("binary: %w", err)
	}
	s.User, s.Group = user, user
	return s, s.check()
}

// kardianos builds the library's service for sys with our script as its
// template. The script holds no template action ({{), so the library
// writes it as rendered here.
func (p Program) kardianos(sys string, spec *Spec) (ks.Service, error) {
	want := map[string]string{InitSystemd: "linux-systemd", InitProcd: "linux-procd"}[sys]
	var chosen ks.System
	for _, s := range ks.AvailableSystems() {
		if s.String() == want {
			chosen = s
		}
	}
	if chosen == nil {
		return nil, fmt.Errorf("kardianos/service has no %s support on this platform", sys)
	}
	c := &ks.Config{Name: p.Name, DisplayName: p.Name, Description: p.Description, Option: ks.KeyValue{}}
	if spec != nil {
		c.Executable, c.Arguments, c.UserName = spec.Binary, []string{"run", "-config", spec.Config}, spec.User
		script, err := p.render(sys, *spec)
		if err != nil {
			return nil, err
		}
		if strings.Contains(script, "{{") {
			return nil, errors.New("the rendered script holds '{{', which the service library would read as a template")
		}
		switch sys {
		case InitSystemd:
			c.Option["SystemdScript"] = script
		case InitProcd:
			c.Option["SysvScript"] = script
		}
	}
	return chosen.New(noRun{}, c)
}

func (p Program) render(sys string, s Spec) (string, error) {
	if sys == InitProcd {
		return p.RenderProcd(s)
	}
	return p.RenderUnit(s)
}

// scriptPath is where the unit or init script goes.
func (p Program) scriptPath(sys string) string {
	if sys == InitProcd {
		return "/etc/init.d/" + p.Name
	}
	return "/etc/systemd/system/" + p.Name + ".service"
}

func (p Program) install(h host, sys string, spec Spec, dry bool, stdout io.Writer) error {
	script, err := p.render(sys, spec)
	if err != nil {
		return err
	}
	if dry {
		fmt.Fprintf(stdout, "# %s (not written: -dry-run)\n%s", p.scriptPath(sys), script)
		return nil
	}
	if h.geteuid() != 0 {
		return errors.New("install needs root (it creates a user and writes the unit)")
	}
	if sys == InitSystemd {
		for _, d := range h.packagedUnits {
			if u := filepath.Join(d, p.Name+".service"); fileExists(u) {
				return fmt.Errorf("the %s package already installed the service (%s): use systemctl, or remove the package first", p.Name, u)
			}
		}
	}
	if fileExists(p.scriptPath(sys)) {
		return fmt.Errorf("already installed (%s): run `%s service uninstall` first", p.scriptPath(sys), p.Name)
	}
	if _, err := os.Stat(spec.Config); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	acct, err := ensureAccount(spec.User, spec.DataDir)
	if err != nil {
		return err
	}
	if acct.created {
		fmt.Fprintf(stdout, "created system user %s (uid %d, no login)\n", spec.User, acct.uid)
	}
	if err := ensureDataDir(spec.DataDir, acct); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "data dir %s: owned by %s, mode 0750\n", spec.DataDir, spec.User)
	if changed, err := protectConfig(spec.Config, acct); err != nil {
		return err
	} else if changed {
		fmt.Fprintf(stdout, "config %s: now root:%s, mode 0640 (it holds credentials)\n", spec.Config, spec.Group)
	}
	svc, err := p.kardianos(sys, &spec)
	if err != nil {
		return err
	}
	err = svc.Install()
	if err != nil && !(sys == InitSystemd && !systemdRunning(h) && fileExists(p.scriptPath(sys))) {
		return fmt.Errorf("install %s: %w", p.scriptPath(sys), err)
	}
	fmt.Fprintf(stdout, "wrote %s and enabled it\n", p.scriptPath(sys))
	if sys == InitSystemd && !systemdRunning(h) {
		fmt.Fprintf(stdout, "systemd is not running here (a container or chroot): %s starts at the next boot\n", p.Name)
		return nil
	}
	fmt.Fprintf(stdout, "start it with: %s service start\n", p.Name)
	return nil
}

func (p Program) control(h host, sys, action string, stdout io.Writer) error {
	installed := fileExists(p.scriptPath(sys))
	if sys == InitSystemd && !installed {
		for _, d := range h.packagedUnits {
			installed = installed || fileExists(filepath.Join(d, p.Name+".service"))
		}
	}
	if sys == InitSystemd && !systemdRunning(h) && action != "uninstall" {
		if action == "status" {
			if installed {
				fmt.Fprintf(stdout, "%s: installed, not running (systemd is not running here)\n", p.Name)
				return nil
			}
			fmt.Fprintf(stdout, "%s: not installed\n", p.Name)
			return nil
		}
		return fmt.Errorf("systemd is not running here (a container or chroot): cannot %s %s", action, p.Name)
	}
	svc, err := p.kardianos(sys, nil)
	if err != nil {
		return err
	}
	switch action {
	case "status":
		st, err := svc.Status()
		switch {
		case errors.Is(err, ks.ErrNotInstalled):
			fmt.Fprintf(stdout, "%s: not installed\n", p.Name)
			return nil
		case err != nil:
			return fmt.Errorf("status: %w", err)
		case st == ks.StatusRunning:
			fmt.Fprintf(stdout, "%s: running\n", p.Name)
		case st == ks.StatusStopped:
			fmt.Fprintf(stdout, "%s: installed, stopped\n", p.Name)
		default:
			fmt.Fprintf(stdout, "%s: status unknown\n", p.Name)
		}
		return nil
	case "uninstall":
		if !fileExists(p.scriptPath(sys)) {
			return fmt.Errorf("%s is not installed by `service install` (no %s)", p.Name, p.scriptPath(sys))
		}
		if systemdRunning(h) || sys == InitProcd {
			_ = svc.Stop() // may be stopped already; uninstall goes on
		}
		err := svc.Uninstall()
		if err != nil && !(sys == InitSystemd && !systemdRunning(h) && !fileExists(p.scriptPath(sys))) {
			return fmt.Errorf("uninstall: %w", err)
		}
		fmt.Fprintf(stdout, "removed %s; the user, the data dir and the config stay\n", p.scriptPath(sys))
		return nil
	case "start":
		err = svc.Start()
	case "stop":
		err = svc.Stop()
	case "restart":
		err = svc.Restart()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	fmt.Fprintf(stdout, "%s: %s done\n", p.Name, action)
	return nil
}

func systemdRunning(h host) bool {
	_, err := os.Stat(h.systemdRunDir)
	return err == nil
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// noRun is the kardianos Interface. We use the library to install and
// control the service only: the unit runs `run -config FILE`, which handles
// its own signals, so the library's Run is never called.
type noRun struct{}

func (noRun) Start(ks.Service) error {
	return errors.New("service: Run is not used; the unit starts `run`")
}
func (noRun) Stop(ks.Service) error { return nil }
