// Package auth makes and checks relay's bearer secrets: user tokens, hub
// credentials and the admin token. Only SHA-256 hashes of user tokens and hub
// credentials are stored, so a copy of the metadata grants nothing.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// Kind is the prefix of a secret: greps of logs or configs tell a user token
// from a hub credential at a glance, and a leaked one is easy to scan for.
type Kind string

// Secret kinds.
const (
	User  Kind = "rlu_"
	Hub   Kind = "rlh_"
	Admin Kind = "rla_" // only the admin token relay generates itself
)

// secretBytes of randomness: 256 bits, beyond guessing.
const secretBytes = 32

// New returns a fresh secret of kind k: the prefix and 32 random bytes in
// unpadded base64url (safe in headers, URLs and YAML without quoting).
func New(k Kind) string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return string(k) + base64.RawURLEncoding.EncodeToString(b)
}

// KindOf returns the kind a secret claims by its prefix, or "".
func KindOf(secret string) Kind {
	for _, k := range []Kind{User, Hub, Admin} {
		if strings.HasPrefix(secret, string(k)) {
			return k
		}
	}
	return ""
}

// Hash is what the store keeps of a secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Equal compares two secrets in time independent of where they differ: both
// are hashed first, so not even their lengths leak.
func Equal(a, b string) bool {
	return HashEqual(Hash(a), Hash(b))
}

// HashEqual compares two hashes in constant time.
func HashEqual(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}
