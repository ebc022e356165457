package oidctest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testenv"
)

// verify checks an ID token's RS256 signature against the key of its kid in
// set, as a relying party would, and returns its claims.
func verify(t *testing.T, set JWKS, idToken string) map[string]any {
	t.Helper()
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	header, claims, err := decodeJWT(idToken)
	if err != nil {
		t.Fatal(err)
	}
	if header["alg"] != "RS256" {
		t.Fatalf("alg %v, want RS256", header["alg"])
	}
	i := slices.IndexFunc(set.Keys, func(k JWK) bool { return k.Kid == header["kid"] })
	if i < 0 {
		t.Fatalf("the JWKS has no key %v", header["kid"])
	}
	k := set.Keys[i]
	if k.Kty != "RSA" || k.Use != "sig" {
		t.Fatalf("key %s is %s for %q", k.Kid, k.Kty, k.Use)
	}
	n, err1 := base64.RawURLEncoding.DecodeString(k.N)
	e, err2 := base64.RawURLEncoding.DecodeString(k.E)
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("the ID token's signature does not verify with key %s: %v", k.Kid, err)
	}
	return claims
}

func kids(set JWKS) []string {
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.Kid)
	}
	return ids
}

// checkClaims checks what Latchkey will rely on in an ID token for u.
func checkClaims(t *testing.T, p *Provider, claims map[string]any, aud string, u User) {
	t.Helper()
	if claims["iss"] != p.Issuer {
		t.Errorf("iss %v, want %s", claims["iss"], p.Issuer)
	}
	if got := fmt.Sprint(claims["aud"]); got != "["+aud+"]" && got != aud {
		t.Errorf("aud %v, want %s", claims["aud"], aud)
	}
	if claims["sub"] != u.ID {
		t.Errorf("sub %v, want %s", claims["sub"], u.ID)
	}
	if claims["email"] != u.Email {
		t.Errorf("email %v, want %s", claims["email"], u.Email)
	}
	// zitadel leaves email_verified out when it is false (omitempty), so
	// a relying party must take only true for verified.
	verified, present := claims["email_verified"]
	if u.EmailVerified && verified != true || !u.EmailVerified && present && verified != false {
		t.Errorf("email_verified %v, want %v", verified, u.EmailVerified)
	}
	if want := u.FirstName + " " + u.LastName; claims["name"] != want {
		t.Errorf("name %v, want %s", claims["name"], want)
	}
	exp, _ := claims["exp"].(float64)
	if until := time.Until(time.Unix(int64(exp), 0)); until < 30*time.Minute || until > 2*time.Hour {
		t.Errorf("exp %v is %v away, want about an hour", claims["exp"], until)
	}
}

func TestProviderIssuesIDTokens(t *testing.T) {
	start := time.Now()
	if _, err := Binary(); err != nil {
		testenv.Skip(t, err.Error())
	}
	built := time.Since(start)
	start = time.Now()
	p := Start(t)
	started := time.Since(start)
	start = time.Now()
	tok := p.Login(t, Alice.Username, Alice.Password)
	t.Logf("build (or cache hit) %v, Start %v, Login %v; issuer %s",
		built.Round(time.Millisecond), started.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), p.Issuer)

	if !strings.HasPrefix(p.Issuer, "http://127.0.0.1:") || !strings.HasSuffix(p.Issuer, "/") {
		t.Errorf("issuer %q, want http://127.0.0.1:PORT/", p.Issuer)
	}
	set := p.JWKS(t)
	checkClaims(t, p, verify(t, set, tok.IDToken), ClientID, Alice)
	if tok.Claims["sub"] != Alice.ID || tok.KeyID != set.Keys[0].Kid {
		t.Errorf("Tokens: sub %v, kid %s; want %s, %s", tok.Claims["sub"], tok.KeyID, Alice.ID, set.Keys[0].Kid)
	}

	t.Run("the userinfo endpoint agrees, with the access token", func(t *testing.T) {
		info := p.UserInfo(t, tok.AccessToken)
		if info["sub"] != Alice.ID || info["email"] != Alice.Email || info["email_verified"] != true {
			t.Errorf("userinfo %v", info)
		}
	})

	t.Run("a second person, and one whose email is not verified", func(t *testing.T) {
		checkClaims(t, p, verify(t, set, p.Login(t, Bob.Username, Bob.Password).IDToken), ClientID, Bob)
		claims := verify(t, set, p.Login(t, Mallory.Username, Mallory.Password).IDToken)
		checkClaims(t, p, claims, ClientID, Mallory)
		if v, ok := claims["email_verified"]; ok {
			t.Errorf("Mallory's email_verified is %v, want it absent (zitadel omits false)", v)
		}
	})

	t.Run("a wrong password is refused by the form", func(t *testing.T) {
		for _, try := range []LoginRequest{
			{Username: Alice.Username, Password: "not-" + Alice.Password},
			{Username: Alice.Username, Password: Bob.Password},
			{Username: "nobody", Password: Alice.Password},
			{Username: Alice.Username},
		} {
			_, err := p.TryLogin(t.Context(), try)
			if !errors.Is(err, ErrLoginRefused) {
				t.Errorf("%s / %q: %v, want ErrLoginRefused", try.Username, try.Password, err)
			} else if !strings.Contains(err.Error(), "username or password wrong") {
				t.Errorf("the form's error is not the example's: %v", err)
			}
		}
	})

	t.Run("the confidential client's tokens have its audience", func(t *testing.T) {
		tok, err := p.TryLogin(t.Context(), LoginRequest{Username: Bob.Username, Password: Bob.Password,
			ClientID: WebClientID, ClientSecret: WebClientSecret})
		if err != nil {
			t.Fatal(err)
		}
		checkClaims(t, p, verify(t, set, tok.IDToken), WebClientID, Bob)
		_, err = p.TryLogin(t.Context(), LoginRequest{Username: Bob.Username, Password: Bob.Password,
			ClientID: WebClientID, ClientSecret: "wrong"})
		if err == nil || !strings.Contains(err.Error(), "token endpoint") {
			t.Errorf("a wrong client secret: %v, want the token endpoint to refuse", err)
		}
	})

	t.Run("a user's email changes, and a user is added", func(t *testing.T) {
		changed := Bob
		changed.Email, changed.EmailVerified = "robert@example.org", false
		p.SetUser(t, changed)
		checkClaims(t, p, verify(t, set, p.Login(t, Bob.Username, Bob.Password).IDToken), ClientID, changed)
		carol := User{ID: "sub-carol", Username: "carol", Password: "carol-password",
			FirstName: "Carol", LastName: "Example", Email: "carol@example.com", EmailVerified: true}
		p.SetUser(t, carol)
		checkClaims(t, p, verify(t, set, p.Login(t, carol.Username, carol.Password).IDToken), ClientID, carol)
		if got := len(p.Users()); got != 4 {
			t.Errorf("%d users, want 4", got)
		}
	})

	t.Run("the signing key rotates", func(t *testing.T) {
		old := tok.KeyID
		kid := p.Rotate(t)
		if kid == old || kid == "" {
			t.Fatalf("Rotate gave key %q after %q", kid, old)
		}
		set := p.JWKS(t)
		if got := kids(set); !slices.Equal(got, []string{old, kid}) {
			t.Errorf("JWKS after Rotate has %v, want [%s %s]", got, old, kid)
		}
		fresh := p.Login(t, Alice.Username, Alice.Password)
		if fresh.KeyID != kid {
			t.Errorf("a token after Rotate is signed with %s, want %s", fresh.KeyID, kid)
		}
		checkClaims(t, p, verify(t, set, fresh.IDToken), ClientID, Alice)
		checkClaims(t, p, verify(t, set, tok.IDToken), ClientID, Alice) // the old key is still published

		p.RetireKeys(t)
		if got := kids(p.JWKS(t)); !slices.Equal(got, []string{kid}) {
			t.Errorf("JWKS after RetireKeys has %v, want [%s]", got, kid)
		}
	})

	t.Run("Close takes the provider down", func(t *testing.T) {
		p.Close()
		if _, err := http.Get(p.Issuer + ".well-known/openid-configuration"); err == nil {
			t.Error("the provider still answers after Close")
		}
	})
}

// The provider's own main lives in a module of its own, which neither
// `go vet ./...` nor `go test ./...` here descend into.
func TestOPServerModuleVets(t *testing.T) {
	if testing.Short() {
		t.Skip("vets a module with zitadel's dependencies")
	}
	if _, err := Binary(); err != nil { // the modules are there once it builds
		testenv.Skip(t, err.Error())
	}
	cmd := exec.CommandContext(t.Context(), goCommand(), "vet", "./...")
	cmd.Dir = "opserver"
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet in opserver: %v\n%s", err, out)
	}
}

func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// The example's own main, unmodified, as go install builds it from the
// proxy: the same login flow works against it, and its ID tokens show why
// opserver exists: the code flow's ID token has no email, only the userinfo
// endpoint does. The day this test fails on that, the example's own main
// may do.
func TestUnmodifiedExampleOmitsEmailFromIDToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example server")
	}
	gomod, err := os.ReadFile("opserver/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github\.com/zitadel/oidc/v3 (v\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("opserver/go.mod does not require github.com/zitadel/oidc/v3")
	}
	dir := t.TempDir()
	start := time.Now()
	install := exec.CommandContext(t.Context(), goCommand(), "install", "github.com/zitadel/oidc/v3/example/server@"+string(m[1]))
	install.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := install.CombinedOutput(); err != nil {
		testenv.Skip(t, fmt.Sprintf("go install of the example server: %v\n%s", err, out))
	}
	t.Logf("go install of the example server at %s: %v", m[1], time.Since(start).Round(time.Millisecond))

	// It listens on every interface, on the port it is given; it is
	// called on loopback only.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	users := map[string]User{Alice.ID: Alice}
	data, _ := json.Marshal(users)
	usersFile := filepath.Join(dir, "users.json")
	if err := os.WriteFile(usersFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(filepath.Join(dir, "server"))
	srv.Env = append(os.Environ(), "PORT="+port, "REDIRECT_URI="+RedirectURI, "USERS_FILE="+usersFile)
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })

	p := &Provider{Issuer: "http://localhost:" + port + "/", ClientID: ClientID, redirectURI: RedirectURI}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := p.getJSON(t.Context(), p.Issuer+".well-known/openid-configuration", &p.discovery)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("the example server did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok, err := p.TryLogin(t.Context(), LoginRequest{Username: Alice.Username, Password: Alice.Password})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Claims["sub"] != Alice.ID || tok.Claims["iss"] != p.Issuer {
		t.Errorf("claims %v", tok.Claims)
	}
	if _, ok := tok.Claims["email"]; ok {
		t.Errorf("the unmodified example put the email in the code flow's ID token (%v): opserver's change may be needless now", tok.Claims)
	}
	if info := p.UserInfo(t, tok.AccessToken); info["email"] != Alice.Email {
		t.Errorf("userinfo %v, want email %s", info, Alice.Email)
	}
	if _, err := p.TryLogin(t.Context(), LoginRequest{Username: Alice.Username, Password: "wrong"}); !errors.Is(err, ErrLoginRefused) {
		t.Errorf("a wrong password: %v, want ErrLoginRefused", err)
	}
}
