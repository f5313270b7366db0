package api

import (
	"regexp"
	"strings"

	"github.com/zipnvr/zipnvr/pkg/camera"
)

// Camera passwords stay on the hub. camera.Camera's JSON drops the Password
// field, the report decoder ignores a "password" key, and relay applies
// camera.Redacted again (hubd does before it sends: a second line for a hub
// that does not), which turns a password written into a template's userinfo
// into the placeholder and drops extra parameters. Relay also masks a
// password in a query (snapshot.cgi?pwd=secret), common on MJPEG and
// snapshot URLs.

var querySecret = regexp.MustCompile(`(?i)([?&;](?:password|passwd|pwd|pass|pw|psw)=)([^&;#]*)`)

const masked = "xxxxx"

// maskQuery masks password values in a URL template's query; placeholders
// (${password}, {{password}}, %password%) are no secret and stay.
func maskQuery(t string) string {
	return querySecret.ReplaceAllStringFunc(t, func(kv string) string {
		sm := querySecret.FindStringSubmatch(kv)
		if strings.Contains(strings.ToLower(sm[2]), "password") {
			return kv
		}
		return sm[1] + masked
	})
}

// redactCamera returns c as relay may keep and show it. The hub's template
// syntax is unknown here: the default one names the placeholder.
func redactCamera(c camera.Camera) camera.Camera {
	c = c.Redacted(camera.DefaultSyntax)
	for _, t := range []*string{&c.Streams.High, &c.Streams.Mid, &c.Streams.Low, &c.Streams.MJPEG,
		&c.Snapshot, &c.AdminURL, &c.Recording} {
		*t = maskQuery(*t)
	}
	return c
}
