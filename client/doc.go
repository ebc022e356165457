// Package client protects another service with Latchkey: it verifies the
// API keys that the service's callers present, keeps verdicts in a bounded
// local cache, and drops a verdict the moment Latchkey's change stream
// says the key changed, so that caching never outlives a revocation.
//
// A Client verifies; Middleware, Interceptor and, in package
// grpcclient, the grpc-go interceptors put it in front of handlers. The
// package imports the generated API and Connect, never the server or its
// database drivers.
//
// The promise is the replicas' own: a revocation reaches the cache with
// the stream, usually within milliseconds; while the stream has been down
// for longer than Options.StaleAfter, the cache is bypassed and every
// verification asks Latchkey; when Latchkey cannot answer, verification
// fails closed.
package client
