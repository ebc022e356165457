package latchkey

// Order is the sort order of a list: by creation time, then id.
type Order int

// Orders, numbered as in the proto enum; unspecified means newest first.
const (
	OrderUnspecified Order = iota
	OrderCreateTimeDesc
	OrderCreateTimeAsc
)

// Paging bounds shared by every List method.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// PageRequest asks for one page of a list. Token is the opaque cursor from
// the previous page's NextToken; the store refuses a token that was forged
// or made for another query with a CodeInvalid error on "page_token".
type PageRequest struct {
	Size  int // 0 means DefaultPageSize
	Token string
	Order Order
}

// Limit returns the effective page size.
func (p PageRequest) Limit() int {
	switch {
	case p.Size <= 0:
		return DefaultPageSize
	case p.Size > MaxPageSize:
		return MaxPageSize
	default:
		return p.Size
	}
}

// Page is one page of results. NextToken is empty on the last page.
type Page[T any] struct {
	Items     []T
	NextToken string
}
