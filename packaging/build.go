package main

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/ipk" // registers the ipk packager

	"github.com/zipnvr/zipnvr/internal/service"
	"github.com/zipnvr/zipnvr/systemd"
)

//go:embed scripts
var scripts embed.FS

// program is one thing we package.
type program struct {
	Name        string
	Description string // the package's one-line summary, also the user's comment
	Long        string // the package description's further lines
	Config      string // where the config goes
	ConfigSrc   string // the default config, relative to the module root
	DataDir     string
	Unit        string
	Formats     []string // deb, ipk
}

var programs = []program{
	{
		Name: "hubd", Description: "zipnvr hub recorder",
		Long:   "Records every IP camera of a Zipato hub around the clock into a bounded ring of\nfMP4 segments on the hub's disk and uploads them through the relay.",
		Config: "/etc/hubd/hubd.yaml", ConfigSrc: "packaging/hubd.yaml", DataDir: "/var/lib/hubd",
		Unit: systemd.Hubd, Formats: []string{"deb", "ipk"},
	},
	{
		Name: "relay", Description: "zipnvr relay (cloud API)",
		Long:   "The thin cloud side of zipnvr: REST API, metadata of recordings and presigned\nS3 URLs. Media never flows through it.",
		Config: "/etc/relay/relay.yaml", ConfigSrc: "relay/relay.yaml", DataDir: "/var/lib/relay",
		Unit: systemd.Relay, Formats: []string{"deb"},
	},
}

// target is one CPU we build for: its directory under dist (make cross)
// and its name in each package format.
type target struct {
	Dir string // dist/<Dir>/{hubd,relay}
	Deb string // Debian architecture
	IPK string // opkg architecture (the hub's `opkg print-architecture`)
}

var targets = []target{
	{Dir: "linux-armv7", Deb: "armhf", IPK: "arm_cortex-a7_neon-vfpv4"},
	{Dir: "linux-arm64", Deb: "arm64", IPK: "aarch64_generic"},
	{Dir: "linux-amd64", Deb: "amd64", IPK: "x86_64"},
}

// options of one packaging run.
type options struct {
	root    string   // module root: default configs live there
	dist    string   // binaries by target directory (make cross)
	out     string   // where packages go
	version string   // package version (see debVersion)
	targets []target // which CPUs
	formats []string // which formats
	mtime   time.Time
}

// built is one package file.
type built struct {
	Program, Format, Arch, Path string
}

// build writes every package of o and returns them.
func build(o options) ([]built, error) {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "zipnvr-pkg-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var out []built
	for _, p := range programs {
		scriptPaths, err := p.writeScripts(tmp)
		if err != nil {
			return nil, err
		}
		unit := filepath.Join(tmp, p.Name+".service")
		if err := os.WriteFile(unit, []byte(p.Unit), 0o644); err != nil {
			return nil, err
		}
		initScript, err := p.procdScript(tmp)
		if err != nil {
			return nil, err
		}
		for _, t := range o.targets {
			bin := filepath.Join(o.dist, t.Dir, p.Name)
			if _, err := os.Stat(bin); err != nil {
				return nil, fmt.Errorf("%s for %s: %w (run make cross first)", p.Name, t.Dir, err)
			}
			for _, format := range o.formats {
				if !contains(p.Formats, format) {
					continue
				}
				info := p.info(o, format, t, bin, unit, initScript, scriptPaths[format])
				b, err := writePackage(info, format, o.out)
				if err != nil {
					return nil, fmt.Errorf("%s %s %s: %w", p.Name, format, t.Dir, err)
				}
				b.Program = p.Name
				out = append(out, b)
			}
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// maintScripts are the rendered maintainer scripts of one format.
type maintScripts struct{ postinst, prerm, postrm string }

// writeScripts renders scripts/<format>-<script> for p into dir.
func (p program) writeScripts(dir string) (map[string]maintScripts, error) {
	out := map[string]maintScripts{}
	for _, format := range []string{"deb", "ipk"} {
		var ms maintScripts
		for _, s := range []struct {
			name string
			dst  *string
		}{{"postinst", &ms.postinst}, {"prerm", &ms.prerm}, {"postrm", &ms.postrm}} {
			src, err := scripts.ReadFile("scripts/" + format + "-" + s.name)
			if err != nil {
				return nil, err
			}
			t, err := template.New(s.name).Option("missingkey=error").Parse(string(src))
			if err != nil {
				return nil, fmt.Errorf("scripts/%s-%s: %w", format, s.name, err)
			}
			var b bytes.Buffer
			if err := t.Execute(&b, p); err != nil {
				return nil, fmt.Errorf("scripts/%s-%s: %w", format, s.name, err)
			}
			*s.dst = filepath.Join(dir, p.Name+"-"+format+"-"+s.name)
			if err := os.WriteFile(*s.dst, b.Bytes(), 0o755); err != nil {
				return nil, err
			}
		}
		out[format] = ms
	}
	return out, nil
}

// procdScript writes the OpenWrt init script, the one `hubd service
// install` writes on a procd system, for the packaged paths.
func (p program) procdScript(dir string) (string, error) {
	sp := service.Program{Name: p.Name, Description: p.Description, Unit: p.Unit}
	s, err := sp.RenderProcd(service.Spec{Binary: "/usr/bin/" + p.Name, Config: p.Config, DataDir: p.DataDir, User: p.Name, Group: p.Name})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, p.Name+".init")
	return path, os.WriteFile(path, []byte(s), 0o755)
}

// info is the nfpm description of one package.
func (p program) info(o options, format string, t target, bin, unit, initScript string, ms maintScripts) *nfpm.Info {
	owned := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: o.mtime}
	}
	contents := files.Contents{
		{Source: bin, Destination: "/usr/bin/" + p.Name, FileInfo: owned(0o755)},
		// A conffile: an upgrade keeps the admin's edits (dpkg and opkg).
		{Source: filepath.Join(o.root, p.ConfigSrc), Destination: p.Config, Type: files.TypeConfig, FileInfo: owned(0o640)},
	}
	arch := t.Deb
	switch format {
	case "deb":
		contents = append(contents, &files.Content{Source: unit, Destination: "/lib/systemd/system/" + p.Name + ".service", FileInfo: owned(0o644)})
	case "ipk":
		arch = t.IPK
		contents = append(contents, &files.Content{Source: initScript, Destination: "/etc/init.d/" + p.Name, FileInfo: owned(0o755)})
	}
	info := &nfpm.Info{
		Name: p.Name, Arch: arch, Platform: "linux",
		Version: o.version, VersionSchema: "none",
		Section: "video", Priority: "optional",
		Maintainer:  "zipnvr <zipnvr@users.noreply.github.com>",
		Description: p.Description + "\n" + p.Long,
		Homepage:    "https://github.com/zipnvr/zipnvr",
		MTime:       o.mtime,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts:  nfpm.Scripts{PostInstall: ms.postinst, PreRemove: ms.prerm, PostRemove: ms.postrm},
		},
	}
	if format == "deb" {
		info.Depends = []string{"passwd"} // useradd
		info.Deb.Arch = arch
	} else {
		info.IPK.Arch = arch
	}
	return info
}

// writePackage runs the nfpm packager of format for info into dir.
func writePackage(info *nfpm.Info, format, dir string) (built, error) {
	pkgr, err := nfpm.Get(format)
	if err != nil {
		return built{}, err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return built{}, err
	}
	name := pkgr.ConventionalFileName(info)
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return built{}, err
	}
	if err := pkgr.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return built{}, err
	}
	if err := f.Close(); err != nil {
		return built{}, err
	}
	return built{Format: format, Arch: info.Arch, Path: path}, nil
}

var releaseVersion = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)(-(\d+)-g([0-9a-f]+))?(-dirty)?$`)

// debVersion turns `git describe` output into a version dpkg and opkg
// order correctly: v1.2.3 -> 1.2.3; v1.2.3-4-gabc -> 1.2.3+4.gabc; a bare
// commit (no tag yet) -> 0.0.0~<UTC build time>.g<commit>, which sorts by
// build time, so each build upgrades the one before.
func debVersion(describe string, built time.Time) (string, error) {
	d := strings.TrimSpace(describe)
	if m := releaseVersion.FindStringSubmatch(d); m != nil {
		v := m[1]
		if m[3] != "" {
			v += "+" + m[3] + ".g" + m[4]
		}
		if m[5] != "" {
			v += ".dirty"
		}
		return v, nil
	}
	commit, dirty := strings.CutSuffix(d, "-dirty")
	if !regexp.MustCompile(`^[0-9a-f]{4,40}$`).MatchString(commit) && commit != "dev" {
		return "", fmt.Errorf("version %q: want a git describe output (v1.2.3, v1.2.3-4-gabc, abc1234[-dirty]) or dev", describe)
	}
	v := "0.0.0~" + built.UTC().Format("20060102150405") + ".g" + commit
	if commit == "dev" {
		v = "0.0.0~" + built.UTC().Format("20060102150405") + ".dev"
	}
	if dirty {
		v += ".dirty"
	}
	return v, nil
}
