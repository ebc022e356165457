package postgres

import "context"

// Classify is the dialect's classification, for the black-box tests.
var Classify = dialect{}.Classify

// HoldConnection takes a connection from the store's pool until release,
// for the pool metrics test.
func (s *Store) HoldConnection(ctx context.Context) (release func(), err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return conn.Release, nil
}
