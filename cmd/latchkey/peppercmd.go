package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/store/postgres"
)

const pepperUsage = `usage: latchkey pepper <add|promote ID|status|retire ID> [flags]

  add         add a new pepper to the pepper file; it is current from the next start
              (with --staged: held, to check hashes, but not yet current)
  promote ID  make staged pepper ID current, once every replica holds it
  status      show, for each pepper, whether the file holds it and how many keys use it
  retire ID   take pepper ID out of the file and record it as retired in the database;
              refused while keys still use it, unless --force, and then they are refused

flags:
`

// pepperCommand runs `latchkey pepper`: the rotation of the pepper.
func pepperCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config
	var force, staged bool
	fs := flag.NewFlagSet("pepper", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, pepperUsage); fs.PrintDefaults() }
	fs.StringVar(&cfg.db, "db", "./latchkey.db", "SQLite database file, or a postgres:// URL")
	fs.StringVar(&cfg.pepperFile, "pepper-file", "", "the pepper file (SQLite default: beside the database; required with PostgreSQL)")
	fs.BoolVar(&staged, "staged", false, "with add: add the pepper staged, so that replicas hold it before any makes hashes with it (then: latchkey pepper promote ID)")
	fs.BoolVar(&force, "force", false, "with retire: retire the pepper although keys still use it; they can then no longer be verified")
	if err := parseFlags(fs, args, os.Getenv); err != nil {
		return err
	}
	// Flags may come after the subcommand and its id too.
	var positional []string
	for fs.NArg() > 0 {
		positional = append(positional, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if len(positional) == 0 {
		fs.Usage()
		return errors.New("no pepper command given")
	}
	if cfg.pepperFile == "" {
		if cfg.postgres() {
			return errors.New("--pepper-file is required with a PostgreSQL --db")
		}
		cfg.pepperFile = defaultPepperFile(cfg.db)
	}
	cfg.syncBound = postgres.DefaultSyncBound
	command, rest := positional[0], positional[1:]
	switch {
	case command == "add" && len(rest) == 0:
		return pepperAdd(ctx, cfg, staged, stdout)
	case command == "status" && len(rest) == 0:
		return pepperStatus(ctx, cfg, stdout)
	case (command == "retire" || command == "promote") && len(rest) == 1:
		id, err := strconv.Atoi(rest[0])
		if err != nil || id < 1 || id > pepper.MaxID {
			// The argument is not echoed: a pasted secret would land on stderr.
			return fmt.Errorf("%s: the argument is not a pepper id (1 to %d)", command, pepper.MaxID)
		}
		if command == "promote" {
			return pepperPromote(cfg, id, stdout)
		}
		return pepperRetire(ctx, cfg, id, force, stdout)
	case command == "retire" || command == "promote":
		return fmt.Errorf("%s takes one pepper id: latchkey pepper %s ID", command, command)
	default:
		fs.Usage()
		return errors.New("unknown pepper command, or the wrong number of arguments: use add, promote ID, status or retire ID")
	}
}

// pepperAdd adds a pepper to the file. A missing file is made with pepper
// 1 only while the database holds no key: with keys, the file is lost, and
// a new one would not verify them.
func pepperAdd(ctx context.Context, cfg config, staged bool, stdout io.Writer) error {
	// The database's ids count too: an id retired there and gone from the
	// file is never given to a new pepper.
	seen := 0
	if databaseExists(cfg) {
		store, err := openPepperStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		if _, err := os.Stat(cfg.pepperFile); errors.Is(err, fs.ErrNotExist) {
			hasKeys, err := store.HasKeys(ctx)
			if err != nil {
				return err
			}
			if hasKeys {
				return fmt.Errorf("the pepper file %s is missing and the database %s holds keys: restore the file from backup before adding a pepper", cfg.pepperFile, cfg.dbName())
			}
		}
		uses, err := store.PepperUsage(ctx)
		if err != nil {
			return err
		}
		for _, u := range uses {
			seen = max(seen, u.ID)
		}
	}
	added, err := pepper.Add(cfg.pepperFile, staged, seen)
	if err != nil {
		return err
	}
	if added.Staged {
		fmt.Fprintf(stdout, "added pepper %d to %s, staged: servers started with this file check hashes made with it but make none.\n", added.ID, cfg.pepperFile)
		fmt.Fprintf(stdout, "Give every replica this file and restart them; then run `latchkey pepper promote %d`, and give them that file.\n", added.ID)
		return nil
	}
	fmt.Fprintf(stdout, "added pepper %d to %s; it is current from the next start of latchkey serve.\n", added.ID, cfg.pepperFile)
	if cfg.postgres() {
		fmt.Fprintln(stdout, "With replicas, a replica restarted with it makes hashes that the others cannot check until they restart too: add it with --staged instead, to roll it out without that window.")
	}
	fmt.Fprintln(stdout, "Keys are rehashed with it as they are verified; `latchkey pepper status` shows how many are left.")
	return nil
}

// pepperPromote makes a staged pepper current in the file.
func pepperPromote(cfg config, id int, stdout io.Writer) error {
	if err := pepper.Promote(cfg.pepperFile, id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pepper %d is current in %s from the next start of latchkey serve; give every replica this file.\n", id, cfg.pepperFile)
	fmt.Fprintln(stdout, "Keys are rehashed with it as they are verified; `latchkey pepper status` shows how many are left.")
	return nil
}

// pepperStatus prints, by pepper, what the file and the database say.
func pepperStatus(ctx context.Context, cfg config, stdout io.Writer) error {
	held, err := pepper.Load(cfg.pepperFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	store, err := openPepperStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	uses, err := store.PepperUsage(ctx)
	if err != nil {
		return err
	}
	byID := map[int]latchkey.PepperUse{}
	var ids []int
	for _, u := range uses {
		byID[u.ID] = u
		ids = append(ids, u.ID)
	}
	current := 0
	for _, p := range held {
		if !slices.Contains(ids, p.ID) {
			ids = append(ids, p.ID)
		}
		if !p.Staged {
			current = p.ID
		}
	}
	slices.Sort(ids)
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PEPPER\tFILE\tKEYS\tIN GRACE\tDATABASE")
	waiting := int64(0)
	for _, id := range ids {
		u := byID[id]
		file := "no"
		if i := slices.IndexFunc(held, func(p pepper.Pepper) bool { return p.ID == id }); i >= 0 {
			file = "yes"
			if held[i].Staged {
				file = "staged"
			}
		}
		switch {
		case id == current:
			file = "current"
		case id < current:
			waiting += u.Keys + u.Previous
		}
		database := "unknown"
		switch {
		case u.Retired:
			database = "retired"
		case u.Recorded:
			database = "recorded"
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%s\n", id, file, u.Keys, u.Previous, database)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if current == 0 {
		fmt.Fprintf(stdout, "The pepper file %s is missing.\n", cfg.pepperFile)
		return nil
	}
	fmt.Fprintf(stdout, "%d keys' secrets are hashed with a pepper older than %d: they are rehashed on their next verification.\n", waiting, current)
	return nil
}

// pepperRetire records pepper id as retired in the database, then takes it
// out of the file. The database comes first: a file without the pepper and
// a database that still needs it would stop the server from starting.
func pepperRetire(ctx context.Context, cfg config, id int, force bool, stdout io.Writer) error {
	held, err := pepper.Load(cfg.pepperFile)
	if err != nil {
		return err
	}
	inFile := slices.ContainsFunc(held, func(p pepper.Pepper) bool { return p.ID == id })
	hasher, err := pepper.NewHasherOf(held)
	if err != nil {
		return err
	}
	if hasher.Current() == id {
		return fmt.Errorf("pepper %d is the current one: add a new pepper (latchkey pepper add) and let the keys be rehashed before retiring it", id)
	}
	store, err := openPepperStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	stranded, err := store.RetirePepper(ctx, id, force)
	if latchkey.ErrorCode(err) == latchkey.CodeFailedPrecondition {
		return fmt.Errorf("keys still use pepper %d (latchkey pepper status counts them): they are rehashed when next verified; rotate the ones that are not used, or retire with --force, after which they are refused", id)
	}
	if err != nil {
		return err
	}
	if inFile {
		if err := pepper.Remove(cfg.pepperFile, id); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "retired pepper %d", id)
	if inFile {
		fmt.Fprintf(stdout, " and removed it from %s", cfg.pepperFile)
	}
	fmt.Fprintln(stdout, ".")
	if len(stranded) > 0 {
		fmt.Fprintf(stdout, "%d keys were still hashed with it; they are refused from now on by servers without it: rotate or reissue them:\n", len(stranded))
		for _, keyID := range stranded {
			fmt.Fprintln(stdout, keyID)
		}
	}
	fmt.Fprintln(stdout, "Servers still running with the old file hold the pepper until they restart; with replicas, give every one the new file.")
	return nil
}

// openPepperStore opens the database for a pepper command. Its page-token
// key is a throw-away one: the command lists nothing.
func openPepperStore(ctx context.Context, cfg config) (latchkey.Store, error) {
	if !databaseExists(cfg) {
		return nil, fmt.Errorf("there is no database at %s", cfg.db)
	}
	store, err := openStore(ctx, cfg, []byte("unused: pepper commands make no page token"), slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", cfg.dbName(), err)
	}
	return store, nil
}

// databaseExists reports whether --db names a database: any PostgreSQL
// URL, or a SQLite file that exists, so that a command never makes one.
func databaseExists(cfg config) bool {
	if cfg.postgres() {
		return true
	}
	_, err := os.Stat(cfg.db)
	return err == nil
}
