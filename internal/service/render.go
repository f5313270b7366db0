package service

import (
	"fmt"
	"strings"
)

// Spec is one installation of a program: which binary runs which config as
// which user, writing where.
type Spec struct {
	Binary  string // absolute path of the executable
	Config  string // absolute path of its YAML config
	DataDir string // absolute path the service may write
	User    string // the dedicated account it runs as
	Group   string // that account's group
}

// check refuses values a unit or init script cannot carry safely. Paths go
// into space-separated unit settings (ReadWritePaths) and, for the binary,
// into ConditionFileIsExecutable-like lines; quoting rules differ per
// setting, so anything that would need quoting is refused with the reason.
func (s Spec) check() error {
	for _, f := range []struct{ key, val string }{{"binary", s.Binary}, {"config", s.Config}, {"data dir", s.DataDir}} {
		if !strings.HasPrefix(f.val, "/") {
			return fmt.Errorf("%s %q: must be an absolute path", f.key, f.val)
		}
		if i := strings.IndexAny(f.val, " \t\n\"'\\$%{}`;"); i >= 0 {
			return fmt.Errorf("%s %q: the character %q cannot go into a service unit; use a path without it", f.key, f.val, f.val[i])
		}
	}
	for _, f := range []struct{ key, val string }{{"user", s.User}, {"group", s.Group}} {
		if !validAccount(f.val) {
			return fmt.Errorf("%s %q: want letters, digits, '_' or '-', starting with a letter or '_' (at most 32)", f.key, f.val)
		}
	}
	return nil
}

// validAccount is the portable user/group name rule (useradd's default
// NAME_REGEX, busybox adduser accepts it too).
func validAccount(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// RenderUnit writes s into the program's packaged systemd unit: ExecStart,
// User, Group and ReadWritePaths take the spec's values; StateDirectory
// (which makes /var/lib/NAME) is kept only when that is the data dir. Every
// other line, the hardening included, stays as packaged, so the unit that
// `service install` writes and the one the package ships cannot drift.
func (p Program) RenderUnit(s Spec) (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	stateDir := s.DataDir == "/var/lib/"+p.Name
	seen := map[string]bool{}
	var b strings.Builder
	for _, line := range strings.SplitAfter(p.Unit, "\n") {
		key, _, _ := strings.Cut(strings.TrimSpace(line), "=")
		nl := ""
		if strings.HasSuffix(line, "\n") {
			nl = "\n"
		}
		switch key {
		case "ExecStart":
			line = "ExecStart=" + s.Binary + " run -config " + s.Config + nl
		case "User":
			line = "User=" + s.User + nl
		case "Group":
			line = "Group=" + s.Group + nl
		case "ReadWritePaths":
			line = "ReadWritePaths=" + s.DataDir + nl
		case "StateDirectory", "StateDirectoryMode":
			if !stateDir {
				line = ""
			}
		default:
			key = ""
		}
		if key != "" {
			seen[key] = true
		}
		b.WriteString(line)
	}
	for _, k := range []string{"ExecStart", "User", "Group", "ReadWritePaths"} {
		if !seen[k] {
			return "", fmt.Errorf("the packaged unit of %s has no %s= line to fill in", p.Name, k)
		}
	}
	return b.String(), nil
}

// RenderProcd is the OpenWrt init script (procd) for s: procd starts the
// program as the dedicated user, restarts it when it exits, and sends its
// output to logd. The data dir is made at each start because OpenWrt keeps
// /var in RAM.
func (p Program) RenderProcd(s Spec) (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	return fmt.Sprintf(`#!/bin/sh /etc/rc.common
# %[1]s: %[2]s (procd). Written by "%[1]s service install" or the %[1]s package.
USE_PROCD=1
START=95
STOP=10

start_service() {
	if [ ! -d %[5]s ]; then
		mkdir -p %[5]s
		chown %[6]s:%[7]s %[5]s
		chmod 0750 %[5]s
	fi
	procd_open_instance
	procd_set_param command %[3]s run -config %[4]s
	procd_set_param user %[6]s
	# restart whenever it exits, forever (threshold 3600 s, wait 2 s, retries 0 = unlimited)
	procd_set_param respawn 3600 2 0
	procd_set_param term_timeout 20
	procd_set_param stdout 1
	procd_set_param stderr 1
	procd_close_instance
}
`, p.Name, p.Description, s.Binary, s.Config, s.DataDir, s.User, s.Group), nil
}
