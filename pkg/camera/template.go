package camera

import (
	"fmt"
	"net/url"
	"strings"
)

// Syntax is the placeholder syntax of URL templates. Zipato uses ${name}; the
// exact form is unverified on every firmware, so it is configurable.
type Syntax struct {
	Open  string `yaml:"open" json:"open"`
	Close string `yaml:"close" json:"close"`
}

// DefaultSyntax is ${name}.
var DefaultSyntax = Syntax{Open: "${", Close: "}"}

// Validate refuses a syntax that cannot delimit anything.
func (s Syntax) Validate() error {
	if s.Open == "" || s.Close == "" {
		return fmt.Errorf("placeholder open and close must not be empty (got %q and %q)", s.Open, s.Close)
	}
	return nil
}

// urlPart is where in a URL a placeholder stands; it decides the escaping.
type urlPart int

const (
	partUserinfo urlPart = iota
	partHost
	partPath
	partQuery
)

// Expand replaces every placeholder of tmpl with its variable, escaped for the
// part of the URL it stands in, so a password like "p@ss/w:rd" cannot change
// the URL's structure. An unknown or unterminated placeholder is an error.
func (s Syntax) Expand(tmpl string, vars map[string]string) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.Index(rest, s.Open)
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		after := rest[i+len(s.Open):]
		j := strings.Index(after, s.Close)
		if j < 0 {
			return "", fmt.Errorf("unterminated placeholder at %q", truncate(rest[i:], 24))
		}
		name := after[:j]
		val, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("unknown placeholder %s%s%s", s.Open, name, s.Close)
		}
		// The part is decided by the template as written, before this value,
		// plus the rest of the template (an '@' later marks userinfo).
		b.WriteString(escapeFor(partOf(b.String(), after[j+len(s.Close):]), val))
		rest = after[j+len(s.Close):]
	}
}

// partOf classifies the position between prefix and suffix in a URL.
func partOf(prefix, suffix string) urlPart {
	if strings.ContainsAny(prefix, "?") {
		return partQuery
	}
	k := strings.Index(prefix, "://")
	if k < 0 {
		return partPath
	}
	authority := prefix[k+3:]
	if strings.Contains(authority, "/") {
		return partPath
	}
	if strings.Contains(authority, "@") {
		return partHost
	}
	end := strings.IndexAny(suffix, "/?#")
	if end < 0 {
		end = len(suffix)
	}
	if strings.Contains(suffix[:end], "@") {
		return partUserinfo
	}
	return partHost
}

func escapeFor(p urlPart, v string) string {
	switch p {
	case partUserinfo:
		return escapeUserinfo(v)
	case partQuery:
		return url.QueryEscape(v)
	case partPath:
		return url.PathEscape(v)
	}
	return v // host and port: the value is the address itself
}

// escapeUserinfo percent-encodes every byte RFC 3986 does not allow literally
// in a user name or password (unreserved and sub-delims stay; ':' does not,
// it separates the two), so any value parses back with net/url unchanged.
func escapeUserinfo(v string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~!$&'()*+,;=", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
