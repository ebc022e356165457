package oidc

// SignatureChecks is how many signatures v checked against a key, so that
// a test can tell a remembered verification from a fresh one.
func SignatureChecks(v *Verifier) int64 {
	p := v.p.Load()
	if p == nil {
		return 0
	}
	return p.keys.checks.Load()
}
