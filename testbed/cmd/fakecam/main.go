// Command fakecam serves N looping test cameras over RTSP (see package
// testbed/fakecam). It runs as its own process so that a benchmark of the
// recorder doesn't count the cameras' CPU against it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/zipnvr/zipnvr/testbed/fakecam"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakecam:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("fakecam", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP listen address (port 0 picks a free one; the ready line shows it)")
	n := fs.Int("n", 4, "number of cameras, served as paths cam1..camN")
	codec := fs.String("codec", "h264", "video codec of the clip: h264 or h265")
	size := fs.String("size", "1280x720", "picture size WIDTHxHEIGHT")
	fps := fs.Int("fps", 25, "frames per second")
	gop := fs.Int("gop", 50, "frames between keyframes")
	kbps := fs.Int("kbps", 2000, "target bitrate in kbit/s")
	seconds := fs.Int("seconds", 4, "length of the looped clip in seconds (encoded once at start-up)")
	udp := fs.Bool("udp", false, "also offer the UDP transport (TCP is always offered)")
	user := fs.String("user", "", "require this user name from clients (Basic or Digest auth)")
	pass := fs.String("pass", "", "password for -user")
	midGOP := fs.Bool("midgop", false, "new clients start at the loop's current frame instead of at a keyframe")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: fakecam [flags]\n\n"+
			"Serves a looping testsrc2 clip as N live RTSP cameras on rtsp://LISTEN/cam1..camN.\n"+
			"Prints one line \"fakecam ready URL... (N streams)\" on stdout once serving, and\n"+
			"runs until SIGINT or SIGTERM. Needs ffmpeg on PATH to encode the clip.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		os.Exit(2)
	}
	if *n < 1 {
		return fmt.Errorf("-n must be at least 1")
	}
	w, h, ok := strings.Cut(*size, "x")
	width, err1 := strconv.Atoi(w)
	height, err2 := strconv.Atoi(h)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("-size %q: want WIDTHxHEIGHT", *size)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	clip, err := fakecam.EncodeClip(ctx, fakecam.ClipOptions{
		Codec: *codec, Width: width, Height: height, FPS: *fps,
		Seconds: *seconds, GOP: *gop, BitrateKbps: *kbps,
	})
	if err != nil {
		return err
	}
	paths := make([]string, *n)
	for i := range paths {
		paths[i] = "cam" + strconv.Itoa(i+1)
	}
	srv, err := fakecam.Start(fakecam.Options{
		Clip: clip, Paths: paths, RTSPAddress: *listen, UDP: *udp,
		User: *user, Pass: *pass, StartMidGOP: *midGOP,
	})
	if err != nil {
		return err
	}
	defer srv.Close()

	urls := make([]string, len(paths))
	for i, p := range paths {
		urls[i] = srv.URL(p)
	}
	fmt.Printf("fakecam ready %s (%d streams)\n", strings.Join(urls, " "), len(paths))

	<-ctx.Done()
	return nil
}
