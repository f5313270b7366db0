package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"testing"
)

// RunInNetNS runs the package's tests in a private network namespace where
// only loopback exists, so fixed ports never collide with other programs and
// no packet leaves the machine. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testbed.RunInNetNS(m)) }
//
// As root with unshare available it re-executes the test binary inside
// `unshare -n` (marked by TESTBED_NETNS=1) and exits with the child's code;
// otherwise, or with TESTBED_NO_NETNS=1, it says so on stderr and returns
// m.Run(). Inside the namespace the Go module proxy is unreachable, which is
// fine: the test binary is already built.
func RunInNetNS(m *testing.M) int { return InNetNS(os.Args, m.Run) }

// InNetNS is RunInNetNS for a command (a benchmark): inside the namespace,
// or where none can be made (said on stderr), it returns run(); otherwise
// it re-executes args (args[0] is the program) inside `unshare -n` and
// returns the child's exit code. Build what the child needs first: the Go
// module proxy is unreachable inside.
func InNetNS(args []string, run func() int) int {
	if os.Getenv("TESTBED_NETNS") != "" {
		return run()
	}
	if reason := netnsUnavailable(); reason != "" {
		fmt.Fprintf(os.Stderr, "testbed: running in the host network (%s)\n", reason)
		return run()
	}
	return reexecInNetNS(args)
}

// netnsUnavailable returns why a namespace cannot be used, or "".
func netnsUnavailable() string {
	if os.Getenv("TESTBED_NO_NETNS") == "1" {
		return "TESTBED_NO_NETNS=1"
	}
	if os.Geteuid() != 0 {
		return "not root"
	}
	for _, tool := range []string{"unshare", "ip", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not found"
		}
	}
	// Containers may deny CLONE_NEWNET even to root: try before committing.
	if out, err := exec.Command("unshare", "-n", "--", "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Sprintf("unshare -n failed: %v: %s", err, out)
	}
	return ""
}

func reexecInNetNS(argv []string) int {
	args := append([]string{"-n", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`}, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "TESTBED_NETNS=1")
	// If this process is killed, the tests must not run on unsupervised.
	// Pdeathsig follows the forking thread, so keep it for the child's life.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "testbed: cannot start unshare: %v\n", err)
		return 1
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "testbed: %v\n", err)
		return 1
	}
}
