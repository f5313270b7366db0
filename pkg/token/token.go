// Package token makes and checks stream tokens: short-lived, HMAC-signed
// grants to watch one channel at one quality, verified without a database read.
package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prefix starts every stream token: a version, and a mark that tells a
// stream token from relay's other secrets (rlu_, rlh_, rla_) at a glance.
const Prefix = "st1."

// MinKey is the shortest signing key accepted (256 bits).
const MinKey = 32

// MaxToken bounds what Verify and Parse read: a token is ~400 bytes.
const MaxToken = 2048

// Errors of Verify and Parse (compare with errors.Is).
var (
	ErrMalformed = errors.New("malformed stream token")
	ErrSignature = errors.New("stream token signature does not match")
	ErrExpired   = errors.New("stream token expired")
)

// Claims is what a token grants. Every field is covered by the signature.
type Claims struct {
	// Relay is the public URL of the relay that issued the token: a hub
	// sends the stream only there, and another relay refuses the token.
	Relay   string `json:"relay"`
	Tenant  string `json:"tenant"`
	Channel string `json:"channel"`
	// Hub and Camera locate the camera (the hub's own camera id), so
	// nothing needs looking up to start the stream.
	Hub     string `json:"hub"`
	Camera  string `json:"camera"`
	Quality string `json:"quality"`
	// Session names the live session this token starts.
	Session string `json:"session"`
	// Expires is when the token stops starting sessions (Unix seconds); a
	// session started before runs on.
	Expires int64 `json:"exp"`
}

// ExpiresAt is Expires as a time.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expires, 0).UTC() }

func (c Claims) validate() error {
	for _, f := range []struct{ name, v string }{
		{"relay", c.Relay}, {"tenant", c.Tenant}, {"channel", c.Channel}, {"hub", c.Hub},
		{"camera", c.Camera}, {"quality", c.Quality}, {"session", c.Session},
	} {
		if f.v == "" {
			return fmt.Errorf("%w: %s missing", ErrMalformed, f.name)
		}
	}
	if c.Expires <= 0 {
		return fmt.Errorf("%w: expiry missing", ErrMalformed)
	}
	return nil
}

// Signer signs and verifies tokens with one key.
type Signer struct {
	key []byte
}

// NewSigner returns a Signer; key must have at least MinKey bytes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinKey {
		return nil, fmt.Errorf("stream token key: %d bytes, want at least %d", len(key), MinKey)
	}
	return &Signer{key: bytes.Clone(key)}, nil
}

// DeriveKey turns a secret (relay's admin token, or a configured key) into
// the signing key, bound to this purpose: the same secret used elsewhere
// gives an unrelated key.
func DeriveKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("zipnvr stream token v1"))
	return m.Sum(nil)
}

// Sign returns the token for c: Prefix, base64url(JSON claims), ".", base64url(HMAC-SHA256).
func (s *Signer) Sign(c Claims) (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	payload := Prefix + base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload)), nil
}

func (s *Signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Verify checks tok's signature (in constant time) and expiry at now, and
// returns its claims. Callers still compare the claims with the request
// (channel in the path, relay URL).
func (s *Signer) Verify(tok string, now time.Time) (Claims, error) {
	payload, sig, err := split(tok)
	if err != nil {
		return Claims{}, err
	}
	if !hmac.Equal(sig, s.mac(payload)) {
		return Claims{}, ErrSignature
	}
	c, err := decode(payload)
	if err != nil {
		return Claims{}, err
	}
	if now.Unix() >= c.Expires {
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, c.ExpiresAt().Format(time.RFC3339))
	}
	return c, nil
}

// Parse returns tok's claims WITHOUT checking the signature: for a hub,
// which does not hold the key, to learn which camera a token asks for
// before it hands the token to relay, which verifies it.
func Parse(tok string) (Claims, error) {
	payload, _, err := split(tok)
	if err != nil {
		return Claims{}, err
	}
	return decode(payload)
}

func split(tok string) (payload string, sig []byte, err error) {
	if len(tok) > MaxToken {
		return "", nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxToken)
	}
	if !strings.HasPrefix(tok, Prefix) {
		return "", nil, fmt.Errorf("%w: does not start with %q", ErrMalformed, Prefix)
	}
	i := strings.LastIndexByte(tok, '.')
	if i < len(Prefix) {
		return "", nil, fmt.Errorf("%w: no signature", ErrMalformed)
	}
	sig, err = base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != sha256.Size {
		return "", nil, fmt.Errorf("%w: bad signature encoding", ErrMalformed)
	}
	return tok[:i], sig, nil
}

func decode(payload string) (Claims, error) {
	body, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(payload, Prefix))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: bad claims encoding", ErrMalformed)
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if err := c.validate(); err != nil {
		return Claims{}, err
	}
	return c, nil
}
