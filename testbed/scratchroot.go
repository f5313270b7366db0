package testbed

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ScratchRoot is a throwaway copy of this machine's root filesystem, for
// tests that install packages, create users or write units: an overlayfs
// over / whose writes land in a tmpfs, mounted in a private mount namespace.
// Nothing it does reaches the machine, and it vanishes with the test.
//
// A holder process (`unshare -m` then sleep) keeps the namespace alive;
// Exec and Chroot enter it with nsenter. /proc, /dev, a fresh /run (so
// systemd looks not running, as in a container) and a fresh /tmp are
// mounted inside the root.
type ScratchRoot struct {
	Dir    string // the root's path inside the namespace (chroot Dir)
	holder *exec.Cmd
}

const scratchRootScript = `set -e
M="$1"
mount -t tmpfs -o mode=0755 scratchroot "$M"
mkdir "$M/upper" "$M/work" "$M/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$M/upper,workdir=$M/work" "$M/root"
mount -t proc proc "$M/root/proc"
mount --rbind /dev "$M/root/dev"
mount -t tmpfs -o mode=0755 run "$M/root/run"
mount -t tmpfs -o mode=1777 tmp "$M/root/tmp"
echo ready
exec sleep 3600
`

// NewScratchRoot makes a scratch root; it skips the test where that is not
// possible (not root, no unshare/nsenter, no overlayfs).
func NewScratchRoot(t testing.TB) *ScratchRoot {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testbed: ScratchRoot needs root (mount namespaces, overlayfs)")
	}
	for _, tool := range []string{"unshare", "nsenter", "chroot", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("testbed: ScratchRoot needs %s (util-linux, coreutils)", tool)
		}
	}
	mnt := t.TempDir()
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "--", "sh", "-c", scratchRootScript, "sh", mnt)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testbed: ScratchRoot: %v", err)
	}
	r := &ScratchRoot{Dir: filepath.Join(mnt, "root"), holder: cmd}
	t.Cleanup(func() {
		// Killing the holder ends the namespace: its mounts and tmpfs go with it.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("testbed: ScratchRoot: mounting the overlay failed: %s", stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("testbed: ScratchRoot: not ready after 15 s: %s", stderr.String())
	}
	return r
}

// Exec runs name with args in the scratch root's mount namespace but
// outside the chroot (e.g. dpkg --root=r.Dir); it returns the combined
// output.
func (r *ScratchRoot) Exec(name string, args ...string) (string, error) {
	out, err := r.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// Command is the unstarted command that runs name with args in the scratch
// root's namespace (nsenter execs it: its PID is the command's own). It dies
// with the test binary.
func (r *ScratchRoot) Command(name string, args ...string) *exec.Cmd {
	all := append([]string{"-t", strconv.Itoa(r.holder.Process.Pid), "-m", "--", name}, args...)
	cmd := exec.Command("nsenter", all...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Chroot runs a command inside the scratch root.
func (r *ScratchRoot) Chroot(args ...string) (string, error) {
	return r.Exec("chroot", append([]string{r.Dir}, args...)...)
}

// Path is where this process reads or writes path of the scratch root
// (through /proc/PID/root of the holder, which resolves in its namespace).
func (r *ScratchRoot) Path(path string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", r.holder.Process.Pid), r.Dir, path)
}
