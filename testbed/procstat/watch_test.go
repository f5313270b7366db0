package procstat

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Watch samples until its time is up, and stops at once, with an error, when
// a watched process exits: numbers of a dead process mean nothing.
func TestWatch(t *testing.T) {
	ctx := context.Background()
	long, err := StartChild("long", exec.Command("sleep", "30"))
	if err != nil {
		t.Fatal(err)
	}
	defer long.Stop(time.Second)
	samples := 0
	if err := Watch(ctx, []*Child{long}, 250*time.Millisecond, 100*time.Millisecond, func() error { samples++; return nil }); err != nil {
		t.Fatal(err)
	}
	if samples < 2 {
		t.Errorf("%d samples in 250 ms at 100 ms", samples)
	}

	short, err := StartChild("short", exec.Command("sleep", "0.1"))
	if err != nil {
		t.Fatal(err)
	}
	err = Watch(ctx, []*Child{long, short}, 30*time.Second, 100*time.Millisecond, func() error { return nil })
	if err == nil || !strings.Contains(err.Error(), "short exited") {
		t.Fatalf("err %v, want short exited", err)
	}
}
