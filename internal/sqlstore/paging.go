package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cursor"
)

// listQuery is one keyset-paginated SELECT. Rows come in (timeColumn, id)
// order, so each page is an index range scan that starts where the last
// one ended: its cost depends on the page size, not on the table's size.
type listQuery struct {
	name       string // binds page tokens to this list
	columns    string
	from       string
	timeColumn string // the creation time column, qualified if needed
	idColumn   string
	where      []string
	args       []any
	bind       []string // every filter value, for the page-token binding
}

// filter adds a condition with its arguments; the values also bind page
// tokens, so a token cannot move between filters.
func (q *listQuery) filter(cond string, args ...any) {
	q.where = append(q.where, cond)
	q.args = append(q.args, args...)
	q.bind = append(q.bind, cond)
	for _, a := range args {
		q.bind = append(q.bind, fmt.Sprint(a))
	}
}

// filterLabels requires every pair of labels on the row's labels column.
func (q *listQuery) filterLabels(d Dialect, column string, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		q.filter(d.LabelCondition(column), k, labels[k])
	}
}

// list runs q for one page of req, scanning each row with scan.
func list[T any](ctx context.Context, s *Store, q listQuery, req latchkey.PageRequest,
	scan func(scanner) (T, error), position func(T) cursor.Position,
) (latchkey.Page[T], error) {
	desc := req.Order != latchkey.OrderCreateTimeAsc
	binding := cursor.Query(append([]string{q.name, strconv.FormatBool(desc)}, q.bind...)...)
	pos, hasPos, err := s.cursors.Decode(binding, req.Token)
	if err != nil {
		return latchkey.Page[T]{}, err
	}
	where := slices.Clone(q.where)
	args := slices.Clone(q.args)
	dir, cmp := "ASC", ">"
	if desc {
		dir, cmp = "DESC", "<"
	}
	if hasPos {
		where = append(where, fmt.Sprintf("(%s, %s) %s (?, ?)", q.timeColumn, q.idColumn, cmp))
		args = append(args, pos.Time, pos.ID)
	}
	limit := req.Limit()
	stmt := "SELECT " + q.columns + " FROM " + q.from
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	stmt += fmt.Sprintf(" ORDER BY %s %s, %s %s LIMIT %d", q.timeColumn, dir, q.idColumn, dir, limit+1)
	rows, err := s.read.QueryContext(ctx, stmt, args...)
	if err != nil {
		return latchkey.Page[T]{}, s.wrap(ctx, err)
	}
	defer rows.Close()
	var page latchkey.Page[T]
	for rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return latchkey.Page[T]{}, s.wrap(ctx, err)
		}
		page.Items = append(page.Items, item)
	}
	if err := rows.Err(); err != nil {
		return latchkey.Page[T]{}, s.wrap(ctx, err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.NextToken = s.cursors.Encode(binding, position(page.Items[limit-1]))
	}
	return page, nil
}

// queryRow runs a single-row read on the read pool.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.read.QueryRowContext(ctx, query, args...)
}
