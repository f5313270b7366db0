package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// committer is a group commit for recordings: every notify must be durable
// before its reply, and an fsync per notify caps a disk at a few hundred per
// second. Requests that arrive while a commit runs share the next one. A
// lone request commits at once (unlike bolt.DB.Batch, which waits for a timer).
type committer struct {
	db   *bolt.DB
	reqs chan *putReq // unbuffered: a request is handed over only to a running loop
	quit chan struct{}
	done chan struct{}
}

type putReq struct {
	recs []Recording
	res  []PutResult
	err  error
	done chan struct{}
}

// maxBatchRecordings bounds one transaction: its dirty pages stay in memory
// until the commit.
const maxBatchRecordings = 10000

func newCommitter(db *bolt.DB) *committer {
	c := &committer{db: db, reqs: make(chan *putReq), quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

func (c *committer) submit(ctx context.Context, recs []Recording) ([]PutResult, error) {
	r := &putReq{recs: recs, done: make(chan struct{})}
	select {
	case c.reqs <- r:
	case <-c.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once handed over the request commits whatever ctx says: the reply
	// must tell the truth about durability.
	<-r.done
	return r.res, r.err
}

func (c *committer) loop() {
	defer close(c.done)
	for {
		var first *putReq
		select {
		case first = <-c.reqs:
		case <-c.quit:
			return
		}
		batch, n := []*putReq{first}, len(first.recs)
	drain:
		for n < maxBatchRecordings {
			select {
			case r := <-c.reqs:
				batch, n = append(batch, r), n+len(r.recs)
			default:
				break drain
			}
		}
		c.commit(batch)
	}
}

func (c *committer) commit(batch []*putReq) {
	err := c.db.Update(func(tx *bolt.Tx) error {
		for _, r := range batch {
			var failed error
			r.res, r.err, failed = putRecordings(tx, r.recs)
			if failed != nil {
				return failed
			}
		}
		return nil
	})
	for _, r := range batch {
		if err != nil {
			r.res, r.err = nil, err
		}
		close(r.done)
	}
}

func (c *committer) close() {
	close(c.quit)
	<-c.done
}
