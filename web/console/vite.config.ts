import { defineConfig } from "vite";

// The console is built into dist/, which is committed and embedded in the
// binary by the Go package console (../../console). Asset names carry a
// content hash, so the server can serve them as immutable.
export default defineConfig({
  base: "/",
  // The generated code in ../../gen/ts imports @bufbuild/protobuf: resolve
  // it (and everything else) from this package's node_modules.
  resolve: { dedupe: ["@bufbuild/protobuf", "@connectrpc/connect", "@tanstack/react-query", "react", "react-dom"] },
  server: { fs: { allow: ["../.."] } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    // No inline script anywhere: the Content-Security-Policy forbids it.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    // The generated code carries the schema (buf.validate included) as
    // descriptors: about 140 KB gzipped in all, under the 250 KB budget.
    chunkSizeWarningLimit: 1000,
    rolldownOptions: {
      // TanStack Query marks its modules "use client", which means nothing
      // outside React Server Components.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
  },
});
