package api

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/media"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// BenchmarkNotify is the hub's upload notice over HTTP on loopback, from
// many hubs' connections at once: authentication, checks, a HEAD and a
// durable group-committed write per notice. The HEAD goes to an in-memory
// store (fake) or to relay's own media store on disk (local, the embedded
// default; its objects are uploaded through its signed URLs before the
// timer starts). The notices are encoded before the timer too, so that
// the client's JSON is not counted as relay's; the HTTP client still
// shares the CPU with relay.
func BenchmarkNotify(b *testing.B) {
	b.Run("store=fake", func(b *testing.B) { benchNotify(b, false) })
	b.Run("store=local", func(b *testing.B) { benchNotify(b, true) })
}

func benchNotify(b *testing.B, local bool) {
	e := newEnvLogging(b, slog.LevelInfo)
	tn := e.newTenant("A", "hub-a")
	var media *localObjects
	if local {
		media = useLocalObjects(b, e)
	}
	ch, err := e.store.Channel(b.Context(), tn.cams.Cameras[0].Channel)
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, b.N)
	for i := range bodies {
		start := now.Add(-time.Hour).Add(time.Duration(i) * time.Millisecond)
		content := fmt.Sprintf("segment %d", i)
		sum := md5.Sum([]byte(content))
		req := proto.UploadRequest{Camera: "cam1", Start: start, End: start.Add(4 * time.Second), Bytes: int64(len(content)),
			Codec: "h264", MD5: hex.EncodeToString(sum[:])}
		key := uploadKey(ch, "cam1", store.MS(start))
		if local {
			media.put(b, key, []byte(content))
		} else {
			e.objects.put(key, req.Bytes, req.MD5)
		}
		bodies[i], _ = json.Marshal(proto.RecordingNotice{Key: key, UploadRequest: req})
	}
	if local {
		syscall.Sync() // the uploads' writeback is not the notices' cost
	}
	// A wrk-style client: requests written pre-built on kept-alive
	// connections, answers read with net/http's parser, so that the load
	// generator takes as little of the shared CPU as it can.
	host := strings.TrimPrefix(e.srv.URL, "http://")
	head := "POST " + proto.PathHubRecordings + " HTTP/1.1\r\nHost: " + host +
		"\r\nAuthorization: Bearer " + tn.hub + "\r\nContent-Type: application/json\r\nContent-Length: "
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		rd := bufio.NewReader(conn)
		var req []byte
		for pb.Next() {
			body := bodies[n.Add(1)-1]
			req = append(append(strconv.AppendInt(append(req[:0], head...), int64(len(body)), 10), "\r\n\r\n"...), body...)
			if _, err := conn.Write(req); err != nil {
				b.Error(err)
				return
			}
			resp, err := http.ReadResponse(rd, nil)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				b.Errorf("notice: %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notices/s")
}

// localObjects is relay's embedded media store under a test env's API.
type localObjects struct {
	*media.Local
	handler http.Handler
}

// useLocalObjects swaps e's object store for a media.Local in a temp dir.
func useLocalObjects(b *testing.B, e *env) *localObjects {
	l, err := media.NewLocal(media.LocalConfig{Dir: b.TempDir(), BaseURL: "http://relay.test/media",
		Secret: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	e.api.objects = l
	return &localObjects{Local: l, handler: l.Handler()}
}

// put uploads content through a signed URL, as a hub does.
func (l *localObjects) put(b *testing.B, key string, content []byte) {
	ps, err := l.PresignPut(b.Context(), key, int64(len(content)), "video/mp4", time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	req, err := ps.NewRequest(b.Context(), bytes.NewReader(content))
	if err != nil {
		b.Fatal(err)
	}
	w := httptest.NewRecorder()
	l.handler.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("PUT %s: %d %s", key, w.Code, w.Body)
	}
}
