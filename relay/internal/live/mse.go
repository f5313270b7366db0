package live

import (
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zipnvr/zipnvr/pkg/proto"
	"github.com/zipnvr/zipnvr/pkg/token"
)

// viewerWriteTimeout: a viewer that takes longer to take one frame is gone.
const viewerWriteTimeout = 10 * time.Second

// A browser's WebSocket cannot set headers: the token comes in the query.
// Pages of another origin may not open the socket (gorilla's default check);
// clients without an Origin header (apps) may.
var viewerUpgrader = websocket.Upgrader{WriteBufferSize: 64 << 10}

// ServeMSE serves the stream c grants as fMP4 over a WebSocket, for Media
// Source Extensions, where WebRTC cannot connect (UDP blocked, no TURN) or
// the codec is H.265. Messages: a JSON text {"type":"init","mime":...}
// followed by a binary init segment, then one binary moof+mdat per frame
// (the cached GOP first); {"type":"state",...} as the camera changes; a
// close frame with the reason at the end.
func (s *Service) ServeMSE(w http.ResponseWriter, r *http.Request, c token.Claims) error {
	if c.Quality == "mjpeg" {
		return errorf(http.StatusBadRequest, "mjpeg quality is not fMP4: GET /api/v1/channels/%s/live/mjpeg?token=...", c.Channel)
	}
	v, err := s.newViewer(c, "mse", newID("lv"))
	if err != nil {
		return err
	}
	t, err := v.ready(r.Context())
	if err != nil {
		return err
	}
	if _, _, err := t.mse(); err != nil {
		v.end(err.Error())
		return errorf(http.StatusUnsupportedMediaType, "%v", err)
	}
	ws, err := viewerUpgrader.Upgrade(w, r, nil)
	if err != nil {
		v.end("WebSocket upgrade failed")
		return nil // the upgrader answered
	}
	v.t = &mseOut{ws: ws}
	go func() {
		// Read to see pings and the close; a viewer sends nothing else.
		ws.SetReadLimit(4096)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				v.end("viewer left")
				return
			}
		}
	}()
	v.run()
	return nil
}

type mseOut struct {
	ws *websocket.Conn
	mu sync.Mutex
}

type wsMessage struct {
	Type   string `json:"type"`
	Mime   string `json:"mime,omitempty"`
	Codec  string `json:"codec,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	State  string `json:"state,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func (o *mseOut) write(kind int, b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	_ = o.ws.SetWriteDeadline(time.Now().Add(viewerWriteTimeout))
	return o.ws.WriteMessage(kind, b)
}

func (o *mseOut) writeJSON(m wsMessage) error {
	b, _ := json.Marshal(m)
	return o.write(websocket.TextMessage, b)
}

func (o *mseOut) setTrack(t *trackInfo) error {
	init, mime, err := t.mse()
	if err != nil {
		return err
	}
	if err := o.writeJSON(wsMessage{Type: "init", Mime: mime, Codec: t.codec, Width: t.width, Height: t.height}); err != nil {
		return err
	}
	return o.write(websocket.BinaryMessage, init)
}

func (o *mseOut) writeFrame(f *frame, _ int, _ []*frame) (int, error) {
	b, err := f.fragment()
	if err != nil {
		return 0, err
	}
	return len(b), o.write(websocket.BinaryMessage, b)
}

func (o *mseOut) state(state, detail string) {
	_ = o.writeJSON(wsMessage{Type: "state", State: state, Detail: detail})
}

func (o *mseOut) finish(reason string) {
	_ = o.writeJSON(wsMessage{Type: "state", State: "ended", Detail: reason})
	o.mu.Lock()
	_ = o.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, truncate(reason, 100)), time.Now().Add(time.Second))
	o.mu.Unlock()
	_ = o.ws.Close()
}

// ServeMJPEG passes an MJPEG stream through as multipart/x-mixed-replace,
// which an <img> shows; the newest JPEG goes out at once on join. The
// stream ends (the image freezes) when the stream does.
func (s *Service) ServeMJPEG(w http.ResponseWriter, r *http.Request, c token.Claims) error {
	if c.Quality != "mjpeg" {
		return errorf(http.StatusBadRequest, "quality %s is not MJPEG: use WHEP or the fMP4 WebSocket", c.Quality)
	}
	v, err := s.newViewer(c, "mjpeg", newID("lv"))
	if err != nil {
		return err
	}
	t, err := v.ready(r.Context())
	if err != nil {
		return err
	}
	if t.codec != proto.CodecMJPEG {
		v.end("not MJPEG")
		return errorf(http.StatusConflict, "camera's mjpeg stream carries %s", codecLabel(t.codec))
	}
	// The server's timeouts are for API requests; this answer lasts as long
	// as the viewer watches, each write bounded on its own.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	mw := multipart.NewWriter(w)
	h := w.Header()
	h.Set("Content-Type", "multipart/x-mixed-replace; boundary="+mw.Boundary())
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	v.t = &mjpegOut{mw: mw, rc: rc}
	go func() {
		<-r.Context().Done()
		v.end("viewer left")
	}()
	v.run()
	return nil
}

type mjpegOut struct {
	mw *multipart.Writer
	rc *http.ResponseController
}

func (o *mjpegOut) setTrack(*trackInfo) error { return nil }

func (o *mjpegOut) writeFrame(f *frame, i int, burst []*frame) (int, error) {
	if burst != nil && i != len(burst)-1 {
		return 0, nil // JPEGs stand alone: only the newest matters
	}
	_ = o.rc.SetWriteDeadline(time.Now().Add(viewerWriteTimeout))
	part, err := o.mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":   {"image/jpeg"},
		"Content-Length": {strconv.Itoa(len(f.payload))},
	})
	if err != nil {
		return 0, err
	}
	if _, err := part.Write(f.payload); err != nil {
		return 0, err
	}
	if err := o.rc.Flush(); err != nil {
		return 0, fmt.Errorf("flush: %w", err)
	}
	return len(f.payload), nil
}

func (o *mjpegOut) state(string, string) {}

func (o *mjpegOut) finish(string) {
	_ = o.rc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = o.mw.Close()
}
