package latchkey

// PepperUse is what the database holds of one pepper: how many keys that
// can still be verified hold a hash made with it, and whether servers have
// recorded or retired it.
type PepperUse struct {
	// ID is the pepper's id, as its hashes record it.
	ID int
	// Keys counts the keys, neither revoked nor expired, whose current
	// secret is hashed with the pepper.
	Keys int64
	// Previous counts the keys whose previous secret, still inside its
	// rotation grace period, is hashed with the pepper.
	Previous int64
	// Recorded reports whether a server holding the pepper has started on
	// the database, which then knows its fingerprint.
	Recorded bool
	// Retired reports whether the pepper was retired: servers may start
	// without it, and the keys still hashed with it cannot be verified.
	Retired bool
}

// InUse reports whether any key that can still be verified needs the
// pepper.
func (u PepperUse) InUse() bool { return u.Keys+u.Previous > 0 }

// Rehash replaces one of a key's secret hashes, made with an older pepper,
// by the hash of the same secret under the current one. It applies only
// while the key still holds Old, so that a rotation or another replica's
// rehash in between wins.
type Rehash struct {
	KeyID string
	Old   SecretHash
	New   SecretHash
}
