// Command relay is zipnvr's thin cloud side: the REST API, the metadata of
// tenants, hubs, cameras, channels and recordings, and presigned URLs for
// object storage. Media never flows through it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zipnvr/zipnvr/pkg/buildinfo"
	"github.com/zipnvr/zipnvr/relay/internal/api"
	"github.com/zipnvr/zipnvr/relay/internal/auth"
	"github.com/zipnvr/zipnvr/relay/internal/config"
	"github.com/zipnvr/zipnvr/relay/internal/hublink"
	"github.com/zipnvr/zipnvr/relay/internal/retention"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

const usage = `relay is zipnvr's cloud side: REST API, metadata and presigned URLs.

Usage:
  relay run -config FILE   serve until SIGINT/SIGTERM
  relay service install|uninstall|start|stop|restart|status [-config FILE]
                           run relay as a system service (dedicated user)
  relay version            print version, commit, build date

Run "relay COMMAND -h" for the flags of a command.
`

// sweepEvery is how often expired recordings are removed: retention is in
// days, so a quarter of an hour late is nothing.
const sweepEvery = 15 * time.Minute

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
	case "service":
		err = cmdService(rest, stdout, stderr)
	case "version", "-version", "--version":
		err = cmdVersion(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "relay: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "relay %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, "Usage: relay version\n\nPrints version, commit and build date.\n") }
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, buildinfo.String("relay"))
	return nil
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
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/relay/relay.yaml", "YAML configuration `file` (see relay/relay.yaml: every key has a default)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: relay run -config FILE\n\nServes the API until SIGINT or SIGTERM; a second signal exits at once.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	slog.SetDefault(log) // the log package (net/http, the AWS SDK) writes through it too
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process the default way
	}()
	return serve(ctx, cfg, log, nil)
}

// adminToken is the configured token, else the one kept in the data dir
// (generated on first start). Only the file's path is logged.
func adminToken(cfg *config.Config, log *slog.Logger) (string, error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, nil
	}
	tok, path, created, err := auth.LoadOrCreateAdminToken(cfg.DataDir)
	if err != nil {
		return "", err
	}
	if created {
		log.Info("generated the admin token (admin_token is empty)", "file", path)
	} else {
		log.Info("admin token from file (admin_token is empty)", "file", path)
	}
	return tok, nil
}

// serve runs relay until ctx ends; ready, when set, learns the address.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, ready func(addr string)) error {
	token, err := adminToken(cfg, log)
	if err != nil {
		return err
	}
	st, err := store.OpenBolt(cfg.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	objects, mediaHandler, err := openObjects(ctx, cfg, token, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	links := hublink.New(hublink.Config{Logger: log, Registerer: reg})
	lv, err := newLive(cfg, token, links, reg, log)
	if err != nil {
		return err
	}
	defer lv.Close()
	clipper, err := newClips(cfg, st, objects, links, reg, log)
	if err != nil {
		return err
	}
	snaps, err := newSnapshots(cfg, st, objects, links, log)
	if err != nil {
		return err
	}
	defer snaps.Close() // before the store closes
	handler, err := api.New(api.Options{
		Store: st, Objects: objects, AdminToken: token, Logger: log, Registry: reg, Links: links, Live: lv,
		Clips: clipper, PublicURL: cfg.PublicURL, Snapshots: snaps,
		MaxBodyBytes:   int64(cfg.MaxBodyBytes),
		UploadExpiry:   cfg.UploadURLExpiry(),
		DownloadExpiry: cfg.DownloadURLExpiry(),
		RetentionDays:  cfg.RetentionDays,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var root http.Handler = handler
	if mediaHandler != nil { // local media: relay itself serves the signed URLs
		mux := http.NewServeMux()
		mux.Handle(mediaPath, mediaHandler)
		mux.Handle("/", handler)
		root = mux
	}
	srv := &http.Server{
		Handler:           root,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // bodies are small (max_body_bytes)
		WriteTimeout:      2 * time.Minute,  // a 10000-recording listing with URLs
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	var wg sync.WaitGroup
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer func() {
		stopSweep()
		wg.Wait() // before the store closes
	}()
	sweeper := &retention.Sweeper{Store: st, Objects: objects, Log: log.With("component", "retention")}
	wg.Go(func() { sweeper.Run(sweepCtx, sweepEvery) })
	wg.Go(func() {
		if err := clipper.Run(sweepCtx); err != nil {
			log.Error("clips stopped", "err", err)
		}
	})

	log.Info("relay serving", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "data_dir", cfg.DataDir, "media", mediaKind(cfg))
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	links.Close() // Shutdown does not wait for hijacked connections
	lv.Close()    // nor for live streams (WebSockets, WebRTC)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func mediaKind(cfg *config.Config) string {
	if cfg.S3 != nil {
		return "s3 bucket " + cfg.S3.Bucket
	}
	return "local (data_dir)"
}
