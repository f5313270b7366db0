// Command hubd is the recorder that runs on each hub: it records every
// camera into a crash-safe local ring of fMP4 segments.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/config"
	"github.com/zipnvr/zipnvr/hubd/internal/hub"
	"github.com/zipnvr/zipnvr/hubd/internal/ring"
	"github.com/zipnvr/zipnvr/pkg/buildinfo"
)

const usage = `hubd records a hub's IP cameras into a local ring of fMP4 segments.

Usage:
  hubd run -config FILE                          record until SIGINT/SIGTERM
  hubd recordings -config FILE [-camera ID] [-json]  list the segments in the ring
  hubd status -config FILE [-json]               what a running hubd is doing
  hubd service install|uninstall|start|stop|restart|status [-config FILE]
                                                 run hubd as a system service (dedicated user)
  hubd version                                   print version, commit, build date

Run "hubd COMMAND -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(rest, stderr)
	case "recordings":
		err = cmdRecordings(rest, stdout, stderr)
	case "status":
		err = cmdStatus(rest, stdout, stderr)
	case "service":
		err = cmdService(rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, buildinfo.String("hubd"))
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "hubd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "hubd %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func newFlags(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", "/etc/hubd/hubd.yaml", "YAML configuration `file` (see README: every key has a default)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hubd %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs, cfg
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdRun(args []string, stderr io.Writer) error {
	fs, path := newFlags("run", "run -config FILE\n\nRecords every camera of the config until SIGINT or SIGTERM; a second signal exits at once.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	slog.SetDefault(log) // libraries that use the log package (gortsplib) write through it too
	if os.Getenv("GOMAXPROCS") == "" && cfg.Hub.MaxProcs > 0 {
		runtime.GOMAXPROCS(cfg.Hub.MaxProcs)
	}
	if len(cfg.Cameras) == 0 {
		log.Warn("no cameras configured: nothing to record")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process the default way
	}()
	h, err := hub.New(cfg, log)
	if err != nil {
		return err
	}
	return h.Run(ctx)
}

func cmdRecordings(args []string, stdout, stderr io.Writer) error {
	fs, path := newFlags("recordings", "recordings -config FILE [-camera ID] [-json]\n\nLists the segments in the local ring: camera, start, end, bytes, path, upload state.\nWorks with hubd running (asks it over its control socket) or stopped (reads the index).", stderr)
	cam := fs.String("camera", "", "only this camera `ID`")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	segs, err := ring.ReadIndex(cfg.Hub.DataDir, *cam)
	if errors.Is(err, ring.ErrLocked) {
		q := "/v1/recordings"
		if *cam != "" {
			q += "?camera=" + *cam
		}
		err = hub.NewClient(cfg.Hub.ControlSocket).Get(q, &segs)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		if segs == nil {
			segs = []ring.Segment{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(segs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CAMERA\tSTART\tEND\tDURATION\tBYTES\tCODEC\tSTATE\tPATH")
	for _, s := range segs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Camera, s.Start.Format("2006-01-02T15:04:05.000Z"),
			s.End.Format("2006-01-02T15:04:05.000Z"), s.Duration().Round(time.Millisecond), s.Bytes, s.Codec, s.State, s.Path)
	}
	return tw.Flush()
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs, path := newFlags("status", "status -config FILE [-json]\n\nAsks a running hubd what each camera and the ring are doing.", stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	var rep hub.StatusReport
	if err := hub.NewClient(cfg.Hub.ControlSocket).Get("/v1/status", &rep); err != nil {
		return fmt.Errorf("%w (is hubd running with this config?)", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	r := rep.Ring
	fmt.Fprintf(stdout, "hub %s: ring %d/%d bytes, %d segments (%d pending upload), evicted %d (%d before upload)\n",
		rep.Hub, r.UsedBytes, r.MaxBytes, r.Segments, r.Pending, r.Evicted, r.EvictedBeforeUpload)
	if u := rep.Upload; u != nil {
		last := "never"
		if !u.LastUpload.IsZero() {
			last = time.Since(u.LastUpload).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(stdout, "upload: %d segments (%d bytes) uploaded, %d in flight, %d failed attempts, last %s",
			u.Uploaded, u.UploadedBytes, u.InFlight, u.Failures, last)
		if u.LastError != "" {
			fmt.Fprintf(stdout, ", last error: %s", u.LastError)
		}
		fmt.Fprintln(stdout)
	} else {
		fmt.Fprintln(stdout, "upload: no relay configured (recording locally only)")
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CAMERA\tCONNECTED\tCODEC\tFRAMES\tDROPPED\tSEGMENTS\tBYTES\tLAST FRAGMENT\tLAST ERROR")
	for _, c := range rep.Cameras {
		last := "-"
		if !c.LastFragment.IsZero() {
			last = time.Since(c.LastFragment).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", c.Camera, c.Connected, c.Codec, c.FramesIn,
			c.FramesDropped+c.QueueDropped, c.Segments, c.BytesWritten, last, c.LastError)
	}
	return tw.Flush()
}
