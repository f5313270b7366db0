// Package buildinfo says which build a binary is: version, commit and date
// stamped by the Makefile (-ldflags -X), else read from Go's VCS stamp.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped by `make` with -ldflags "-X github.com/zipnvr/zipnvr/pkg/buildinfo.Version=...".
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// String is the one line `version` prints.
func String(program string) string {
	commit, date := Commit, Date
	if bi, ok := debug.ReadBuildInfo(); ok && commit == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				date = s.Value
			}
		}
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit == "" {
		commit = "unknown"
	}
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("%s %s (commit %s, built %s, %s/%s, %s)", program, Version, commit, date, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
