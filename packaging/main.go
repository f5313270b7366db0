// Command packaging builds the .deb (armhf, arm64, amd64) and .ipk (the
// hub's opkg) packages of hubd and relay with nfpm: `make packages`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const usageHead = `Usage: go run ./packaging [flags]   (make packages)

Packages the binaries of make cross (DIST/linux-{armv7,arm64,amd64}/{hubd,relay}):
  hubd   .deb for armhf, arm64, amd64 and .ipk (opkg) for the hub CPUs
  relay  .deb for armhf, arm64, amd64
Each installs the binary in /usr/bin, the default config with every key
commented in /etc/NAME/NAME.yaml (a conffile: upgrades keep your edits), the
systemd unit (deb) or procd init script (ipk), and on install creates the
system user NAME and its data dir /var/lib/NAME (0750). Removing the package
keeps the recordings; purging (dpkg -P) deletes /var/lib/NAME.

Flags:
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "packaging: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("packaging", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dist := fs.String("dist", "dist", "`dir` holding the cross-built binaries (make cross)")
	out := fs.String("out", "dist/packages", "`dir` the packages are written to")
	version := fs.String("version", "dev", "`git describe` output of the build (make passes VERSION); see the README for how it becomes a package version")
	archs := fs.String("arch", "armv7,arm64,amd64", "comma-separated `list` of CPUs: armv7, arm64, amd64")
	formats := fs.String("format", "deb,ipk", "comma-separated `list` of formats: deb, ipk")
	ipkArm := fs.String("ipk-arch-armv7", targets[0].IPK, "opkg `architecture` of the ARMv7 .ipk (the hub's `opkg print-architecture` says which it accepts)")
	ipkArm64 := fs.String("ipk-arch-arm64", targets[1].IPK, "opkg `architecture` of the ARM64 .ipk")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o := options{dist: *dist, out: *out, mtime: time.Now().UTC().Truncate(time.Second)}
	var err error
	if o.root, err = moduleRoot(); err != nil {
		return err
	}
	if o.version, err = debVersion(*version, o.mtime); err != nil {
		return err
	}
	for _, a := range strings.Split(*archs, ",") {
		found := false
		for _, t := range targets {
			if t.Dir == "linux-"+strings.TrimSpace(a) {
				switch t.Dir {
				case "linux-armv7":
					t.IPK = *ipkArm
				case "linux-arm64":
					t.IPK = *ipkArm64
				}
				o.targets, found = append(o.targets, t), true
			}
		}
		if !found {
			return fmt.Errorf("-arch: unknown CPU %q (want armv7, arm64 or amd64)", a)
		}
	}
	for _, f := range strings.Split(*formats, ",") {
		f = strings.TrimSpace(f)
		if f != "deb" && f != "ipk" {
			return fmt.Errorf("-format: unknown format %q (want deb or ipk)", f)
		}
		o.formats = append(o.formats, f)
	}
	pkgs, err := build(o)
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		fi, err := os.Stat(p.Path)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%-6s %-4s %-26s %6.1f MiB  %s\n", p.Program, p.Format, p.Arch, float64(fi.Size())/(1<<20), p.Path)
	}
	return nil
}

// moduleRoot finds go.mod upwards from the working directory: the default
// configs are read from the repository.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s: run from the repository", dir)
		}
	}
}
