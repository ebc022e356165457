package pepper

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MaxID is the largest pepper id a file may hold. Ids count rotations, so
// a thousand is decades of yearly ones; the bound keeps an id a small
// number in every column and message.
const MaxID = 1000

// Pepper is one pepper of a pepper file: the secret that keys token hashes,
// and the id that every hash made with it records. It prints as its id
// only, so that no log line or error can carry the secret.
type Pepper struct {
	ID int
	// Staged marks a pepper that servers hold, to check hashes made with
	// it, but do not yet make hashes with. Replicas hold a new pepper
	// staged before any makes hashes with it, so that none meets a hash it
	// cannot check (see Promote).
	Staged bool
	// The secret sits behind a pointer: fmt prints a pointer inside a
	// value it reaches through unexported fields as an address, never its
	// bytes, and Pepper's own methods cover the rest.
	secret *secretBytes
}

type secretBytes struct{ b []byte }

// key returns the secret, or nil for the zero Pepper.
func (p Pepper) key() []byte {
	if p.secret == nil {
		return nil
	}
	return p.secret.b
}

// New returns the pepper id with the given secret, which must be at least
// MinLength bytes.
func New(id int, secret []byte) (Pepper, error) {
	if id < 1 || id > MaxID {
		return Pepper{}, fmt.Errorf("pepper id must be between 1 and %d", MaxID)
	}
	if len(secret) < MinLength {
		return Pepper{}, fmt.Errorf("pepper must be at least %d bytes", MinLength)
	}
	return Pepper{ID: id, secret: &secretBytes{append([]byte(nil), secret...)}}, nil
}

// String names the pepper by its id.
func (p Pepper) String() string {
	if p.Staged {
		return "pepper " + strconv.Itoa(p.ID) + " (staged)"
	}
	return "pepper " + strconv.Itoa(p.ID)
}

// GoString names the pepper by its id, for %#v.
func (p Pepper) GoString() string { return p.String() }

// Format names the pepper by its id whatever the verb, so that no verb
// (%d, %x, %+v) prints the secret.
func (p Pepper) Format(f fmt.State, _ rune) { fmt.Fprint(f, p.String()) }

// LogValue names the pepper by its id in structured logs.
func (p Pepper) LogValue() slog.Value { return slog.IntValue(p.ID) }

// The file holds one pepper per line as "ID BASE64", or "ID BASE64
// staged" for a staged one, oldest first; the newest (highest id) that is
// not staged is current. A file of one bare base64 line, as the
// first start writes and as an administrator makes with
// `head -c 32 /dev/urandom | base64`, holds pepper 1. Blank lines and lines
// starting with # are ignored. Nothing of the file's contents is ever
// echoed in an error: they are the secret.

// Load reads the peppers of the file at path, ordered by id. A pepper
// file that others may read is refused, as ssh refuses such a key.
func Load(path string) ([]Pepper, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pepper file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pepper file %s is accessible by others (mode %v): chmod 600 it", path, info.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pepper file: %w", err)
	}
	peppers, err := parse(raw)
	if err != nil {
		return nil, fmt.Errorf("pepper file %s: %w", path, err)
	}
	return peppers, nil
}

func parse(raw []byte) ([]Pepper, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	if sc.Err() != nil {
		return nil, errors.New("it is not a text file of peppers")
	}
	if len(lines) == 1 && !strings.Contains(lines[0], " ") {
		p, err := decode(1, lines[0])
		if err != nil {
			return nil, errors.New("it is not a base64 pepper of at least 32 bytes")
		}
		return []Pepper{p}, nil
	}
	if len(lines) == 0 {
		return nil, errors.New("it holds no pepper")
	}
	var peppers []Pepper
	for n, line := range lines {
		idText, secret, ok := strings.Cut(line, " ")
		id, err := strconv.Atoi(idText)
		if !ok || err != nil {
			return nil, fmt.Errorf("line %d is not \"ID BASE64\"", n+1)
		}
		secret, mark, _ := strings.Cut(strings.TrimSpace(secret), " ")
		if mark = strings.TrimSpace(mark); mark != "" && mark != "staged" {
			return nil, fmt.Errorf("line %d: pepper %d is followed by something other than \"staged\"", n+1, id)
		}
		p, err := decode(id, secret)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		p.Staged = mark == "staged"
		if slices.ContainsFunc(peppers, func(q Pepper) bool { return q.ID == id }) {
			return nil, fmt.Errorf("pepper %d appears twice", id)
		}
		peppers = append(peppers, p)
	}
	slices.SortFunc(peppers, func(a, b Pepper) int { return a.ID - b.ID })
	if current(peppers) < 0 {
		return nil, errors.New("every pepper in it is staged: one must be current")
	}
	return peppers, nil
}

// current returns the index of the current pepper of peppers, ordered by
// id: the last one not staged, or -1.
func current(peppers []Pepper) int {
	for i := len(peppers) - 1; i >= 0; i-- {
		if !peppers[i].Staged {
			return i
		}
	}
	return -1
}

func decode(id int, text string) (Pepper, error) {
	secret, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return Pepper{}, fmt.Errorf("pepper %d is not base64", id)
	}
	return New(id, secret)
}

func format(peppers []Pepper) []byte {
	var b bytes.Buffer
	b.WriteString("# Latchkey peppers, one per line: ID BASE64 [staged]. The highest id not staged is current.\n")
	for _, p := range peppers {
		fmt.Fprintf(&b, "%d %s", p.ID, base64.StdEncoding.EncodeToString(p.key()))
		if p.Staged {
			b.WriteString(" staged")
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// LoadOrCreate reads the peppers from path. When the file does not exist
// and allowCreate is true it writes a new random pepper 1 there, readable
// by its owner only, and reports created.
func LoadOrCreate(path string, allowCreate bool) (peppers []Pepper, created bool, err error) {
	peppers, err = Load(path)
	if err == nil {
		return peppers, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !allowCreate {
		return nil, false, err
	}
	first, err := random(1)
	if err != nil {
		return nil, false, err
	}
	// One bare line: the form every earlier version wrote and read.
	if err := writeNew(path, []byte(base64.StdEncoding.EncodeToString(first.key())+"\n")); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process won the race: use its pepper, never ours.
			peppers, err = Load(path)
			return peppers, false, err
		}
		return nil, false, err
	}
	return []Pepper{first}, true, nil
}

// Add appends a new random pepper to the file at path, with the next id,
// so that it becomes the current one, or, when staged, a staged one; the
// file is replaced atomically and stays readable by its owner only. A
// missing file is created with pepper 1, which is current. The new id is
// above every id in the file and above after, the highest id the database
// has seen, so that a retired id is never given to another pepper.
func Add(path string, staged bool, after int) (Pepper, error) {
	peppers, err := Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		peppers, _, err := LoadOrCreate(path, true)
		if err != nil {
			return Pepper{}, err
		}
		return peppers[len(peppers)-1], nil
	}
	if err != nil {
		return Pepper{}, err
	}
	next, err := random(max(peppers[len(peppers)-1].ID, after) + 1)
	if err != nil {
		return Pepper{}, err
	}
	next.Staged = staged
	if err := replace(path, format(append(peppers, next))); err != nil {
		return Pepper{}, err
	}
	return next, nil
}

// Remove takes pepper id out of the file at path. The current pepper
// cannot be removed: the file would then make hashes under another one,
// or none.
func Remove(path string, id int) error {
	peppers, i, err := loadWith(path, id)
	if err != nil {
		return err
	}
	if i == current(peppers) {
		return fmt.Errorf("pepper %d is the current one: add a new pepper before retiring it", id)
	}
	return replace(path, format(slices.Delete(peppers, i, i+1)))
}

// Promote makes staged pepper id current in the file at path, with every
// older staged pepper. It is the second step of a rotation across
// replicas: once every replica holds the staged pepper, promoting it
// cannot make a hash that a replica cannot check.
func Promote(path string, id int) error {
	peppers, i, err := loadWith(path, id)
	if err != nil {
		return err
	}
	if !peppers[i].Staged {
		return fmt.Errorf("pepper %d is not staged", id)
	}
	for j := range peppers[:i+1] {
		peppers[j].Staged = false
	}
	return replace(path, format(peppers))
}

// loadWith loads the file at path and finds pepper id in it.
func loadWith(path string, id int) ([]Pepper, int, error) {
	peppers, err := Load(path)
	if err != nil {
		return nil, 0, err
	}
	i := slices.IndexFunc(peppers, func(p Pepper) bool { return p.ID == id })
	if i < 0 {
		return nil, 0, fmt.Errorf("the pepper file %s holds no pepper %d", path, id)
	}
	return peppers, i, nil
}

func random(id int) (Pepper, error) {
	if id > MaxID {
		return Pepper{}, fmt.Errorf("the pepper file already holds pepper %d, the largest id", MaxID)
	}
	secret := make([]byte, MinLength)
	if _, err := rand.Read(secret); err != nil {
		return Pepper{}, fmt.Errorf("make pepper: %w", err)
	}
	return Pepper{ID: id, secret: &secretBytes{secret}}, nil
}

// writeNew writes data to path only if path does not exist, and atomically:
// a crash leaves either no file or the whole file, never a torn pepper.
func writeNew(path string, data []byte) error {
	return writeAtomically(path, data, os.Link)
}

// replace writes data over the file at path atomically: a crash leaves the
// old file or the new one, never a torn one.
func replace(path string, data []byte) error {
	return writeAtomically(path, data, os.Rename)
}

func writeAtomically(path string, data []byte, install func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".pepper-*")
	if err != nil {
		return fmt.Errorf("create pepper file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("create pepper file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write pepper file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write pepper file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write pepper file: %w", err)
	}
	// Link, unlike rename, fails when path exists: writeNew relies on it.
	if err := install(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
