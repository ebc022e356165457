package token

import (
	"hash/crc32"
	"unsafe"
)

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// checksum returns the CRC32 (IEEE) of body as exactly six base62 digits,
// most significant first, so that checksums have a fixed width.
func checksum(body string) [checksumLength]byte {
	// crc32 only reads its input, so the string's bytes are lent to it
	// rather than copied: this runs on every verification.
	v := uint64(crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(body), len(body))))
	var out [checksumLength]byte
	for i := checksumLength - 1; i >= 0; i-- {
		out[i] = base62Alphabet[v%62]
		v /= 62
	}
	return out
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
