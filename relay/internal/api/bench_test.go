package api

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/relay/internal/store"
)

// BenchmarkNotify is the hub's upload notice over HTTP on loopback, from
// many hubs' connections at once: authentication, checks, a HEAD (fake
// store) and a durable group-committed write per notice.
func BenchmarkNotify(b *testing.B) {
	e := newEnv(b)
	tn := e.newTenant("A", "hub-a")
	ch, err := e.store.Channel(b.Context(), tn.cams.Cameras[0].Channel)
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: tr}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			start := now.Add(-time.Hour).Add(time.Duration(i) * time.Millisecond)
			content := fmt.Sprintf("segment %d", i)
			sum := md5.Sum([]byte(content))
			req := proto.UploadRequest{Camera: "cam1", Start: start, End: start.Add(4 * time.Second), Bytes: int64(len(content)),
				Codec: "h264", MD5: hex.EncodeToString(sum[:])}
			key := uploadKey(ch, "cam1", store.MS(start))
			e.objects.put(key, req.Bytes, req.MD5)
			body, _ := json.Marshal(proto.RecordingNotice{Key: key, UploadRequest: req})
			hr, _ := http.NewRequest("POST", e.srv.URL+proto.PathHubRecordings, bytes.NewReader(body))
			hr.Header.Set("Authorization", "Bearer "+tn.hub)
			resp, err := client.Do(hr)
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
