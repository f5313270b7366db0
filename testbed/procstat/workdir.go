package procstat

import (
	"fmt"
	"io"
	"os"
)

// Logf is a benchmark command's logger: "name: message" lines on w.
func Logf(w io.Writer, name string) func(format string, a ...any) {
	return func(format string, a ...any) { fmt.Fprintf(w, name+": "+format+"\n", a...) }
}

// Workdir is a benchmark run's scratch directory. Done removes it unless
// Keep was asked (-keep) or the run was marked Broken: then it says where
// it is, for a post-mortem of the logs and files inside.
type Workdir struct {
	Dir    string
	Keep   bool
	Broken bool
	logf   func(format string, a ...any)
}

// NewWorkdir makes a temp dir named after the command.
func NewWorkdir(name string, keep bool, logf func(format string, a ...any)) (*Workdir, error) {
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	return &Workdir{Dir: dir, Keep: keep, logf: logf}, nil
}

// Done keeps or removes the directory; call it once, deferred.
func (w *Workdir) Done() {
	if w.Keep || w.Broken {
		w.logf("kept %s", w.Dir)
		return
	}
	if err := os.RemoveAll(w.Dir); err != nil {
		w.logf("remove temp dir: %v", err)
	}
}
