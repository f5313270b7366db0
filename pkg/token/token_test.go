package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func claims() Claims {
	return Claims{Relay: "https://relay.example", Tenant: "tn_a", Channel: "ch_1", Hub: "hub-1",
		Camera: "cam1", Quality: "high", Session: "ls_1", Expires: now.Add(time.Minute).Unix()}
}

func signer(t testing.TB, secret string) *Signer {
	s, err := NewSigner(DeriveKey(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignVerify(t *testing.T) {
	s := signer(t, "admin-secret")
	tok, err := s.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, Prefix) || len(tok) > 600 {
		t.Fatalf("token %q", tok)
	}
	got, err := s.Verify(tok, now)
	if err != nil || got != claims() {
		t.Fatalf("Verify: %+v %v", got, err)
	}
	if p, err := Parse(tok); err != nil || p != claims() {
		t.Fatalf("Parse: %+v %v", p, err)
	}

	// Tampering with any claim, the signature, or signing with another key fails.
	body, _ := json.Marshal(claims())
	forge := func(edit func(*Claims)) string {
		c := claims()
		edit(&c)
		b, _ := json.Marshal(c)
		return strings.Replace(tok, base64.RawURLEncoding.EncodeToString(body), base64.RawURLEncoding.EncodeToString(b), 1)
	}
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	flipped := []byte(sig)
	flipped[3] ^= 1
	if flipped[3] == '.' {
		flipped[3] = 'A'
	}
	other, _ := signer(t, "another relay").Sign(claims())
	for _, tc := range []struct {
		name string
		tok  string
		at   time.Time
		want error
	}{
		{"other channel", forge(func(c *Claims) { c.Channel = "ch_2" }), now, ErrSignature},
		{"other tenant", forge(func(c *Claims) { c.Tenant = "tn_b" }), now, ErrSignature},
		{"longer expiry", forge(func(c *Claims) { c.Expires += 3600 }), now, ErrSignature},
		{"other quality", forge(func(c *Claims) { c.Quality = "low" }), now, ErrSignature},
		{"flipped signature", strings.TrimSuffix(tok, sig) + string(flipped), now, ErrSignature},
		{"other key", other, now, ErrSignature},
		{"expired", tok, now.Add(time.Minute), ErrExpired},
		{"empty", "", now, ErrMalformed},
		{"user token", "rlu_" + strings.Repeat("x", 43), now, ErrMalformed},
		{"no signature", strings.TrimSuffix(tok, "."+sig), now, ErrMalformed},
		{"short signature", strings.TrimSuffix(tok, sig) + "abcd", now, ErrMalformed},
		{"bad body", Prefix + "!!!." + sig, now, ErrSignature},
		{"huge", Prefix + strings.Repeat("A", MaxToken), now, ErrMalformed},
	} {
		_, err := s.Verify(tc.tok, tc.at)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestSignRefusesIncompleteClaims(t *testing.T) {
	s := signer(t, "k")
	for _, edit := range []func(*Claims){
		func(c *Claims) { c.Relay = "" }, func(c *Claims) { c.Channel = "" },
		func(c *Claims) { c.Session = "" }, func(c *Claims) { c.Expires = 0 },
	} {
		c := claims()
		edit(&c)
		if _, err := s.Sign(c); !errors.Is(err, ErrMalformed) {
			t.Errorf("Sign(%+v): %v", c, err)
		}
	}
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Error("NewSigner accepted a 5-byte key")
	}
}

// FuzzVerify: no input panics, and only the signer's own tokens verify.
func FuzzVerify(f *testing.F) {
	s := signer(f, "fuzz")
	tok, _ := s.Sign(claims())
	f.Add(tok)
	f.Add(Prefix + "e30." + strings.Repeat("A", 43))
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := s.Verify(in, now)
		if err == nil && in != tok {
			// Another encoding of the same signed payload cannot exist:
			// base64url without padding is canonical only if decoding is strict.
			if again, _ := s.Sign(c); again != in {
				t.Fatalf("verified a token the signer never made: %q", in)
			}
		}
		_, _ = Parse(in)
	})
}
