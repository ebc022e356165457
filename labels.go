package latchkey

import (
	"regexp"
	"strings"
)

var labelPattern = regexp.MustCompile(`^[a-z0-9]([-_.a-z0-9]*[a-z0-9])?$`)

// Label limits of the contract.
const (
	MaxLabels      = 64
	MaxLabelLength = 63
)

// ValidLabel reports whether s may be a label key or value.
func ValidLabel(s string) bool {
	return len(s) <= MaxLabelLength && labelPattern.MatchString(s)
}

// ParseLabelSelector parses "env=prod,team=ai" into the pairs that must all
// match. The empty selector matches everything. A pair named twice with
// two values can match nothing and is refused.
func ParseLabelSelector(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	pairs := strings.Split(s, ",")
	if len(pairs) > MaxLabels {
		return nil, InvalidField("label_selector", "at most %d pairs", MaxLabels)
	}
	out := make(map[string]string, len(pairs))
	for _, pair := range pairs {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || !ValidLabel(k) || !ValidLabel(v) {
			return nil, InvalidField("label_selector", "must be key=value pairs separated by commas")
		}
		if old, dup := out[k]; dup && old != v {
			return nil, InvalidField("label_selector", "label %q is named twice with different values", k)
		}
		out[k] = v
	}
	return out, nil
}
