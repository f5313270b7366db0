package clips

import (
	"fmt"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// TestClassify: holes of a clip are waited for or become gaps with their
// reason; a hole only partly older than retention is split, the older part
// a retention gap and the rest judged on its own.
func TestClassify(t *testing.T) {
	now := t0.Add(30*24*time.Hour + time.Hour) // retention (30 days) reaches back to t0 + 1 h
	horizon := t0.Add(time.Hour)
	at := func(d time.Duration) time.Time { return horizon.Add(d) }
	ch := store.Channel{RetentionDays: 30}
	rec := func(a, b time.Duration) store.Recording { return store.Recording{Start: at(a), End: at(b)} }
	nothing := &proto.Coverage{}
	pending := func(a, b time.Duration) *proto.Coverage {
		return &proto.Coverage{Pending: []proto.Interval{{Start: at(a), End: at(b)}}}
	}
	tests := []struct {
		name       string
		start, end time.Duration // of the clip, from the horizon
		recs       []store.Recording
		deadline   time.Time
		cov        *proto.Coverage
		open, gaps string
	}{
		{"beyond retention", -time.Hour, -time.Minute, nil, now.Add(time.Hour), nil, "", "[-1h0m0s -1m0s retention]"},
		{"across the horizon, hub holds nothing", -time.Minute, time.Minute, nil, now.Add(time.Hour), nothing, "",
			"[-1m0s 0s retention] [0s 1m0s not recorded]"},
		{"across the horizon, hub still has it", -time.Minute, time.Minute, nil, now.Add(time.Hour), pending(0, time.Minute), "[0s 1m0s]",
			"[-1m0s 0s retention]"},
		{"across the horizon, deadline passed", -time.Minute, time.Minute, nil, now, nil, "", "[-1m0s 0s retention] [0s 1m0s deadline]"},
		{"across the horizon, hub not asked yet", -time.Minute, time.Minute, nil, now.Add(time.Hour), nil, "[0s 1m0s]", "[-1m0s 0s retention]"},
		{"recorded after the horizon", -time.Minute, 2 * time.Minute, []store.Recording{rec(30*time.Second, 2*time.Minute)}, now.Add(time.Hour), nothing, "",
			"[-1m0s 0s retention] [0s 30s not recorded]"},
		{"all recorded", 0, time.Minute, []store.Recording{rec(0, time.Minute)}, now.Add(time.Hour), nil, "", ""},
	}
	reasons := map[string]string{ReasonRetention: "retention", ReasonNotOnHub: "not recorded", ReasonDeadline: "deadline"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := store.Clip{Start: at(tt.start), End: at(tt.end), Deadline: tt.deadline}
			open, gaps := (&Coordinator{}).classify(cl, ch, tt.recs, now, &clipState{coverage: tt.cov})
			var o, g []string
			for _, h := range open {
				o = append(o, fmt.Sprintf("[%v %v]", h.start.Sub(horizon), h.end.Sub(horizon)))
			}
			for _, x := range gaps {
				g = append(g, fmt.Sprintf("[%v %v %s]", x.Start.Sub(horizon), x.End.Sub(horizon), reasons[x.Reason]))
			}
			if got := fmt.Sprint(o); got != "["+tt.open+"]" {
				t.Errorf("open %s, want [%s]", got, tt.open)
			}
			if got := fmt.Sprint(g); got != "["+tt.gaps+"]" {
				t.Errorf("gaps %s, want [%s]", got, tt.gaps)
			}
		})
	}
}
