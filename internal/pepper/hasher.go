package pepper

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sync"
	"unsafe"

	"github.com/latchkey/latchkey"
)

// MinLength is the shortest pepper accepted: 256 bits.
const MinLength = 32

// Hasher computes and checks the keyed hashes of token secrets:
// HMAC-SHA-256 under a pepper. A slow password hash would add nothing
// here: secrets carry 190 random bits, so there is no dictionary to slow
// down, and the pepper makes a stolen database useless on its own.
//
// A Hasher holds every pepper of the installation's file. New hashes are
// made with the current one (the newest not staged); a stored hash is checked with the
// pepper it records, so that keys made before a rotation keep verifying
// until they are rehashed.
type Hasher struct {
	// keyed is ordered by pepper id; keyed[cur] is current.
	keyed []*keyed
	cur   int
}

// keyed is one pepper with its pool of keyed HMAC states.
type keyed struct {
	Pepper
	// macs holds keyed HMAC states with their output buffers, so that a
	// verification neither re-keys nor allocates.
	macs sync.Pool
}

type macState struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewHasher returns a Hasher for one pepper, whose hashes are tagged with
// version.
func NewHasher(secret []byte, version int) (*Hasher, error) {
	p, err := New(version, secret)
	if err != nil {
		return nil, err
	}
	return NewHasherOf([]Pepper{p})
}

// NewHasherOf returns a Hasher for the peppers of a file; the one with the
// highest id that is not staged is current.
func NewHasherOf(peppers []Pepper) (*Hasher, error) {
	if len(peppers) == 0 {
		return nil, errors.New("no pepper")
	}
	h := &Hasher{}
	for _, p := range peppers {
		if _, err := New(p.ID, p.key()); err != nil {
			return nil, err
		}
		if h.find(p.ID) != nil {
			return nil, fmt.Errorf("pepper %d given twice", p.ID)
		}
		k := &keyed{Pepper: p}
		k.macs.New = func() any { return &macState{mac: hmac.New(sha256.New, k.key())} }
		h.keyed = append(h.keyed, k)
	}
	slices.SortFunc(h.keyed, func(a, b *keyed) int { return a.ID - b.ID })
	h.cur = -1
	for i, k := range h.keyed {
		if !k.Staged {
			h.cur = i
		}
	}
	if h.cur < 0 {
		return nil, errors.New("every pepper is staged: one must be current")
	}
	return h, nil
}

// Without returns a Hasher without the peppers ids, which may not include
// the current one.
func (h *Hasher) Without(ids []int) (*Hasher, error) {
	var kept []Pepper
	for _, k := range h.keyed {
		if !slices.Contains(ids, k.ID) {
			kept = append(kept, k.Pepper)
		}
	}
	if slices.Contains(ids, h.Current()) {
		return nil, fmt.Errorf("pepper %d is current and cannot be left out", h.Current())
	}
	return NewHasherOf(kept)
}

// Current returns the id of the pepper new hashes are made with.
func (h *Hasher) Current() int { return h.current().ID }

func (h *Hasher) current() *keyed { return h.keyed[h.cur] }

// Holds reports whether the hasher has pepper id.
func (h *Hasher) Holds(id int) bool { return h.find(id) != nil }

// IDs returns the ids of the hasher's peppers, oldest first.
func (h *Hasher) IDs() []int {
	ids := make([]int, len(h.keyed))
	for i, k := range h.keyed {
		ids[i] = k.ID
	}
	return ids
}

// find returns pepper id, or nil. A file holds a handful of peppers, so a
// scan from the current one, the usual hit, is quickest.
func (h *Hasher) find(id int) *keyed {
	for i := len(h.keyed) - 1; i >= 0; i-- {
		if h.keyed[i].ID == id {
			return h.keyed[i]
		}
	}
	return nil
}

// Hash returns the keyed hash of secret under the current pepper.
func (h *Hasher) Hash(secret string) latchkey.SecretHash {
	k := h.current()
	st := k.sum(secret)
	out := latchkey.SecretHash{Hash: append([]byte(nil), st.sum[:]...), PepperVersion: k.ID}
	k.macs.Put(st)
	return out
}

// Verify reports whether secret hashes to stored under the pepper stored
// records, comparing in constant time. A hash of a pepper the hasher does
// not hold never matches; the work done is the same, so timing does not
// tell such a hash from a wrong secret.
func (h *Hasher) Verify(secret string, stored latchkey.SecretHash) bool {
	k := h.find(stored.PepperVersion)
	held := k != nil
	if !held {
		k = h.current()
	}
	st := k.sum(secret)
	ok := hmac.Equal(st.sum[:], stored.Hash)
	k.macs.Put(st)
	return ok && held
}

// sum computes the HMAC of secret into a pooled state; the caller puts it back.
func (k *keyed) sum(secret string) *macState {
	st := k.macs.Get().(*macState)
	st.mac.Reset()
	// The MAC only reads the secret, so its bytes are lent, not copied.
	st.mac.Write(unsafe.Slice(unsafe.StringData(secret), len(secret)))
	st.mac.Sum(st.sum[:0])
	return st
}

// Fingerprint returns a short public digest of the current pepper.
func (h *Hasher) Fingerprint() string { return h.current().fingerprint() }

// Fingerprints returns the fingerprint of every pepper by id. The store
// keeps them so that a server started with the wrong pepper file refuses
// to start instead of rejecting every key.
func (h *Hasher) Fingerprints() map[int]string {
	out := make(map[int]string, len(h.keyed))
	for _, k := range h.keyed {
		out[k.ID] = k.fingerprint()
	}
	return out
}

func (p Pepper) fingerprint() string {
	mac := hmac.New(sha256.New, p.key())
	mac.Write([]byte("latchkey pepper fingerprint v1"))
	return fmt.Sprintf("%x", mac.Sum(nil)[:16])
}

// DeriveKey returns a key for purpose made from the current pepper, so
// that the pepper itself keys nothing but token hashes. A key derived
// this way changes with each rotation: what it sealed before is refused
// after.
func (h *Hasher) DeriveKey(purpose string) []byte {
	mac := hmac.New(sha256.New, h.current().key())
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}
