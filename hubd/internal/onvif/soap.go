// Package onvif speaks the small part of ONVIF hubd needs: WS-Discovery to
// find cameras, the media service for stream and snapshot URIs, and PTZ,
// over SOAP 1.2 with a WS-Security UsernameToken digest.
package onvif

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/zipnvr/zipnvr/hubd/internal/httpauth"
)

// Namespaces of the services hubd calls.
const (
	nsSOAP   = "http://www.w3.org/2003/05/soap-envelope"
	nsWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	nsDevice = "http://www.onvif.org/ver10/device/wsdl"
	nsMedia  = "http://www.onvif.org/ver10/media/wsdl"
	nsPTZ    = "http://www.onvif.org/ver20/ptz/wsdl"
	nsSchema = "http://www.onvif.org/ver10/schema"

	passwordDigest = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	base64Binary   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// MaxResponseBytes bounds a SOAP answer (a profile list is a few KiB).
const MaxResponseBytes = 1 << 20

// ErrUnauthorized: the camera refused the credentials.
var ErrUnauthorized = errors.New("ONVIF camera refused the credentials")

// Fault is a SOAP fault the camera answered.
type Fault struct {
	Code, Subcode, Reason string
}

func (f *Fault) Error() string {
	s := "SOAP fault " + f.Code
	if f.Subcode != "" {
		s += "/" + f.Subcode
	}
	if f.Reason != "" {
		s += ": " + f.Reason
	}
	return s
}

// Client calls one ONVIF device.
type Client struct {
	// DeviceURL is the device service (the XAddr discovery gives, usually
	// http://ip/onvif/device_service).
	DeviceURL          string
	Username, Password string
	HTTP               *http.Client // nil: 10 s timeout
	// Now is the clock for WS-Security timestamps (nil: time.Now); the
	// camera's clock offset, learned from GetSystemDateAndTime, is added.
	Now func() time.Time

	mu       sync.Mutex
	offset   time.Duration
	timeSync bool
	services *Services
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// SecurityHeader builds the WS-Security UsernameToken with a password
// digest: Base64(SHA-1(nonce + created + password)). The password itself
// never goes on the wire.
func SecurityHeader(user, pass string, created time.Time, nonce []byte) string {
	ts := created.UTC().Format("2006-01-02T15:04:05.000Z")
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(ts))
	h.Write([]byte(pass))
	digest := base64.StdEncoding.EncodeToString(h.Sum(nil))
	var b strings.Builder
	fmt.Fprintf(&b, `<wsse:Security s:mustUnderstand="1" xmlns:wsse="%s" xmlns:wsu="%s">`, nsWSSE, nsWSU)
	b.WriteString(`<wsse:UsernameToken><wsse:Username>`)
	xmlEscape(&b, user)
	fmt.Fprintf(&b, `</wsse:Username><wsse:Password Type="%s">%s</wsse:Password>`, passwordDigest, digest)
	fmt.Fprintf(&b, `<wsse:Nonce EncodingType="%s">%s</wsse:Nonce>`, base64Binary, base64.StdEncoding.EncodeToString(nonce))
	fmt.Fprintf(&b, `<wsu:Created>%s</wsu:Created></wsse:UsernameToken></wsse:Security>`, ts)
	return b.String()
}

func xmlEscape(b *strings.Builder, s string) {
	_ = xml.EscapeText(b, []byte(s))
}

// esc returns s escaped for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	xmlEscape(&b, s)
	return b.String()
}

// envelope wraps body (already XML) in a SOAP 1.2 envelope, with the
// security header when there is a user.
func (c *Client) envelope(body string, auth bool) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="%s"><s:Header>`, nsSOAP)
	if auth && c.Username != "" {
		nonce := make([]byte, 16)
		_, _ = rand.Read(nonce)
		b.WriteString(SecurityHeader(c.Username, c.Password, c.now(), nonce))
	}
	b.WriteString(`</s:Header><s:Body>`)
	b.WriteString(body)
	b.WriteString(`</s:Body></s:Envelope>`)
	return []byte(b.String())
}

func (c *Client) now() time.Time {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return now().Add(c.offset)
}

// call posts a SOAP request to endpoint and decodes the Body into out.
// action is the SOAP action URI (sent in the Content-Type, as SOAP 1.2 says).
func (c *Client) call(ctx context.Context, endpoint, action, body string, out any) error {
	return c.callAuth(ctx, endpoint, action, body, true, out)
}

func (c *Client) callAuth(ctx context.Context, endpoint, action, body string, auth bool, out any) error {
	if auth {
		c.syncTime(ctx)
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("ONVIF endpoint %q is not an http(s) URL", endpoint)
	}
	u.User = nil
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(c.envelope(body, auth)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="`+action+`"`)
	// Some cameras want HTTP Digest on top of (or instead of) WS-Security:
	// answer a 401 challenge with the same credentials, body replayed.
	hc := *c.httpClient()
	hc.Transport = httpauth.ReplayBody{Next: hc.Transport}
	resp, err := httpauth.Do(&hc, req, c.Username, c.Password)
	if errors.Is(err, httpauth.ErrUnauthorized) {
		return fmt.Errorf("%s: %w (HTTP 401)", actionName(action), ErrUnauthorized)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", actionName(action), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", actionName(action), err)
	}
	if len(data) > MaxResponseBytes {
		return fmt.Errorf("%s: answer larger than %d bytes", actionName(action), MaxResponseBytes)
	}
	if err := decodeEnvelope(data, out); err != nil {
		var f *Fault
		if errors.As(err, &f) && (strings.Contains(f.Subcode, "NotAuthorized") || strings.Contains(f.Subcode, "FailedAuthentication")) {
			return fmt.Errorf("%s: %w: %v", actionName(action), ErrUnauthorized, f)
		}
		return fmt.Errorf("%s: %w", actionName(action), err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: HTTP %s", actionName(action), resp.Status)
	}
	return nil
}

func actionName(action string) string {
	if i := strings.LastIndexByte(action, '/'); i >= 0 {
		return action[i+1:]
	}
	return action
}

// decodeEnvelope decodes a SOAP envelope's Body into out, or returns its fault.
func decodeEnvelope(data []byte, out any) error {
	var env struct {
		Body struct {
			Inner []byte `xml:",innerxml"`
			Fault *struct {
				Code struct {
					Value   string `xml:"Value"`
					Subcode struct {
						Value string `xml:"Value"`
					} `xml:"Subcode"`
				} `xml:"Code"`
				Reason struct {
					Text string `xml:"Text"`
				} `xml:"Reason"`
				FaultString string `xml:"faultstring"` // SOAP 1.1
				FaultCode   string `xml:"faultcode"`
			} `xml:"Fault"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("answer is not a SOAP envelope: %w", err)
	}
	if f := env.Body.Fault; f != nil {
		flt := &Fault{Code: f.Code.Value, Subcode: f.Code.Subcode.Value, Reason: strings.TrimSpace(f.Reason.Text)}
		if flt.Code == "" {
			flt.Code, flt.Reason = f.FaultCode, strings.TrimSpace(f.FaultString)
		}
		return flt
	}
	if out == nil {
		return nil
	}
	if err := xml.Unmarshal([]byte("<Body>"+string(env.Body.Inner)+"</Body>"), out); err != nil {
		return fmt.Errorf("answer body: %w", err)
	}
	return nil
}

// syncTime learns the camera's clock once (GetSystemDateAndTime needs no
// credentials): a UsernameToken whose Created is minutes off is refused by
// many cameras, and cameras' clocks drift.
func (c *Client) syncTime(ctx context.Context) {
	c.mu.Lock()
	done := c.timeSync
	c.timeSync = true
	c.mu.Unlock()
	if done || c.Username == "" {
		return
	}
	var r struct {
		UTC struct {
			Date struct {
				Year, Month, Day int
			} `xml:"Date"`
			Time struct {
				Hour, Minute, Second int
			} `xml:"Time"`
		} `xml:"GetSystemDateAndTimeResponse>SystemDateAndTime>UTCDateTime"`
	}
	if err := c.callAuth(ctx, c.DeviceURL, nsDevice+"/GetSystemDateAndTime", `<tds:GetSystemDateAndTime xmlns:tds="`+nsDevice+`"/>`, false, &r); err != nil {
		return
	}
	d, tm := r.UTC.Date, r.UTC.Time
	if d.Year < 2000 {
		return
	}
	cam := time.Date(d.Year, time.Month(d.Month), d.Day, tm.Hour, tm.Minute, tm.Second, 0, time.UTC)
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if off := cam.Sub(now()); off > 5*time.Second || off < -5*time.Second {
		c.mu.Lock()
		c.offset = off
		c.mu.Unlock()
	}
}
