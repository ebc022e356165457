// Package webconsole holds the console's built files: web/console/dist,
// which Vite makes from the TypeScript sources beside this file and which
// is committed, so that a binary built without Node still serves the
// console. A go:embed pattern cannot reach outside its package's
// directory, so the embedding lives here, beside dist, and package console
// (../../console) serves what it holds.
package webconsole

import "embed"

// Dist is the contents of dist/, under the directory name "dist".
//
//go:embed all:dist
var Dist embed.FS
