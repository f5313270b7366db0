package onvif

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"
)

// DiscoveryAddress is the WS-Discovery multicast group and port.
const DiscoveryAddress = "239.255.255.250:3702"

// Device is one ProbeMatch: a device that answered a probe.
type Device struct {
	// Endpoint is the device's stable address (urn:uuid:...): it survives
	// IP changes, so camera ids derive from it.
	Endpoint string
	XAddrs   []string // device service URLs
	Scopes   []string // onvif://www.onvif.org/name/..., /hardware/...
	Types    []string
}

// Name returns the scope name (onvif://www.onvif.org/name/<name>), unescaped.
func (d Device) Name() string {
	for _, s := range d.Scopes {
		if rest, ok := strings.CutPrefix(s, "onvif://www.onvif.org/name/"); ok {
			if n, err := url.PathUnescape(rest); err == nil {
				return n
			}
			return rest
		}
	}
	return ""
}

// ProbeMessage builds a WS-Discovery Probe for NetworkVideoTransmitter.
func ProbeMessage(messageID string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` +
		`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" ` +
		`xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">` +
		`<s:Header><a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>` +
		`<a:MessageID>` + esc(messageID) + `</a:MessageID>` +
		`<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>` +
		`<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>` +
		`<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>`)
}

// ParseProbeMatches reads a ProbeMatches message. relatesTo, when not empty,
// must match the answer's RelatesTo (an answer to someone else's probe is
// not ours).
func ParseProbeMatches(data []byte, relatesTo string) ([]Device, error) {
	var env struct {
		RelatesTo string `xml:"Header>RelatesTo"`
		Matches   []struct {
			Address string `xml:"EndpointReference>Address"`
			Types   string `xml:"Types"`
			Scopes  string `xml:"Scopes"`
			XAddrs  string `xml:"XAddrs"`
		} `xml:"Body>ProbeMatches>ProbeMatch"`
	}
	if err := xml.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("not a WS-Discovery message: %w", err)
	}
	if relatesTo != "" && strings.TrimSpace(env.RelatesTo) != relatesTo {
		return nil, errors.New("answer to another probe")
	}
	var out []Device
	for _, m := range env.Matches {
		d := Device{Endpoint: strings.TrimSpace(m.Address), Scopes: strings.Fields(m.Scopes), Types: strings.Fields(m.Types)}
		for _, x := range strings.Fields(m.XAddrs) {
			if u, err := url.Parse(x); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
				d.XAddrs = append(d.XAddrs, x)
			}
		}
		if d.Endpoint == "" || len(d.XAddrs) == 0 {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// Probe sends one WS-Discovery probe to addr (the multicast group, or a
// camera's host:port for a directed probe) and collects the answers for
// wait. Devices are returned once each, by endpoint address.
func Probe(ctx context.Context, addr string, wait time.Duration) ([]Device, error) {
	dst, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("WS-Discovery address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return nil, fmt.Errorf("WS-Discovery socket: %w", err)
	}
	defer conn.Close()
	id := "uuid:" + newUUID()
	if _, err := conn.WriteToUDP(ProbeMessage(id), dst); err != nil {
		return nil, fmt.Errorf("WS-Discovery probe to %s: %w", addr, err)
	}
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	found := map[string]Device{}
	buf := make([]byte, 64<<10)
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			break // deadline: done collecting
		}
		devs, err := ParseProbeMatches(buf[:n], id)
		if err != nil {
			continue // noise on the port, or another probe's answer
		}
		for _, d := range devs {
			found[d.Endpoint] = d
		}
	}
	out := make([]Device, 0, len(found))
	for _, d := range found {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out, ctx.Err()
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
