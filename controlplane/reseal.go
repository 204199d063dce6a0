package controlplane

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
)

// rotator is implemented by Sealers that know older keys (secrets.Keyring).
type rotator interface {
	NeedsRotation(sealed string) bool
}

// ResealSecrets re-encrypts, under the primary key, every secret input
// still sealed with an older key, and returns how many destinations it
// rewrote. After a key rotation (a new primary key first in the key file,
// the old key after it) the leader runs it at start; once it has run, the
// old key can be removed from the file.
func (s *Server) ResealSecrets(ctx context.Context) (int, error) {
	return s.destinations.resealSecrets(ctx)
}

func (s *destinationServer) resealSecrets(ctx context.Context) (int, error) {
	rot, ok := s.store.Sealer.(rotator)
	if !ok {
		return 0, nil
	}
	resp, err := s.store.Etcd.Get(ctx, s.store.Keys.AllDestinations(), clientv3.WithPrefix())
	if err != nil {
		return 0, store.Err(err)
	}
	n := 0
	for _, kv := range resp.Kvs {
		d := &hogwirev1.Destination{}
		if proto.Unmarshal(kv.Value, d) != nil {
			continue
		}
		stale := false
		for _, in := range d.Inputs {
			if in.SecretSet && in.Value != nil && rot.NeedsRotation(in.Value.GetStringValue()) {
				stale = true
			}
		}
		if !stale {
			continue
		}
		// mutate unseals with whichever key matches and seals with the
		// primary; a concurrent user edit simply wins and seals anew too.
		if _, err := s.mutate(ctx, d.Name, "", false, func(*hogwirev1.Destination) error { return nil }); err != nil {
			s.log.Warn("re-sealing secrets", "destination", d.Name, "err", err)
			continue
		}
		n++
	}
	return n, nil
}

// ResealJob is a LeaderJob running ResealSecrets once per leadership.
func (s *Server) ResealJob(ctx context.Context) {
	n, err := s.ResealSecrets(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("re-sealing secrets under the primary key", "err", err)
	case n > 0:
		s.log.Info("re-sealed secrets under the primary key", "destinations", n)
	}
	<-ctx.Done()
}
