package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// buildVersion describes the binary from its build information: the main
// module's version, the VCS revision and time when it was built from a
// checkout, and the Go version.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	version, revision, modified, at := info.Main.Version, "", "", ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	out := version
	if revision != "" {
		out += " " + revision + modified
	}
	if at != "" {
		out += " " + at
	}
	return out + " " + info.GoVersion
}

// version prints buildVersion.
func version(stdout io.Writer) error {
	_, err := fmt.Fprintln(stdout, "latchkey", buildVersion())
	return err
}
