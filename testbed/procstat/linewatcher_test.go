package procstat

import (
	"strings"
	"testing"
)

// The ready line may arrive split across writes, and output after it still
// reaches the log.
func TestLineWatcherSplitWrites(t *testing.T) {
	var log strings.Builder
	w := &lineWatcher{log: &log, prefix: FakecamReadyTag, ready: make(chan string, 1)}
	for _, p := range []string{"encoding clip\nfakecam re", "ady rtsp://127.0.0.1:1/cam1 (1 streams)", "\nmore\n"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if line := <-w.ready; !strings.HasSuffix(line, "(1 streams)") {
		t.Fatalf("ready line %q", line)
	}
	if !strings.HasSuffix(log.String(), "more\n") {
		t.Fatalf("log %q", log.String())
	}
}
