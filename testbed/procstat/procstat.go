// Package procstat reads a process's CPU time, memory and file descriptors
// from /proc, for the benchmarks that measure hubd from outside.
package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ClockTicks is the unit of utime/stime in /proc/PID/stat (USER_HZ). It is
// 100 on every Linux we run on; getconf is asked once in case it is not.
func ClockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	hz, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || hz <= 0 {
		return 100
	}
	return hz
}

// CPUTicks is utime+stime of a process, all its threads, in clock ticks.
func CPUTicks(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	return ParseStatTicks(data)
}

// ParseStatTicks sums fields 14 (utime) and 15 (stime) of /proc/PID/stat.
// The command name, field 2, is in parentheses and may itself hold spaces
// and parentheses, so fields are counted from the last ')'.
func ParseStatTicks(data []byte) (uint64, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat: %q", data)
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after the command", len(f))
	}
	utime, err1 := strconv.ParseUint(f[14-3], 10, 64)
	stime, err2 := strconv.ParseUint(f[15-3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("malformed /proc stat utime/stime: %w", err)
	}
	return utime + stime, nil
}

// Status is what /proc/PID/status says of memory and threads.
type Status struct {
	RSS, HWM int64 // VmRSS now and VmHWM (peak over the process's life), bytes
	Threads  int
}

func ReadStatus(pid int) (Status, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Status{}, fmt.Errorf("read memory status: %w", err)
	}
	return ParseStatus(string(data))
}

func ParseStatus(s string) (Status, error) {
	var st Status
	var seen int
	for _, line := range strings.Split(s, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			st.RSS, seen = n<<10, seen+1 // kB in the kernel's spelling, KiB in fact
		case "VmHWM":
			st.HWM, seen = n<<10, seen+1
		case "Threads":
			st.Threads, seen = int(n), seen+1
		}
	}
	if seen != 3 {
		return st, fmt.Errorf("/proc status lacks VmRSS, VmHWM or Threads")
	}
	return st, nil
}

// OpenFDs counts the process's open file descriptors.
func OpenFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("count open fds: %w", err)
	}
	return len(ents), nil
}

// WriteBytes is write_bytes of /proc/PID/io: the bytes the process caused
// to be sent to storage (a page counts when it becomes dirty), what wears
// an SD card. Reading another process's io needs root or the same user.
func WriteBytes(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, fmt.Errorf("read io counters: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/io has no write_bytes (kernel without task I/O accounting)", pid)
}

// ParseMetrics reads the Prometheus text format: comments are skipped, a
// sample line is the series, a space and the value (a timestamp after it
// is ignored). Label values may hold spaces, so the series ends at the
// closing brace when there is one.
func ParseMetrics(rd io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexByte(line, ' ')
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			end = i + 1
		}
		if end <= 0 || end >= len(line) {
			return nil, fmt.Errorf("malformed metrics line %q", line)
		}
		f := strings.Fields(line[end:])
		if len(f) == 0 {
			return nil, fmt.Errorf("malformed metrics line %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("malformed metrics line %q: %w", line, err)
		}
		out[line[:end]] = v
	}
	return out, sc.Err()
}
