package cursor_test

import (
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cursor"
)

func TestRoundTrip(t *testing.T) {
	c := cursor.New([]byte("key one"))
	q := cursor.Query("keys", "acct_1", "active")
	want := cursor.Position{Time: 1763800000123456789, ID: "key_01KAAAAAAAAAAAAAAAAAAAAAAA"}
	got, ok, err := c.Decode(q, c.Encode(q, want))
	if err != nil || !ok || got != want {
		t.Fatalf("Decode(Encode(%v)) = %v, %v, %v", want, got, ok, err)
	}
}

func TestEmptyTokenIsFirstPage(t *testing.T) {
	_, ok, err := cursor.New([]byte("k")).Decode(cursor.Query("keys"), "")
	if ok || err != nil {
		t.Fatalf("empty token: ok=%v err=%v", ok, err)
	}
}

func TestRefusesForeignTokens(t *testing.T) {
	c := cursor.New([]byte("key one"))
	q := cursor.Query("keys", "acct_1", "active")
	tok := c.Encode(q, cursor.Position{Time: 42, ID: "key_x"})
	tampered := []byte(tok)
	tampered[3] ^= 1
	cases := map[string]struct {
		codec *cursor.Codec
		query []byte
		token string
	}{
		"tampered":      {c, q, string(tampered)},
		"other key":     {cursor.New([]byte("key two")), q, tok},
		"other query":   {c, cursor.Query("keys", "acct_2", "active"), tok},
		"not base64":    {c, q, "!!!"},
		"too short":     {c, q, "AAAA"},
		"truncated tag": {c, q, tok[:len(tok)-2]},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := tc.codec.Decode(tc.query, tc.token)
			var e *latchkey.Error
			if err == nil || latchkey.ErrorCode(err) != latchkey.CodeInvalid {
				t.Fatalf("Decode accepted a foreign token: err=%v", err)
			}
			if e, _ = err.(*latchkey.Error); e.Field != "page_token" {
				t.Fatalf("error names field %q, want page_token", e.Field)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	c := cursor.New([]byte("fuzz key"))
	q := cursor.Query("keys")
	f.Add(c.Encode(q, cursor.Position{Time: 1, ID: "key_a"}))
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		pos, ok, err := c.Decode(q, tok)
		if err == nil && ok && c.Encode(q, pos) != tok {
			t.Fatalf("accepted token %q does not re-encode to itself", tok)
		}
	})
}
