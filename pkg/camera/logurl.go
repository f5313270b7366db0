package camera

import (
	"net/url"
	"strings"
)

// LogURL is u as it may appear in a log line, an error or an MQTT answer:
// the userinfo password and the values of query parameters that carry
// credentials replaced by "xxxxx". url.URL.Redacted covers only the
// userinfo, yet many cameras take the password in the query (Foscam's
// CGI: ?usr=admin&pwd=secret).
func LogURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	v := *u
	if v.RawQuery != "" {
		q, err := url.ParseQuery(v.RawQuery)
		if err != nil {
			// A query we cannot split may hide a credential anywhere.
			v.RawQuery = "xxxxx"
		} else {
			changed := false
			for k, vals := range q {
				if secretParam(k) {
					for i := range vals {
						vals[i] = "xxxxx"
					}
					changed = true
				}
			}
			if changed {
				v.RawQuery = q.Encode()
			}
		}
	}
	return v.Redacted()
}

// secretParam says whether a query parameter's name is one that cameras
// and their vendors use for a secret (pwd, password, passwd, loginPass,
// token, auth, key, sig...).
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"pw", "pass", "secret", "token", "auth", "sig", "cred"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return n == "key" || strings.HasSuffix(n, "key") || strings.HasSuffix(n, "_key")
}
