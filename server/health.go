package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/grpchealth"
)

// servingState is what the health service says: SERVING while the server
// is not draining and the store answered within the bound, else
// NOT_SERVING, so that a load balancer moves traffic away from a replica
// that cannot verify anything.
type servingState struct {
	mu          sync.Mutex
	draining    bool
	started     bool      // SetServing(true) was called
	storeDown   time.Time // when the store stopped answering; zero while it answers
	unreachable bool      // down for longer than the bound
	serving     bool      // what was last published
}

// SetServing sets whether the server serves: true once it listens, false
// while a shutdown drains. The store's health (MonitorStore) is asked too.
func (s *Server) SetServing(serving bool) {
	s.serving.mu.Lock()
	s.serving.started = serving
	s.serving.draining = !serving
	s.serving.mu.Unlock()
	s.publishHealth()
}

// MonitorStore pings the store every interval until ctx ends and says
// NOT_SERVING while it has not answered for longer than bound, SERVING
// again once it answers. Each change is logged once.
func (s *Server) MonitorStore(ctx context.Context, interval, bound time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		pingCtx, cancel := context.WithTimeout(ctx, interval)
		err := s.store.Ping(pingCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := s.now()
		s.serving.mu.Lock()
		was := s.serving.unreachable
		if err == nil {
			s.serving.storeDown, s.serving.unreachable = time.Time{}, false
		} else {
			if s.serving.storeDown.IsZero() {
				s.serving.storeDown = now
			}
			s.serving.unreachable = now.Sub(s.serving.storeDown) > bound
		}
		is, since := s.serving.unreachable, s.serving.storeDown
		s.serving.mu.Unlock()
		switch {
		case is && !was:
			s.logger.Warn("the database has not answered for longer than the bound: health says NOT_SERVING", "bound", bound, "since", since, "err", err)
		case was && !is:
			s.logger.Info("the database answers again: health says SERVING")
		}
		s.publishHealth()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// publishHealth sets the health service's status from the state.
func (s *Server) publishHealth() {
	s.serving.mu.Lock()
	serving := s.serving.started && !s.serving.draining && !s.serving.unreachable
	s.serving.serving = serving
	s.serving.mu.Unlock()
	status := grpchealth.StatusNotServing
	if serving {
		status = grpchealth.StatusServing
	}
	s.health.SetStatus("", status)
	for _, name := range serviceNames {
		s.health.SetStatus(name, status)
	}
}

// Healthz returns a plain HTTP health check for load balancers that
// cannot speak gRPC health: 200 SERVING or 503 NOT_SERVING, the same
// answer as grpc.health.v1.
func (s *Server) Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serving.mu.Lock()
		serving := s.serving.serving
		s.serving.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		if !serving {
			http.Error(w, "NOT_SERVING", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("SERVING\n"))
	})
}
