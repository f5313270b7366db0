package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/httpauth"
	"github.com/zipnvr/zipnvr/hubd/internal/media"
	"github.com/zipnvr/zipnvr/pkg/camera"
)

// MaxJPEGBytes bounds one frame: a 4K JPEG at high quality is ~3 MB.
const MaxJPEGBytes = 8 << 20

// MJPEGConfig configures an MJPEG-over-HTTP source.
type MJPEGConfig struct {
	URL *url.URL // credentials as userinfo are used for Basic/Digest and stripped from the request
	// ReadTimeout ends a session that receives no frame for this long.
	ReadTimeout time.Duration
	Logger      *slog.Logger
}

// MJPEG pulls a multipart/x-mixed-replace JPEG stream.
type MJPEG struct {
	cfg MJPEGConfig
	log *slog.Logger
}

// NewMJPEG returns an MJPEG source.
func NewMJPEG(cfg MJPEGConfig) *MJPEG {
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &MJPEG{cfg: cfg, log: cfg.Logger}
}

// Run implements Source.
func (m *MJPEG) Run(ctx context.Context, sink Sink) error {
	u := *m.cfg.URL
	user, pass := "", ""
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("MJPEG request: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: m.cfg.ReadTimeout}}
	defer client.CloseIdleConnections()
	resp, err := httpauth.Do(client, req, user, pass)
	if err != nil {
		if errors.Is(err, httpauth.ErrUnauthorized) {
			return fmt.Errorf("GET %s: %w: %v", camera.LogURL(&u), ErrAuth, err)
		}
		return fmt.Errorf("GET %s: %w", camera.LogURL(&u), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", camera.LogURL(&u), resp.Status)
	}
	mr, err := NewMultipartReader(resp.Header.Get("Content-Type"), resp.Body)
	if err != nil {
		return fmt.Errorf("MJPEG stream %s: %w", camera.LogURL(&u), err)
	}

	// A watchdog closes the body when frames stop: Read has no deadline.
	alive := make(chan struct{}, 1)
	go func() {
		t := time.NewTimer(m.cfg.ReadTimeout)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-alive:
				t.Reset(m.cfg.ReadTimeout)
			case <-t.C:
				m.log.Warn("MJPEG camera sent no frame in time: reconnecting", "timeout", m.cfg.ReadTimeout)
				cancel()
				return
			}
		}
	}()

	sink.Track(media.Track{Codec: media.MJPEG})
	m.log.Info("camera connected", "url", camera.LogURL(&u), "codec", media.MJPEG)
	var start time.Time
	for {
		part, err := mr.Next()
		if err != nil {
			if parent.Err() != nil {
				return nil // stopped from outside; the watchdog's cancel is a failure
			}
			return fmt.Errorf("MJPEG stream: %w", err)
		}
		now := time.Now()
		w, h, err := JPEGSize(part)
		if err != nil {
			m.log.Debug("skipping a part that is not a JPEG", "err", err)
			continue
		}
		select {
		case alive <- struct{}{}:
		default:
		}
		if start.IsZero() {
			start = now
		}
		// No media clock in MJPEG: arrival time on the monotonic clock is it.
		ts := int64(now.Sub(start)) * media.ClockRate / int64(time.Second)
		sink.Frame(&media.Frame{DTS: ts, PTS: ts, AU: [][]byte{part}, RandomAccess: true, Received: now, Width: w, Height: h})
	}
}

// MultipartReader reads the parts of a multipart/x-mixed-replace stream. It
// is lenient where cameras are sloppy (a boundary given with or without its
// leading dashes, missing Content-Length) and strict on sizes.
type MultipartReader struct {
	r        *bufio.Reader
	boundary []byte // "--" + boundary
	// atPart: the boundary line was consumed while reading a part without
	// Content-Length, so the next part's headers come next.
	atPart bool
	// done: the closing boundary was consumed after the last part.
	done bool
}

// NewMultipartReader checks the Content-Type and returns a reader.
func NewMultipartReader(contentType string, r io.Reader) (*MultipartReader, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("content type %q: %w", contentType, err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return nil, fmt.Errorf("content type %q is not multipart", mt)
	}
	b := strings.TrimPrefix(params["boundary"], "--")
	if strings.Trim(b, "-") == "" || len(b) > 200 { // only dashes would match every "--" line
		return nil, fmt.Errorf("content type %q has no usable boundary", contentType)
	}
	return &MultipartReader{r: bufio.NewReaderSize(r, 64<<10), boundary: []byte("--" + b)}, nil
}

// Next returns the body of the next part.
func (m *MultipartReader) Next() ([]byte, error) {
	// Find the boundary line, skipping preamble or trailing bytes of the
	// previous part (bounded, so garbage cannot keep us reading forever).
	if m.done {
		return nil, io.EOF
	}
	skipped := 0
	for !m.atPart {
		line, err := m.readLine()
		if err != nil {
			return nil, err
		}
		if ok, closing := m.boundaryLine(line); ok {
			if closing {
				m.done = true // what follows is epilogue
				return nil, io.EOF
			}
			break
		}
		skipped += len(line)
		if skipped > 1<<20 {
			return nil, errors.New("no multipart boundary within 1 MiB")
		}
	}
	m.atPart = false
	hdr, err := m.readPartHeader()
	if err != nil {
		return nil, fmt.Errorf("part header: %w", err)
	}
	if cl := hdr.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(strings.TrimSpace(cl))
		if err != nil || n < 0 || n > MaxJPEGBytes {
			return nil, fmt.Errorf("part Content-Length %q out of range (max %d)", cl, MaxJPEGBytes)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(m.r, body); err != nil {
			return nil, fmt.Errorf("part body: %w", err)
		}
		return body, nil
	}
	// No length: read up to the next boundary line.
	var body []byte
	for {
		line, err := m.r.ReadSlice('\n')
		if ok, closing := m.boundaryLine(line); ok {
			// Before the closing boundary, the part is complete: return it.
			m.done, m.atPart = closing, !closing
			return bytes.TrimSuffix(bytes.TrimSuffix(body, []byte("\n")), []byte("\r")), nil
		}
		body = append(body, line...)
		if len(body) > MaxJPEGBytes {
			return nil, fmt.Errorf("part larger than %d bytes", MaxJPEGBytes)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("part body: %w", err)
		}
	}
}

// boundaryLine reports whether line is a delimiter line of this stream and
// whether it is the closing one. Cameras are sloppy with the leading dashes (a
// Content-Type boundary "--frame" is written "--frame" or "----frame"), so any
// run of at least two dashes before the boundary is accepted, in every part.
func (m *MultipartReader) boundaryLine(line []byte) (ok, closing bool) {
	if !bytes.HasPrefix(line, []byte("--")) {
		return false, false
	}
	rest, ok := bytes.CutPrefix(bytes.TrimLeft(line, "-"), bytes.TrimLeft(m.boundary, "-"))
	if !ok {
		return false, false
	}
	return true, bytes.HasPrefix(bytes.TrimSpace(rest), []byte("--"))
}

func (m *MultipartReader) readLine() ([]byte, error) {
	line, err := m.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return line, nil // an overlong line is not a boundary; keep scanning
	}
	return line, err
}

// JPEGSize returns the dimensions of a baseline or progressive JPEG from its
// SOF marker, checking the structure up to it.
func JPEGSize(b []byte) (w, h int, err error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0, 0, errors.New("no JPEG start-of-image marker")
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 0, 0, fmt.Errorf("expected a marker at byte %d", i)
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01 {
			i += 2
			continue
		}
		if marker == 0xD9 || marker == 0xDA {
			return 0, 0, errors.New("no frame header before the image data")
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if n < 2 || i+2+n > len(b) {
			return 0, 0, fmt.Errorf("marker 0x%02X segment of %d bytes overruns the data", marker, n)
		}
		if marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC {
			if n < 7 {
				return 0, 0, errors.New("frame header too short")
			}
			h = int(b[i+5])<<8 | int(b[i+6])
			w = int(b[i+7])<<8 | int(b[i+8])
			if w == 0 || h == 0 {
				return 0, 0, fmt.Errorf("JPEG of %dx%d", w, h)
			}
			return w, h, nil
		}
		i += 2 + n
	}
	return 0, 0, errors.New("JPEG truncated before its frame header")
}

// maxPartHeader bounds one part's headers: a camera (or whatever answers at
// its address) cannot make hubd buffer without end.
const maxPartHeader = 16 << 10

func (m *MultipartReader) readPartHeader() (textproto.MIMEHeader, error) {
	hdr := textproto.MIMEHeader{}
	total := 0
	for {
		line, err := m.r.ReadSlice('\n')
		total += len(line)
		if errors.Is(err, bufio.ErrBufferFull) || total > maxPartHeader {
			return nil, fmt.Errorf("part header larger than %d bytes", maxPartHeader)
		}
		if err != nil {
			return nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return hdr, nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if k = bytes.TrimSpace(k); !ok || len(k) == 0 {
			return nil, fmt.Errorf("malformed part header line %q", clip(line))
		}
		hdr.Add(textproto.CanonicalMIMEHeaderKey(string(k)), string(bytes.TrimSpace(v)))
	}
}

func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
