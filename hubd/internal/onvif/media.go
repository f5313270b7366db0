package onvif

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Services are the service addresses of a device.
type Services struct {
	Media string // media service XAddr
	PTZ   string // PTZ service XAddr; "" without PTZ
}

// Profile is one media profile: an encoder configuration (stream) and,
// when the camera moves, a PTZ configuration.
type Profile struct {
	Token         string
	Name          string
	Encoding      string // H264, H265, JPEG
	Width, Height int
	PTZ           bool
}

// Services asks GetCapabilities once and remembers the answer.
func (c *Client) Services(ctx context.Context) (Services, error) {
	c.mu.Lock()
	s := c.services
	c.mu.Unlock()
	if s != nil {
		return *s, nil
	}
	var r struct {
		Media string `xml:"GetCapabilitiesResponse>Capabilities>Media>XAddr"`
		PTZ   string `xml:"GetCapabilitiesResponse>Capabilities>PTZ>XAddr"`
	}
	body := `<tds:GetCapabilities xmlns:tds="` + nsDevice + `"><tds:Category>All</tds:Category></tds:GetCapabilities>`
	if err := c.call(ctx, c.DeviceURL, nsDevice+"/GetCapabilities", body, &r); err != nil {
		return Services{}, err
	}
	svc := Services{Media: c.sameHost(strings.TrimSpace(r.Media)), PTZ: c.sameHost(strings.TrimSpace(r.PTZ))}
	if svc.Media == "" {
		svc.Media = c.DeviceURL // many cameras serve every service at one address
	}
	c.mu.Lock()
	c.services = &svc
	c.mu.Unlock()
	return svc, nil
}

// sameHost keeps a service address on the host we reached the device at:
// cameras behind NAT or with a second interface advertise addresses that do
// not answer from here. Only the path (and port) of the advertised one is
// kept when its host differs.
func (c *Client) sameHost(xaddr string) string {
	if xaddr == "" {
		return ""
	}
	adv, err := url.Parse(xaddr)
	if err != nil || adv.Host == "" {
		return ""
	}
	dev, err := url.Parse(c.DeviceURL)
	if err != nil || dev.Hostname() == adv.Hostname() {
		return xaddr
	}
	port := adv.Port()
	if port == "" {
		port = dev.Port()
	}
	switch host := dev.Hostname(); {
	case port != "":
		adv.Host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		adv.Host = "[" + host + "]"
	default:
		adv.Host = host
	}
	adv.Scheme = dev.Scheme
	return adv.String()
}

// Profiles lists the media profiles.
func (c *Client) Profiles(ctx context.Context) ([]Profile, error) {
	svc, err := c.Services(ctx)
	if err != nil {
		return nil, err
	}
	var r struct {
		Profiles []struct {
			Token string `xml:"token,attr"`
			Name  string `xml:"Name"`
			Video struct {
				Encoding   string `xml:"Encoding"`
				Resolution struct {
					Width  int `xml:"Width"`
					Height int `xml:"Height"`
				} `xml:"Resolution"`
			} `xml:"VideoEncoderConfiguration"`
			PTZ *struct{} `xml:"PTZConfiguration"`
		} `xml:"GetProfilesResponse>Profiles"`
	}
	if err := c.call(ctx, svc.Media, nsMedia+"/GetProfiles", `<trt:GetProfiles xmlns:trt="`+nsMedia+`"/>`, &r); err != nil {
		return nil, err
	}
	var out []Profile
	for _, p := range r.Profiles {
		if p.Token == "" {
			continue
		}
		out = append(out, Profile{Token: p.Token, Name: p.Name, Encoding: strings.ToUpper(p.Video.Encoding),
			Width: p.Video.Resolution.Width, Height: p.Video.Resolution.Height, PTZ: p.PTZ != nil})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("GetProfiles: the camera has no media profile")
	}
	return out, nil
}

// StreamURI asks the RTSP URI of a profile (RTP unicast over RTSP).
func (c *Client) StreamURI(ctx context.Context, profile string) (string, error) {
	svc, err := c.Services(ctx)
	if err != nil {
		return "", err
	}
	var r struct {
		URI string `xml:"GetStreamUriResponse>MediaUri>Uri"`
	}
	body := `<trt:GetStreamUri xmlns:trt="` + nsMedia + `" xmlns:tt="` + nsSchema + `"><trt:StreamSetup>` +
		`<tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport>` +
		`</trt:StreamSetup><trt:ProfileToken>` + esc(profile) + `</trt:ProfileToken></trt:GetStreamUri>`
	if err := c.call(ctx, svc.Media, nsMedia+"/GetStreamUri", body, &r); err != nil {
		return "", err
	}
	return checkURI("GetStreamUri", r.URI, "rtsp", "rtsps")
}

// SnapshotURI asks the JPEG snapshot URI of a profile.
func (c *Client) SnapshotURI(ctx context.Context, profile string) (string, error) {
	svc, err := c.Services(ctx)
	if err != nil {
		return "", err
	}
	var r struct {
		URI string `xml:"GetSnapshotUriResponse>MediaUri>Uri"`
	}
	body := `<trt:GetSnapshotUri xmlns:trt="` + nsMedia + `"><trt:ProfileToken>` + esc(profile) + `</trt:ProfileToken></trt:GetSnapshotUri>`
	if err := c.call(ctx, svc.Media, nsMedia+"/GetSnapshotUri", body, &r); err != nil {
		return "", err
	}
	return checkURI("GetSnapshotUri", r.URI, "http", "https")
}

func checkURI(op, raw string, schemes ...string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%s: camera answered an unusable URI %q", op, clipURI(raw))
	}
	for _, s := range schemes {
		if strings.EqualFold(u.Scheme, s) {
			return raw, nil
		}
	}
	return "", fmt.Errorf("%s: URI scheme %q, want %s", op, u.Scheme, strings.Join(schemes, " or "))
}

func clipURI(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
