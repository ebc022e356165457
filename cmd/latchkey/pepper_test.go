package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/internal/pepper"
)

// pepperCmd runs `latchkey pepper args...` and returns what it printed.
func pepperCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out lockedBuffer
	err := pepperCommand(t.Context(), args, &out, &out)
	return out.String(), err
}

// statusRow returns the KEYS column of pepper id in `pepper status`.
func statusKeys(t *testing.T, status string, id int) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + strconv.Itoa(id) + `\s+\S+\s+(\d+)\s`).FindStringSubmatch(status)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func verifyCode(t *testing.T, srv started, caller, tok string) latchkeyv1.VerifyCode {
	t.Helper()
	res, err := newAuthClient("http://"+srv.addr, caller).Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res.GetCode()
}

// TestPepperRotation is the rotation of the README, step by step: keys
// issued under pepper 1, pepper 2 added, the keys verified (and so
// rehashed), pepper 1 retired, and every verified key still verifying; a
// key never verified since is counted by status and refused after a
// forced retirement, with a log line naming it.
func TestPepperRotation(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "latchkey.db")
	pepperFile := filepath.Join(dir, "latchkey.pepper")

	first := startServe(t, "--db", db)
	m := operatorLine.FindStringSubmatch(first.stderr.String())
	if m == nil {
		t.Fatalf("no operator key:\n%s", first.stderr)
	}
	operator := m[1]
	keys := latchkeyv1connect.NewApiKeyServiceClient(clientWithKey(first.addr, operator))
	var ids []string
	issue := func(name string) string {
		res, err := keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.GetApiKey().GetMetadata().GetId())
		return res.GetApiKey().GetSpec().GetToken()
	}
	used, unused := issue("used"), issue("never used after the rotation")
	unusedID := ids[1]
	page, err := keys.List(t.Context(), &latchkeyv1.ListRequest{PageSize: 1})
	if err != nil || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, next %q", err, page.GetNextPageToken())
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	out, err := pepperCmd(t, "add", "--db", db)
	if err != nil || !strings.Contains(out, "added pepper 2") {
		t.Fatalf("pepper add: %v\n%s", err, out)
	}
	if info, err := os.Stat(pepperFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("pepper file after add: %v, %v", info, err)
	}
	status, err := pepperCmd(t, "status", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	if n := statusKeys(t, status, 1); n != 3 { // the operator's system key and two
		t.Fatalf("status before any verification: %d keys under pepper 1, want 3\n%s", n, status)
	}

	second := startServe(t, "--db", db)
	keys = latchkeyv1connect.NewApiKeyServiceClient(clientWithKey(second.addr, operator))
	if code := verifyCode(t, second, operator, used); code != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
		t.Fatalf("a key of pepper 1 under peppers 1 and 2: %v", code)
	}
	fresh := issue("issued under pepper 2")
	_, err = keys.List(t.Context(), &latchkeyv1.ListRequest{PageSize: 1, PageToken: page.GetNextPageToken()})
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a page token of the old pepper: %v, want invalid_argument", err)
	}
	// The graceful stop writes the rehashes with the last-used times.
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}

	status, err = pepperCmd(t, "status", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	if under1, under2 := statusKeys(t, status, 1), statusKeys(t, status, 2); under1 != 1 || under2 != 3 {
		t.Fatalf("status after verification: pepper 1 %d keys, pepper 2 %d; want 1 (the unused key) and 3\n%s", under1, under2, status)
	}
	if !strings.Contains(status, "1 keys' secrets are hashed with a pepper older than 2") {
		t.Fatalf("status does not sum up what is left:\n%s", status)
	}

	if out, err := pepperCmd(t, "retire", "2", "--db", db); err == nil {
		t.Fatalf("the current pepper was retired:\n%s", out)
	}
	if out, err := pepperCmd(t, "retire", "1", "--db", db); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("retire while a key uses pepper 1: %v\n%s", err, out)
	}
	if held, _ := pepper.Load(pepperFile); len(held) != 2 {
		t.Fatal("a refused retirement changed the pepper file")
	}
	out, err = pepperCmd(t, "retire", "1", "--force", "--db", db)
	if err != nil {
		t.Fatalf("forced retire: %v\n%s", err, out)
	}
	if !strings.Contains(out, "1 keys were still hashed with it") || !strings.Contains(out, unusedID) {
		t.Fatalf("forced retire does not name the stranded keys:\n%s", out)
	}
	if held, _ := pepper.Load(pepperFile); len(held) != 1 || held[0].ID != 2 {
		t.Fatalf("pepper file after retire: %v", held)
	}

	// A server whose file lacks the pepper the keys now use refuses to
	// start, naming it: here a file whose only pepper is 3.
	lacking := filepath.Join(dir, "lacking.pepper")
	if _, err := pepper.Add(lacking, false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := pepper.Add(lacking, false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := pepper.Add(lacking, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := pepper.Remove(lacking, 1); err != nil {
		t.Fatal(err)
	}
	if err := pepper.Remove(lacking, 2); err != nil {
		t.Fatal(err)
	}
	// Should it start after all, it stops when the context ends, and the
	// nil error fails the test rather than hanging it.
	refusal, stop := context.WithTimeout(t.Context(), 15*time.Second)
	err = run(refusal, []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--pepper-file", lacking}, &lockedBuffer{})
	stop()
	if err == nil || !strings.Contains(err.Error(), "pepper 2") {
		t.Fatalf("start without the pepper the keys use: %v, want a refusal naming pepper 2", err)
	}

	third := startServe(t, "--db", db)
	defer third.stop()
	for name, tok := range map[string]string{"rehashed": used, "the operator's, rehashed": operator, "issued under pepper 2": fresh} {
		if code := verifyCode(t, third, operator, tok); code != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
			t.Errorf("%s key after pepper 1 retired: %v", name, code)
		}
	}
	if code := verifyCode(t, third, operator, unused); code != latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND {
		t.Errorf("the key never verified since: %v, want not found", code)
	}
	logs := third.stderr.String()
	if !strings.Contains(logs, "pepper this server does not hold") || !strings.Contains(logs, unusedID) {
		t.Errorf("no log line names the refused key:\n%s\nretire said:\n%s", logs, out)
	}
	for _, tok := range []string{used, unused, fresh, operator} {
		if strings.Contains(logs, tok) || strings.Contains(out, tok) || strings.Contains(status, tok) {
			t.Fatal("a token reached a log line or a command's output")
		}
	}
}

// TestStagedPepper is the rotation across replicas: a staged pepper is
// held, so hashes made with it would verify, but nothing is hashed or
// rehashed with it until it is promoted.
func TestStagedPepper(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "latchkey.db")
	first := startServe(t, "--db", db)
	m := operatorLine.FindStringSubmatch(first.stderr.String())
	if m == nil {
		t.Fatalf("no operator key:\n%s", first.stderr)
	}
	operator := m[1]
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	if out, err := pepperCmd(t, "add", "--staged", "--db", db); err != nil || !strings.Contains(out, "staged") {
		t.Fatalf("add --staged: %v\n%s", err, out)
	}

	second := startServe(t, "--db", db)
	keys := latchkeyv1connect.NewApiKeyServiceClient(clientWithKey(second.addr, operator))
	res, err := keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "while staged"}})
	if err != nil {
		t.Fatal(err)
	}
	if code := verifyCode(t, second, operator, res.GetApiKey().GetSpec().GetToken()); code != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
		t.Fatalf("verify while staged: %v", code)
	}
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	status, err := pepperCmd(t, "status", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	if under1, under2 := statusKeys(t, status, 1), statusKeys(t, status, 2); under1 != 2 || under2 != 0 {
		t.Fatalf("while staged: pepper 1 %d keys, pepper 2 %d; want 2 and 0 (nothing hashed with a staged pepper)\n%s", under1, under2, status)
	}
	if !strings.Contains(status, "staged") {
		t.Fatalf("status does not show the staged pepper:\n%s", status)
	}

	if out, err := pepperCmd(t, "promote", "2", "--db", db); err != nil {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	third := startServe(t, "--db", db)
	if code := verifyCode(t, third, operator, res.GetApiKey().GetSpec().GetToken()); code != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
		t.Fatalf("verify after promote: %v", code)
	}
	if err := third.stop(); err != nil {
		t.Fatal(err)
	}
	status, err = pepperCmd(t, "status", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	if under1, under2 := statusKeys(t, status, 1), statusKeys(t, status, 2); under1 != 0 || under2 != 2 {
		t.Fatalf("after promote: pepper 1 %d keys, pepper 2 %d; want 0 and 2\n%s", under1, under2, status)
	}
}

// An id retired in the database and gone from the file is never given to a
// new pepper: the server would take the new one for the wrong pepper.
func TestPepperIDsAreNotReused(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "latchkey.db")
	first := startServe(t, "--db", db)
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := pepperCmd(t, "add", "--staged", "--db", db); err != nil {
		t.Fatal(err)
	}
	second := startServe(t, "--db", db) // records pepper 2
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	if out, err := pepperCmd(t, "retire", "2", "--db", db); err != nil {
		t.Fatalf("retire the unused staged pepper: %v\n%s", err, out)
	}
	out, err := pepperCmd(t, "add", "--db", db)
	if err != nil || !strings.Contains(out, "added pepper 3") {
		t.Fatalf("add after retiring 2: %v\n%s", err, out)
	}
	third := startServe(t, "--db", db)
	if err := third.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := pepperCmd(t, "retire", "x"+strings.Repeat("A", 40), "--db", db); err == nil || strings.Contains(err.Error(), "AAAA") {
		t.Fatalf("a bad argument: %v, want an error that does not echo it", err)
	}
}
