package controlplane

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/hogwire/hogwire/controlplane/store"
)

// LeaderJob runs on the leader only, with a context that ends when
// leadership is lost.
type LeaderJob func(ctx context.Context)

// RunElection campaigns for leadership until ctx ends. While this replica
// leads, every job runs; when the lease is lost (this replica or its etcd
// connection dies) the jobs' context ends and another replica's campaign
// wins within about LeaderTTL.
func (s *Server) RunElection(ctx context.Context, jobs ...LeaderJob) error {
	ttl := int(s.cfg.LeaderTTL / time.Second)
	if ttl < 1 {
		ttl = 1
	}
	for ctx.Err() == nil {
		if err := s.lead(ctx, ttl, jobs); err != nil && ctx.Err() == nil {
			s.log.Warn("leader election", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func (s *Server) lead(ctx context.Context, ttl int, jobs []LeaderJob) error {
	sess, err := concurrency.NewSession(s.store.Etcd, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, s.store.Keys.Leader())
	if err := el.Campaign(ctx, s.replicaID); err != nil {
		return err
	}
	s.leader.Store(true)
	s.log.Info("became leader", "replica", s.replicaID)
	defer func() {
		s.leader.Store(false)
		s.log.Info("leadership ended", "replica", s.replicaID)
	}()
	jctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, len(jobs))
	for _, j := range jobs {
		go func() {
			defer func() { done <- struct{}{} }()
			j(jctx)
		}()
	}
	select {
	case <-ctx.Done():
	case <-sess.Done():
	}
	cancel()
	for range jobs {
		<-done
	}
	if ctx.Err() == nil {
		return errors.New("leader session expired")
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer rcancel()
	_ = el.Resign(rctx)
	return nil
}

// IsLeader reports whether this replica currently leads.
func (s *Server) IsLeader() bool { return s.leader.Load() }

// Leader returns the id of the current leader, or "" when there is none.
func (s *Server) Leader(ctx context.Context) (string, error) {
	resp, err := s.store.Etcd.Get(ctx, s.store.Keys.Leader(), clientv3.WithFirstCreate()...)
	if err != nil {
		return "", store.Err(err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}
