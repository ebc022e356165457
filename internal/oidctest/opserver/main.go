// Command opserver runs the example OpenID Provider of
// github.com/zitadel/oidc/v3 for Latchkey's tests: the example's own router,
// login form, OP configuration (exampleop.SetupServer) and in-memory storage
// (example/server/storage), with zitadel's certified op library doing the
// protocol. Only the example's main is replaced, by this one, which differs
// from it in four ways, each because a test needs it:
//
//   - It listens on loopback only (-addr, 127.0.0.1 and a free port by
//     default), not on every interface, and its issuer is that address.
//   - The example's clients are asked to put the claims of the profile and
//     email scopes in the ID token (IDTokenUserinfoClaimsAssertion). The
//     example leaves them out of an ID token issued with an access token,
//     that is of every ID token of the code flow, so a relying party that
//     reads the email from the ID token, as Latchkey does, would never see it.
//   - Users are read as a JSON array on the command line's -users file and
//     can be replaced while it runs, so that a test can change a person's
//     email or add a person.
//   - Its signing keys are a ring a test can rotate: a new key signs, the
//     old ones stay in the JWKS until they are retired.
//
// Commands come on standard input, one JSON object a line, and each gets one
// JSON line on standard output: {"op":"users","users":[...]},
// {"op":"rotate"}, {"op":"retire"}. The first line it prints is
// {"issuer":...,"kid":...} once it is serving. It exits when its standard
// input closes, so it does not outlive the test that started it.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback `address` to listen on")
	usersFile := flag.String("users", "", "`file` with the users, a JSON array of the example's storage.User")
	redirects := flag.String("redirect-uris", "http://127.0.0.1/callback", "comma-separated redirect `URIs` of the example's clients")
	flag.Parse()
	if err := run(*addr, *usersFile, strings.Split(*redirects, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "opserver:", err)
		os.Exit(1)
	}
}

func run(addr, usersFile string, redirectURIs []string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %s: only a loopback IP address is allowed", addr)
	}
	users := &userStore{}
	if usersFile != "" {
		data, err := os.ReadFile(usersFile)
		if err != nil {
			return err
		}
		if err := users.set(data); err != nil {
			return fmt.Errorf("%s: %w", usersFile, err)
		}
	}
	keys, err := newKeyRing()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String() + "/"

	// The example's clients, as its main registers them.
	storage.RegisterClients(
		storage.NativeClient("native", redirectURIs...),
		storage.WebClient("web", "secret", redirectURIs...),
		storage.WebClient("api", "secret", redirectURIs...),
	)
	st := &testStorage{Storage: storage.NewStorage(users), keys: keys}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	router := exampleop.SetupServer(issuer, st, logger, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(map[string]string{"issuer": issuer, "kid": keys.current().ID()}); err != nil {
		return err
	}
	commands := make(chan error, 1)
	go func() { commands <- serveCommands(os.Stdin, out, users, keys) }()
	select {
	case err := <-serveErr:
		return err
	case err := <-commands:
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		return err
	}
}

// serveCommands answers the commands on in until it closes.
func serveCommands(in *os.File, out *json.Encoder, users *userStore, keys *keyRing) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var cmd struct {
			Op    string          `json:"op"`
			Users json.RawMessage `json:"users"`
		}
		reply := map[string]any{}
		err := json.Unmarshal(sc.Bytes(), &cmd)
		if err == nil {
			switch cmd.Op {
			case "users":
				err = users.set(cmd.Users)
			case "rotate":
				err = keys.rotate()
			case "retire":
				keys.retire()
			default:
				err = fmt.Errorf("unknown op %q", cmd.Op)
			}
		}
		if err != nil {
			reply["error"] = err.Error()
		} else {
			reply["ok"] = true
			reply["kid"] = keys.current().ID()
			reply["kids"] = keys.ids()
		}
		if err := out.Encode(reply); err != nil {
			return err
		}
	}
	return sc.Err()
}

// testStorage is the example's storage with the example's clients asserting
// the userinfo claims in the ID token, and with a ring of signing keys.
type testStorage struct {
	*storage.Storage
	keys *keyRing
}

func (s *testStorage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if g, ok := c.(op.HasRedirectGlobs); ok {
		return claimsInIDTokenGlobs{g}, nil
	}
	return claimsInIDToken{c}, nil
}

type claimsInIDToken struct{ op.Client }

func (claimsInIDToken) IDTokenUserinfoClaimsAssertion() bool { return true }

type claimsInIDTokenGlobs struct{ op.HasRedirectGlobs }

func (claimsInIDTokenGlobs) IDTokenUserinfoClaimsAssertion() bool { return true }

func (s *testStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return s.keys.current(), nil
}

func (s *testStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *testStorage) KeySet(context.Context) ([]op.Key, error) {
	return s.keys.published(), nil
}

// signingKey is an RSA key that signs with RS256; as an op.Key it is its
// public half.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// keyRing holds the key that signs (the last) and the keys the JWKS shows.
type keyRing struct {
	mu   sync.Mutex
	keys []*signingKey
}

func newKeyRing() (*keyRing, error) {
	r := &keyRing{}
	return r, r.rotate()
}

func (r *keyRing) rotate() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	id := make([]byte, 8)
	rand.Read(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, &signingKey{id: hex.EncodeToString(id), key: key})
	return nil
}

func (r *keyRing) retire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = r.keys[len(r.keys)-1:]
}

func (r *keyRing) current() *signingKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys[len(r.keys)-1]
}

func (r *keyRing) published() []op.Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]op.Key, len(r.keys))
	for i, k := range r.keys {
		keys[i] = publicKey{k}
	}
	return keys
}

func (r *keyRing) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.id
	}
	return ids
}

// userStore is the example's storage.UserStore over a set that can be
// replaced whole; a user it has handed out is never changed.
type userStore struct {
	mu    sync.RWMutex
	users map[string]*storage.User
}

func (u *userStore) set(data []byte) error {
	var list []*storage.User
	if err := json.Unmarshal(data, &list); err != nil {
		return err
	}
	users := make(map[string]*storage.User, len(list))
	names := make(map[string]bool, len(list))
	for _, user := range list {
		if user.ID == "" || user.Username == "" {
			return fmt.Errorf("a user needs an ID and a Username: %+v", *user)
		}
		if users[user.ID] != nil || names[user.Username] {
			return fmt.Errorf("user %q or %q twice", user.ID, user.Username)
		}
		users[user.ID] = user
		names[user.Username] = true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.users = users
	return nil
}

func (u *userStore) GetUserByID(id string) *storage.User {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.users[id]
}

func (u *userStore) GetUserByUsername(username string) *storage.User {
	u.mu.RLock()
	defer u.mu.RUnlock()
	for _, user := range u.users {
		if user.Username == username {
			return user
		}
	}
	return nil
}

// ExampleClientID is the example's service user, for its JWT profile grant.
func (u *userStore) ExampleClientID() string { return storage.ServiceUserID }
