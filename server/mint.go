package server

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/token"
)

// minter makes the tokens of new and rotated keys and their stored hashes.
type minter struct {
	prefix string
	hasher *pepper.Hasher
}

// mint returns a fresh token for keyID, the hash to store, and the display
// prefix. The token leaves the server only in the response of Issue,
// Rotate, CreateAccount or the bootstrap line.
func (m *minter) mint(keyID string, env latchkey.Environment) (token.Token, latchkey.SecretHash, error) {
	tok, err := token.New(m.prefix, env, keyID)
	if err != nil {
		return token.Token{}, latchkey.SecretHash{}, latchkey.Internal(err)
	}
	return tok, m.hasher.Hash(tok.Secret()), nil
}

// systemKey describes an account's system key: every permission in its
// account, no expiry, no address limit.
func (m *minter) systemKey() (latchkey.NewAPIKey, token.Token, error) {
	id := latchkey.NewID(latchkey.PrefixAPIKey)
	tok, hash, err := m.mint(id, latchkey.EnvironmentLive)
	if err != nil {
		return latchkey.NewAPIKey{}, token.Token{}, err
	}
	return latchkey.NewAPIKey{
		Key: latchkey.APIKey{
			Metadata:    latchkey.Metadata{ID: id, Name: "system"},
			Description: "The account's system key: it holds every permission and cannot be revoked.",
			Permissions: []string{"*"},
			System:      true,
			Environment: latchkey.EnvironmentLive,
			TokenPrefix: tok.DisplayPrefix(),
		},
		Secret: hash,
	}, tok, nil
}
