package service

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// account is the service's user as the system knows it.
type account struct {
	uid, gid int
	created  bool
}

// ensureAccount finds user, creating a system account (its own group, no
// login shell, home at the data dir, not created) when it does not exist:
// with useradd (Debian's passwd), else busybox adduser (OpenWrt and other
// small systems).
func ensureAccount(name, home string) (account, error) {
	if a, err := lookupAccount(name); err == nil {
		return a, nil
	}
	shell := "/bin/false"
	for _, s := range []string{"/usr/sbin/nologin", "/sbin/nologin"} {
		if fileExists(s) {
			shell = s
			break
		}
	}
	var cmds [][]string
	if p, err := exec.LookPath("useradd"); err == nil {
		cmds = [][]string{{p, "--system", "--user-group", "--home-dir", home, "--no-create-home", "--shell", shell, name}}
	} else if p, err := exec.LookPath("adduser"); err == nil {
		g, gerr := exec.LookPath("addgroup")
		if gerr != nil {
			return account{}, fmt.Errorf("create user %s: adduser without addgroup", name)
		}
		cmds = [][]string{{g, "-S", name}, {p, "-S", "-D", "-H", "-h", home, "-s", shell, "-G", name, name}}
	} else {
		return account{}, fmt.Errorf("user %s does not exist and neither useradd nor adduser is here to create it", name)
	}
	for _, c := range cmds {
		var out bytes.Buffer
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return account{}, fmt.Errorf("create user %s: %s: %w: %s", name, c[0], err, bytes.TrimSpace(out.Bytes()))
		}
	}
	a, err := lookupAccount(name)
	if err != nil {
		return a, fmt.Errorf("user %s after creating it: %w", name, err)
	}
	a.created = true
	return a, nil
}

func lookupAccount(name string) (account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return account{}, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return account{}, fmt.Errorf("user %s: uid %q gid %q are not numbers", name, u.Uid, u.Gid)
	}
	return account{uid: uid, gid: gid}, nil
}

// ensureDataDir makes the data dir (and missing parents, root's) and gives
// it to the account, mode 0750: recordings are nobody else's business.
func ensureDataDir(dir string, a account) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chown(dir, a.uid, a.gid); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}

// protectConfig makes the config readable by the service's group and by
// nobody else (it holds camera passwords and the relay credential), owned by
// root so the service cannot rewrite its own configuration. It reports
// whether anything changed.
func protectConfig(path string, a account) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, fmt.Errorf("config: %w", err)
	}
	uid, gid := -1, -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	if uid == 0 && gid == a.gid && fi.Mode().Perm() == 0o640 {
		return false, nil
	}
	if err := os.Chown(path, 0, a.gid); err != nil {
		return false, fmt.Errorf("config: %w", err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		return false, fmt.Errorf("config: %w", err)
	}
	return true, nil
}
