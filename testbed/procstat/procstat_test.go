package procstat

import (
	"fmt"
	"os"
	"testing"
)

func TestParseStatTicks(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	stat := "4242 (hu d) (x)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 170 42 0 0 20 0 9 0 100 1000 500"
	got, err := ParseStatTicks([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if got != 212 {
		t.Fatalf("ticks = %d, want 170+42", got)
	}
	if _, err := ParseStatTicks([]byte("4242 (hubd) S 1")); err == nil {
		t.Fatal("truncated stat accepted")
	}
}

func TestParseStatus(t *testing.T) {
	s := "Name:\thubd\nVmHWM:\t   20480 kB\nVmRSS:\t   18432 kB\nThreads:\t9\n"
	got, err := ParseStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	want := Status{RSS: 18432 << 10, HWM: 20480 << 10, Threads: 9}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := ParseStatus("Name:\thubd\n"); err == nil {
		t.Fatal("status without memory lines accepted")
	}
}

func TestWorkdir(t *testing.T) {
	var logged []string
	logf := func(format string, a ...any) { logged = append(logged, fmt.Sprintf(format, a...)) }
	for _, tc := range []struct {
		name          string
		keep, broken  bool
		wantRemaining bool
	}{
		{"clean run", false, false, false},
		{"kept", true, false, true},
		{"broken", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWorkdir("bench", tc.keep, logf)
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(w.Dir)
			w.Broken = tc.broken
			w.Done()
			_, err = os.Stat(w.Dir)
			if remains := err == nil; remains != tc.wantRemaining {
				t.Fatalf("dir remains %v, want %v (log %q)", remains, tc.wantRemaining, logged)
			}
		})
	}
}
