package pepper

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"
	"unsafe"

	"github.com/latchkey/latchkey"
)

// MinLength is the shortest pepper NewHasher accepts: 256 bits.
const MinLength = 32

// Hasher computes and checks the keyed hashes of token secrets:
// HMAC-SHA-256 under the server's pepper. A slow password hash would add
// nothing here: secrets carry 190 random bits, so there is no dictionary to
// slow down, and the pepper makes a stolen database useless on its own.
type Hasher struct {
	pepper  []byte
	version int
	// macs holds keyed HMAC states with their output buffers, so that a
	// verification neither re-keys nor allocates.
	macs sync.Pool
}

type macState struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewHasher returns a Hasher for pepper, whose hashes are tagged with
// version so that a later pepper rotation can tell them apart.
func NewHasher(pepper []byte, version int) (*Hasher, error) {
	if len(pepper) < MinLength {
		return nil, fmt.Errorf("pepper must be at least %d bytes", MinLength)
	}
	if version < 1 {
		return nil, fmt.Errorf("pepper version must be positive")
	}
	h := &Hasher{pepper: append([]byte(nil), pepper...), version: version}
	h.macs.New = func() any { return &macState{mac: hmac.New(sha256.New, h.pepper)} }
	return h, nil
}

// Hash returns the keyed hash of secret under the current pepper.
func (h *Hasher) Hash(secret string) latchkey.SecretHash {
	st := h.sum(secret)
	out := latchkey.SecretHash{Hash: append([]byte(nil), st.sum[:]...), PepperVersion: h.version}
	h.macs.Put(st)
	return out
}

// Verify reports whether secret hashes to stored, comparing in constant
// time. A hash made under another pepper version never matches.
func (h *Hasher) Verify(secret string, stored latchkey.SecretHash) bool {
	if stored.PepperVersion != h.version {
		return false
	}
	st := h.sum(secret)
	ok := hmac.Equal(st.sum[:], stored.Hash)
	h.macs.Put(st)
	return ok
}

// sum computes the HMAC of secret into a pooled state; the caller puts it back.
func (h *Hasher) sum(secret string) *macState {
	st := h.macs.Get().(*macState)
	st.mac.Reset()
	// The MAC only reads the secret, so its bytes are lent, not copied.
	st.mac.Write(unsafe.Slice(unsafe.StringData(secret), len(secret)))
	st.mac.Sum(st.sum[:0])
	return st
}

// Fingerprint returns a short public digest of the pepper. The store keeps
// it so that a server started with the wrong pepper file refuses to start
// instead of rejecting every key.
func (h *Hasher) Fingerprint() string {
	mac := hmac.New(sha256.New, h.pepper)
	mac.Write([]byte("latchkey pepper fingerprint v1"))
	return fmt.Sprintf("%x", mac.Sum(nil)[:16])
}
