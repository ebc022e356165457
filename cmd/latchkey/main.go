// Command latchkey runs the Latchkey API key service.
//
//	latchkey serve [flags]
//	latchkey bench [flags]
//	latchkey pepper add|status|retire ID [flags]
//	latchkey version
//
// Every flag can also be set with an environment variable: --addr is
// LATCHKEY_ADDR, --pepper-file is LATCHKEY_PEPPER_FILE, and so on. A flag
// on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "latchkey:", err)
		os.Exit(1)
	}
}

const usage = `usage: latchkey <command> [flags]

commands:
  serve   run the service (latchkey serve -h lists its flags)
  bench   measure a running service (latchkey bench -h lists its flags)
  pepper  rotate the token pepper: add, status, retire ID (latchkey pepper -h)
  version print the version, the revision it was built from and the Go version
`

func run(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "bench":
		return bench(ctx, args[1:], os.Stdout, stderr)
	case "pepper":
		return pepperCommand(ctx, args[1:], os.Stdout, stderr)
	case "version":
		return version(os.Stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stderr, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
