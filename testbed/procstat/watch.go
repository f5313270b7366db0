package procstat

import (
	"context"
	"fmt"
	"time"
)

// Watch calls sample now and every interval for d, failing as soon as one
// of the processes exits: numbers of a dead process mean nothing.
func Watch(ctx context.Context, procs []*Child, d, interval time.Duration, sample func() error) error {
	exited := make(chan *Child, len(procs)) // buffered: no goroutine outlives Watch for long
	quit := make(chan struct{})
	defer close(quit)
	for _, p := range procs {
		go func() {
			select {
			case <-p.Done():
				exited <- p
			case <-quit:
			}
		}()
	}
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := sample(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p := <-exited:
			return fmt.Errorf("%s exited: %v", p.Name(), p.Err())
		case <-end.C:
			return nil
		case <-tick.C:
		}
	}
}

// WaitHubd waits until the hubd of child answers on its control socket
// (GET /v1/status decoded into status), for at most timeout.
func WaitHubd(ctx context.Context, c *HubdClient, child *Child, timeout time.Duration, status any) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.Status(ctx, status)
		if err == nil {
			return nil
		}
		if child.Exited() {
			return fmt.Errorf("hubd exited at start-up: %v", child.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hubd did not answer within %s: %w", timeout, err)
		}
		if err := SleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}
