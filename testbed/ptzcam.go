package testbed

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// PTZRequest is one request a PTZ test camera received, exactly.
type PTZRequest struct {
	Time   time.Time
	Method string
	Path   string
	Query  string // raw query
	Action string // SOAP: the local name of the Body's first element
	Body   string
	// AuthScheme is the scheme of the Authorization header ("Digest",
	// "Basic", or "" when there was none).
	AuthScheme string
	// Authorized: the request passed the camera's checks (HTTP auth, the
	// query credentials, or a valid WS-Security digest).
	Authorized bool
}

// PTZCamera is a camera stand-in that records every request: an ONVIF
// device (SOAP over HTTP, WS-Discovery over UDP) or a vendor's CGI API.
type PTZCamera struct {
	URL        string // http://127.0.0.1:PORT
	User, Pass string
	// DeviceURL is the ONVIF device service; DiscoveryAddr the UDP
	// address that answers WS-Discovery probes; Endpoint the device's
	// urn:uuid address.
	DeviceURL, DiscoveryAddr, Endpoint string
	Stop                               func()

	mu   sync.Mutex
	reqs []PTZRequest
}

// Requests returns what the camera received so far, in order.
func (c *PTZCamera) Requests() []PTZRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]PTZRequest(nil), c.reqs...)
}

// Authorized returns the authorized requests only (a Digest exchange
// starts with a refused one).
func (c *PTZCamera) Authorized() []PTZRequest {
	var out []PTZRequest
	for _, r := range c.Requests() {
		if r.Authorized {
			out = append(out, r)
		}
	}
	return out
}

// Reset forgets the requests so far.
func (c *PTZCamera) Reset() {
	c.mu.Lock()
	c.reqs = nil
	c.mu.Unlock()
}

func (c *PTZCamera) record(r PTZRequest) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r)
	c.mu.Unlock()
}

func serveHTTP(t testing.TB, h http.Handler) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close(); <-done }
}

// VendorCameraOptions configures VendorCamera.
type VendorCameraOptions struct {
	// Auth is "basic", "digest" (MD5, qop=auth) or "query" (Foscam: usr
	// and pwd in the query); default digest.
	Auth       string
	User, Pass string // default admin/secret
	// Status answers every authorized request with this HTTP status (default 200).
	Status int
}

// VendorCamera serves any path and records each request, answering as the
// vendor would: Foscam's CGI_Result, Hikvision's ResponseStatus, Dahua's OK.
func VendorCamera(t testing.TB, o VendorCameraOptions) *PTZCamera {
	t.Helper()
	if o.User == "" {
		o.User, o.Pass = "admin", "secret"
	}
	if o.Auth == "" {
		o.Auth = "digest"
	}
	auth := &httpAuth{mode: o.Auth, user: o.User, pass: o.Pass, realm: "testbed vendor camera", key: make([]byte, 32)}
	_, _ = rand.Read(auth.key)
	c := &PTZCamera{User: o.User, Pass: o.Pass}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		req := PTZRequest{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body), AuthScheme: authScheme(r)}
		ok := true
		if o.Auth == "query" {
			q := r.URL.Query()
			ok = eq(q.Get("usr"), o.User) && eq(q.Get("pwd"), o.Pass)
		} else {
			ok = auth.check(w, r)
		}
		req.Authorized = ok
		c.record(req)
		if !ok {
			if o.Auth == "query" {
				_, _ = io.WriteString(w, "<CGI_Result><result>-2</result></CGI_Result>")
			}
			return
		}
		if o.Status != 0 && o.Status != http.StatusOK {
			http.Error(w, "refused", o.Status)
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/cgi-bin/CGIProxy.fcgi"):
			_, _ = io.WriteString(w, "<CGI_Result><result>0</result></CGI_Result>")
		case strings.HasPrefix(r.URL.Path, "/ISAPI/"):
			w.Header().Set("Content-Type", "application/xml")
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ResponseStatus version="2.0"><statusCode>1</statusCode><statusString>OK</statusString></ResponseStatus>`)
		case strings.HasPrefix(r.URL.Path, "/cgi-bin/ptz.cgi"):
			_, _ = io.WriteString(w, "OK\r\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	var stop func()
	c.URL, stop = serveHTTP(t, h)
	c.Stop = stop
	t.Cleanup(stop)
	return c
}

// ONVIFCameraOptions configures ONVIFCamera.
type ONVIFCameraOptions struct {
	User, Pass string // WS-Security UsernameToken; default admin/secret
	// HTTPDigest also requires HTTP Digest on every SOAP request.
	HTTPDigest bool
	// StreamURLs are the RTSP URIs of the profiles, largest first (one
	// profile each: 1280x720, 640x360, 320x180...).
	StreamURLs  []string
	SnapshotURL string
	PTZ         bool   // a PTZ service and a PTZ configuration on the first profile
	Name        string // the onvif://www.onvif.org/name/ scope
	// ClockOffset is how far the camera's clock is ahead of ours: a
	// UsernameToken must be created within 5 min of the camera's time.
	ClockOffset time.Duration
	// AdvertiseHost is the host the camera puts in its service addresses
	// (a camera behind NAT gives an address that does not answer).
	AdvertiseHost string
}

// ONVIFCamera is an ONVIF device stand-in: device, media and PTZ services
// over SOAP 1.2 with WS-Security digest checked for real, and a
// WS-Discovery responder on a UDP port of 127.0.0.1. Unauthenticated
// requests get a SOAP NotAuthorized fault.
func ONVIFCamera(t testing.TB, o ONVIFCameraOptions) *PTZCamera {
	t.Helper()
	if o.User == "" {
		o.User, o.Pass = "admin", "secret"
	}
	if o.Name == "" {
		o.Name = "Testbed ONVIF"
	}
	auth := &httpAuth{mode: "digest", user: o.User, pass: o.Pass, realm: "testbed onvif", key: make([]byte, 32)}
	_, _ = rand.Read(auth.key)
	c := &PTZCamera{User: o.User, Pass: o.Pass, Endpoint: "urn:uuid:" + NewUUID()}
	var base string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		req := PTZRequest{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body), AuthScheme: authScheme(r)}
		env, err := parseSOAP(body)
		if err != nil || r.Method != http.MethodPost {
			c.record(req)
			soapFault(w, http.StatusBadRequest, "s:Sender", "", "not a SOAP request")
			return
		}
		req.Action = env.action
		if o.HTTPDigest && !auth.check(w, r) {
			c.record(req)
			return
		}
		now := time.Now().Add(o.ClockOffset)
		if env.action == "GetSystemDateAndTime" {
			req.Authorized = true
			c.record(req)
			u := now.UTC()
			soapOK(w, fmt.Sprintf(`<tds:GetSystemDateAndTimeResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:UTCDateTime><tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute><tt:Second>%d</tt:Second></tt:Time><tt:Date><tt:Year>%d</tt:Year><tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`,
				u.Hour(), u.Minute(), u.Second(), u.Year(), int(u.Month()), u.Day()))
			return
		}
		if !env.digestOK(o.User, o.Pass, now) {
			c.record(req)
			soapFault(w, http.StatusBadRequest, "s:Sender", "ter:NotAuthorized", "Sender not authorized")
			return
		}
		req.Authorized = true
		c.record(req)
		adv := base
		if o.AdvertiseHost != "" {
			adv = "http://" + o.AdvertiseHost
		}
		switch r.URL.Path + " " + env.action {
		case "/onvif/device_service GetCapabilities":
			ptz := ""
			if o.PTZ {
				ptz = `<tt:PTZ><tt:XAddr>` + adv + `/onvif/ptz_service</tt:XAddr></tt:PTZ>`
			}
			soapOK(w, `<tds:GetCapabilitiesResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><tds:Capabilities>`+
				`<tt:Device><tt:XAddr>`+adv+`/onvif/device_service</tt:XAddr></tt:Device><tt:Media><tt:XAddr>`+adv+`/onvif/media_service</tt:XAddr></tt:Media>`+ptz+
				`</tds:Capabilities></tds:GetCapabilitiesResponse>`)
		case "/onvif/media_service GetProfiles":
			var b strings.Builder
			b.WriteString(`<trt:GetProfilesResponse xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">`)
			w0, h0 := 1280, 720
			for i := range o.StreamURLs {
				fmt.Fprintf(&b, `<trt:Profiles token="prof%d" fixed="true"><tt:Name>Profile %d</tt:Name>`+
					`<tt:VideoEncoderConfiguration token="enc%d"><tt:Name>enc</tt:Name><tt:Encoding>H264</tt:Encoding>`+
					`<tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height></tt:Resolution></tt:VideoEncoderConfiguration>`, i, i, i, w0>>i, h0>>i)
				if o.PTZ && i == 0 {
					b.WriteString(`<tt:PTZConfiguration token="ptz0"><tt:Name>PTZ</tt:Name><tt:NodeToken>node0</tt:NodeToken></tt:PTZConfiguration>`)
				}
				b.WriteString(`</trt:Profiles>`)
			}
			b.WriteString(`</trt:GetProfilesResponse>`)
			soapOK(w, b.String())
		case "/onvif/media_service GetStreamUri", "/onvif/media_service GetSnapshotUri":
			tok := env.text("ProfileToken")
			var idx int
			if _, err := fmt.Sscanf(tok, "prof%d", &idx); err != nil || idx < 0 || idx >= len(o.StreamURLs) {
				soapFault(w, http.StatusBadRequest, "s:Sender", "ter:NoProfile", "no such profile")
				return
			}
			uri := o.StreamURLs[idx]
			if env.action == "GetSnapshotUri" {
				if o.SnapshotURL == "" {
					soapFault(w, http.StatusBadRequest, "s:Receiver", "ter:ActionNotSupported", "no snapshot")
					return
				}
				uri = o.SnapshotURL
			}
			soapOK(w, `<trt:`+env.action+`Response xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><trt:MediaUri><tt:Uri>`+
				html.EscapeString(uri)+`</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:`+env.action+`Response>`)
		case "/onvif/ptz_service ContinuousMove", "/onvif/ptz_service Stop", "/onvif/ptz_service GotoPreset", "/onvif/ptz_service GotoHomePosition":
			if !o.PTZ {
				soapFault(w, http.StatusBadRequest, "s:Receiver", "ter:ActionNotSupported", "no PTZ")
				return
			}
			if env.text("ProfileToken") != "prof0" {
				soapFault(w, http.StatusBadRequest, "s:Sender", "ter:NoProfile", "no such profile")
				return
			}
			soapOK(w, `<tptz:`+env.action+`Response xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl"/>`)
		default:
			soapFault(w, http.StatusBadRequest, "s:Receiver", "ter:ActionNotSupported", env.action+" not supported here")
		}
	})
	var stop func()
	base, stop = serveHTTP(t, h)
	c.URL = base
	c.DeviceURL = base + "/onvif/device_service"

	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("testbed: ONVIFCamera: %v", err)
	}
	c.DiscoveryAddr = udp.LocalAddr().String()
	udpDone := make(chan struct{})
	go func() {
		defer close(udpDone)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := udp.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var probe struct {
				MessageID string `xml:"Header>MessageID"`
				Types     string `xml:"Body>Probe>Types"`
			}
			if xml.Unmarshal(buf[:n], &probe) != nil || !strings.Contains(probe.Types, "NetworkVideoTransmitter") {
				continue
			}
			answer := `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">` +
				`<s:Header><a:MessageID>uuid:` + NewUUID() + `</a:MessageID><a:RelatesTo>` + html.EscapeString(strings.TrimSpace(probe.MessageID)) + `</a:RelatesTo>` +
				`<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action></s:Header>` +
				`<s:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>` + c.Endpoint + `</a:Address></a:EndpointReference>` +
				`<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/` +
				strings.ReplaceAll(html.EscapeString(o.Name), " ", "%20") + ` onvif://www.onvif.org/hardware/testbed</d:Scopes>` +
				`<d:XAddrs>` + c.DeviceURL + `</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>`
			_, _ = udp.WriteToUDP([]byte(answer), from)
		}
	}()
	c.Stop = stopper(stop, func() { udp.Close(); <-udpDone })
	t.Cleanup(c.Stop)
	return c
}

type soapEnv struct {
	action string
	raw    []byte
	sec    struct {
		Username string `xml:"Header>Security>UsernameToken>Username"`
		Password struct {
			Type  string `xml:"Type,attr"`
			Value string `xml:",chardata"`
		} `xml:"Header>Security>UsernameToken>Password"`
		Nonce   string `xml:"Header>Security>UsernameToken>Nonce"`
		Created string `xml:"Header>Security>UsernameToken>Created"`
	}
}

func parseSOAP(body []byte) (*soapEnv, error) {
	env := &soapEnv{raw: body}
	if err := xml.Unmarshal(body, &env.sec); err != nil {
		return nil, err
	}
	var b struct {
		Body struct {
			Inner []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(body, &b); err != nil || len(b.Body.Inner) == 0 {
		return nil, fmt.Errorf("no body element")
	}
	env.action = b.Body.Inner[0].XMLName.Local
	return env, nil
}

// text returns the text of the first element named local in the body.
func (e *soapEnv) text(local string) string {
	d := xml.NewDecoder(strings.NewReader(string(e.raw)))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == local {
			var s string
			if d.DecodeElement(&s, &se) == nil {
				return strings.TrimSpace(s)
			}
			return ""
		}
	}
}

// digestOK checks the UsernameToken: PasswordDigest = Base64(SHA-1(nonce +
// created + password)), created within 5 minutes of the camera's clock.
func (e *soapEnv) digestOK(user, pass string, now time.Time) bool {
	s := e.sec
	if !eq(s.Username, user) || !strings.HasSuffix(s.Password.Type, "#PasswordDigest") {
		return false
	}
	nonce, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Nonce))
	if err != nil || len(nonce) == 0 {
		return false
	}
	created, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s.Created))
	if err != nil || created.Sub(now).Abs() > 5*time.Minute {
		return false
	}
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(strings.TrimSpace(s.Created)))
	h.Write([]byte(pass))
	return eq(strings.TrimSpace(s.Password.Value), base64.StdEncoding.EncodeToString(h.Sum(nil)))
}

func soapOK(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>`+body+`</s:Body></s:Envelope>`)
}

func soapFault(w http.ResponseWriter, status int, code, subcode, reason string) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.WriteHeader(status)
	sub := ""
	if subcode != "" {
		sub = `<s:Subcode><s:Value>` + subcode + `</s:Value></s:Subcode>`
	}
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><s:Body><s:Fault>`+
		`<s:Code><s:Value>`+code+`</s:Value>`+sub+`</s:Code><s:Reason><s:Text xml:lang="en">`+html.EscapeString(reason)+`</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`)
}

func authScheme(r *http.Request) string {
	s, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return s
}
