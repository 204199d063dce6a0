package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/controlplane/store"
	"github.com/hogwire/hogwire/dataplane/eventlog"
	"github.com/hogwire/hogwire/invocations"
	"github.com/hogwire/hogwire/resourcename"
)

// Reruns. RerunInvocations chooses the invocations (by id or by filter),
// takes a lock per destination and event so that nothing is rerun twice
// at once, and stores the rerun — its state and its items — in the
// HOGWIRE_RERUNS bucket; then it answers. The leader's RerunJob runs every
// stored rerun that is running: it hands each item's stored event to the
// data plane as a message of the event log for that one destination (see
// invocations.RerunHeader), at most max_per_second a second and with at
// most twice that many unfinished, and follows the reruns' own records
// (indexed by rerun) to count what finished. A rerun is as durable as the
// bucket and the event log: a new leader resumes it where the last one
// stopped (the event log's duplicate window drops what was handed over
// twice), and a data-plane node that dies leaves its message to another.

const (
	rerunBucket = "HOGWIRE_RERUNS"
	// maxRerun is the most invocations one rerun runs again (PostHog's
	// cap too).
	maxRerun = 10000
	// maxRerunRange is the longest time range a filter may cover.
	maxRerunRange = 30 * 24 * time.Hour
	// defaultRerunRange is the range of a filter without a start time.
	defaultRerunRange = invocations.DefaultMaxAge
	defaultRerunRate  = 50
	maxRerunRate      = 1000
	rerunChunk        = 1000
	// rerunKeep is how long a finished rerun stays listed.
	rerunKeep = 30 * 24 * time.Hour
)

// rerunJob is a rerun as the bucket stores it, under "j.{project}.{id}".
type rerunJob struct {
	ID           string `json:"id"`
	Project      string `json:"project"`
	Parent       string `json:"parent"`
	Filter       []byte `json:"filter,omitempty"` // an InvocationFilter
	Total        int    `json:"total"`
	Truncated    bool   `json:"truncated,omitempty"`
	Chunks       int    `json:"chunks"`
	MaxPerSecond int    `json:"max_per_second"`
	State        int32  `json:"state"` // a RerunState
	Started      int    `json:"started"`
	Succeeded    int    `json:"succeeded"`
	Failed       int    `json:"failed"`
	Skipped      int    `json:"skipped"`
	Missing      int    `json:"missing"`
	// OriginalRevision runs each item with its Rev (see rerunItem).
	OriginalRevision bool `json:"original_revision,omitempty"`
	// NotRerunnable counts the invocations selected but left out, and
	// Reasons says why.
	NotRerunnable int       `json:"not_rerunnable,omitempty"`
	Reasons       []string  `json:"reasons,omitempty"`
	Created       time.Time `json:"created"`
	Ended         time.Time `json:"ended,omitzero"`
}

// rerunItem is one invocation to run again: its id, its destination's id
// and its event's uuid, and the destination's revision it ran with (for a
// rerun with the original revision, the kept revision in effect then). A
// rerun's items are stored in chunks under "i.{project}.{id}.{n}".
type rerunItem struct {
	ID   string `json:"i"`
	Dest string `json:"d"`
	UUID string `json:"u"`
	Rev  int64  `json:"r,omitempty"`
}

// rerunLock is held, under "l.{project}.{destination}.{hash of uuid}", by
// the rerun running an event on a destination again.
type rerunLock struct {
	Rerun      string `json:"rerun"`
	Invocation string `json:"invocation"`
}

func jobKey(project, id string) string { return "j." + project + "." + id }

func chunkKey(project, id string, n int) string {
	return "i." + project + "." + id + "." + strconv.Itoa(n)
}

func lockKey(project string, it rerunItem) string {
	h := sha256.Sum256([]byte(it.UUID))
	return "l." + project + "." + it.Dest + "." + hex.EncodeToString(h[:12])
}

const (
	rerunRunning   = int32(hogwirev1.RerunState_RERUN_STATE_RUNNING)
	rerunSucceeded = int32(hogwirev1.RerunState_RERUN_STATE_SUCCEEDED)
	rerunCancelled = int32(hogwirev1.RerunState_RERUN_STATE_CANCELLED)
)

// reruns keeps reruns in the bucket and hands their work to the data
// plane.
type reruns struct {
	kv  jetstream.KeyValue
	js  jetstream.JetStream
	now func() time.Time
}

func openReruns(ctx context.Context, cfg TelemetryConfig) (*reruns, error) {
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: rerunBucket,
		Description: "reruns of invocations: their state, items and locks", Storage: storage,
		Replicas: max(cfg.Replicas, 1)})
	if err != nil {
		return nil, fmt.Errorf("reruns: bucket %s: %w", rerunBucket, err)
	}
	return &reruns{kv: kv, js: js, now: time.Now}, nil
}

func (r *reruns) job(ctx context.Context, project, id string) (*rerunJob, uint64, error) {
	e, err := r.kv.Get(ctx, jobKey(project, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, store.NotFound("rerun", invocations.RerunName(project, id))
	}
	if err != nil {
		return nil, 0, status.Errorf(codes.Unavailable, "reading rerun: %v", err)
	}
	j := &rerunJob{}
	if err := json.Unmarshal(e.Value(), j); err != nil {
		return nil, 0, status.Errorf(codes.DataLoss, "decoding rerun %s: %v", id, err)
	}
	return j, e.Revision(), nil
}

func (r *reruns) items(ctx context.Context, j *rerunJob) ([]rerunItem, error) {
	var out []rerunItem
	for n := range j.Chunks {
		e, err := r.kv.Get(ctx, chunkKey(j.Project, j.ID, n))
		if err != nil {
			return nil, err
		}
		var chunk []rerunItem
		if err := json.Unmarshal(e.Value(), &chunk); err != nil {
			return nil, err
		}
		out = append(out, chunk...)
	}
	return out, nil
}

// lock takes the lock of each item for rerun id, all or none: an item
// locked by a rerun still running is refused, naming the invocation.
func (r *reruns) lock(ctx context.Context, project, id string, items []rerunItem) error {
	var taken []string
	undo := func() {
		for _, k := range taken {
			_ = r.kv.Delete(context.WithoutCancel(ctx), k)
		}
	}
	for _, it := range items {
		k := lockKey(project, it)
		val, _ := json.Marshal(rerunLock{Rerun: id, Invocation: it.ID})
		_, err := r.kv.Create(ctx, k, val)
		if errors.Is(err, jetstream.ErrKeyExists) {
			held, rev, herr := r.holder(ctx, k)
			if herr == nil && held != nil {
				undo()
				return rerunInProgress(project, it, held)
			}
			// The holder ended without letting go (its leader died while
			// ending it): take the lock over.
			_, err = r.kv.Update(ctx, k, val, rev)
		}
		if err != nil {
			undo()
			return status.Errorf(codes.Unavailable, "locking invocation %s: %v", it.ID, err)
		}
		taken = append(taken, k)
	}
	return nil
}

// holder returns the lock at k when the rerun holding it still runs.
func (r *reruns) holder(ctx context.Context, k string) (*rerunLock, uint64, error) {
	e, err := r.kv.Get(ctx, k)
	if err != nil {
		return nil, 0, err
	}
	var l rerunLock
	if json.Unmarshal(e.Value(), &l) != nil {
		return nil, e.Revision(), nil
	}
	project := strings.SplitN(k, ".", 3)[1]
	j, _, err := r.job(ctx, project, l.Rerun)
	if err != nil || j.State != rerunRunning {
		return nil, e.Revision(), nil
	}
	return &l, e.Revision(), nil
}

func rerunInProgress(project string, it rerunItem, held *rerunLock) error {
	name := resourcename.Project(project) + "/invocations/" + it.ID
	msg := fmt.Sprintf("invocation %s is already being rerun by %s (destination %s, event %s)",
		it.ID, invocations.RerunName(project, held.Rerun), it.Dest, it.UUID)
	if held.Invocation != it.ID {
		msg += fmt.Sprintf(", as invocation %s", held.Invocation)
	}
	st := status.New(codes.FailedPrecondition, msg+"; cancel it or wait for it to finish")
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: "RERUN_IN_PROGRESS", Subject: name, Description: msg}}}); err == nil {
		st = d
	}
	return st.Err()
}

// unlock lets go of the locks of the items that j still holds.
func (r *reruns) unlock(ctx context.Context, j *rerunJob, items []rerunItem) {
	for _, it := range items {
		k := lockKey(j.Project, it)
		e, err := r.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var l rerunLock
		if json.Unmarshal(e.Value(), &l) == nil && l.Rerun == j.ID {
			_ = r.kv.Delete(ctx, k, jetstream.LastRevision(e.Revision()))
		}
	}
}

// create stores a new rerun of items, locked first.
func (r *reruns) create(ctx context.Context, j *rerunJob, items []rerunItem) error {
	if err := r.lock(ctx, j.Project, j.ID, items); err != nil {
		return err
	}
	for n := 0; n*rerunChunk < len(items); n++ {
		val, err := json.Marshal(items[n*rerunChunk : min((n+1)*rerunChunk, len(items))])
		if err == nil {
			_, err = r.kv.Put(ctx, chunkKey(j.Project, j.ID, n), val)
		}
		if err != nil {
			r.unlock(context.WithoutCancel(ctx), j, items)
			return status.Errorf(codes.Unavailable, "storing rerun: %v", err)
		}
		j.Chunks = n + 1
	}
	val, err := json.Marshal(j)
	if err == nil {
		_, err = r.kv.Create(ctx, jobKey(j.Project, j.ID), val)
	}
	if err != nil {
		r.unlock(context.WithoutCancel(ctx), j, items)
		return status.Errorf(codes.Unavailable, "storing rerun: %v", err)
	}
	return nil
}

// newRerunID makes a rerun id: time-ordered, valid as a resource id.
func newRerunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "r" + strconv.FormatInt(now.UnixMilli(), 36) + "-" + hex.EncodeToString(b[:])
}

func (j *rerunJob) proto() *hogwirev1.Rerun {
	pb := &hogwirev1.Rerun{Name: invocations.RerunName(j.Project, j.ID), State: hogwirev1.RerunState(j.State),
		Parent: j.Parent, Total: int32(j.Total), Truncated: j.Truncated, MaxInvocations: maxRerun,
		Started: int32(j.Started), Succeeded: int32(j.Succeeded), Failed: int32(j.Failed), Skipped: int32(j.Skipped),
		Missing: int32(j.Missing), MaxPerSecond: int32(j.MaxPerSecond), CreateTime: timestamppb.New(j.Created),
		OriginalRevision: j.OriginalRevision, NotRerunnable: int32(j.NotRerunnable), NotRerunnableReasons: j.Reasons}
	if len(j.Filter) > 0 {
		pb.Filter = &hogwirev1.InvocationFilter{}
		_ = proto.Unmarshal(j.Filter, pb.Filter)
	}
	if !j.Ended.IsZero() {
		pb.EndTime = timestamppb.New(j.Ended)
	}
	return pb
}

// runAll runs the running reruns until ctx ends (a LeaderJob).
func (r *reruns) runAll(ctx context.Context, st *invocations.Store) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	running := map[string]bool{}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if keys, err := r.kv.ListKeysFiltered(ctx, "j.>"); err == nil {
			for k := range keys.Keys() {
				mu.Lock()
				busy := running[k]
				mu.Unlock()
				if busy {
					continue
				}
				parts := strings.SplitN(k, ".", 3)
				j, _, err := r.job(ctx, parts[1], parts[2])
				if err != nil {
					continue
				}
				if j.State != rerunRunning {
					if !j.Ended.IsZero() && r.now().Sub(j.Ended) > rerunKeep {
						r.forget(ctx, j)
					}
					continue
				}
				mu.Lock()
				running[k] = true
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					r.run(ctx, st, j)
					mu.Lock()
					delete(running, k)
					mu.Unlock()
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// forget deletes a rerun that ended long ago.
func (r *reruns) forget(ctx context.Context, j *rerunJob) {
	for n := range j.Chunks {
		_ = r.kv.Purge(ctx, chunkKey(j.Project, j.ID, n))
	}
	_ = r.kv.Purge(ctx, jobKey(j.Project, j.ID))
}

// run hands j's items to the data plane and follows their records until
// every one finished, j is cancelled, or ctx ends (leadership is lost: the
// next leader goes on).
func (r *reruns) run(ctx context.Context, st *invocations.Store, j *rerunJob) {
	items, err := r.items(ctx, j)
	if err != nil {
		return
	}
	rate := max(j.MaxPerSecond, 1)
	window := max(2*rate, 10)
	// What finished, by invocation id: the status of its rerun's record,
	// or UNSPECIFIED when its event was not stored any more.
	done := map[string]hogwirev1.InvocationStatus{}
	var from invocations.Cursor
	follow := func() {
		for ctx.Err() == nil {
			recs, next, err := st.List(ctx, j.Project, invocations.Filter{Rerun: j.ID}, 1000, from)
			if err != nil {
				return
			}
			for _, rec := range recs {
				if rec.GetStatus() != hogwirev1.InvocationStatus_INVOCATION_STATUS_PARKED {
					done[rec.GetRerunOf()] = rec.GetStatus()
				}
				c, _ := invocations.ParseCursor(rec.GetId())
				from = invocations.Cursor{Seq: c.Seq, Item: c.Item + 1}
			}
			if next == (invocations.Cursor{}) {
				return
			}
			from = next
		}
	}
	tick := 100 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	budget := 0.0
	lastSave := time.Time{}
	for {
		follow()
		budget = min(budget+float64(rate)*tick.Seconds(), float64(rate))
		for j.Started < len(items) && budget >= 1 && j.Started-len(done) < window && ctx.Err() == nil {
			it := items[j.Started]
			if !r.handOver(ctx, st, j, it) {
				done[it.ID] = hogwirev1.InvocationStatus_INVOCATION_STATUS_UNSPECIFIED
			}
			j.Started++
			budget--
		}
		j.Succeeded, j.Failed, j.Skipped, j.Missing = 0, 0, 0, 0
		for _, s := range done {
			switch s {
			case hogwirev1.InvocationStatus_INVOCATION_STATUS_SUCCEEDED:
				j.Succeeded++
			case hogwirev1.InvocationStatus_INVOCATION_STATUS_FAILED:
				j.Failed++
			case hogwirev1.InvocationStatus_INVOCATION_STATUS_UNSPECIFIED:
				j.Missing++
			default:
				j.Skipped++
			}
		}
		finished := len(done) >= len(items)
		if finished || r.now().Sub(lastSave) >= 500*time.Millisecond {
			if finished {
				j.State, j.Ended = rerunSucceeded, r.now()
			}
			ok, stop := r.save(ctx, j)
			if ok {
				lastSave = r.now()
			}
			if stop || (finished && ok) {
				if finished && ok {
					r.unlock(context.WithoutCancel(ctx), j, items)
				}
				return
			}
			if finished {
				j.State, j.Ended = rerunRunning, time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// save stores j's progress unless it was cancelled meanwhile (stop).
func (r *reruns) save(ctx context.Context, j *rerunJob) (ok, stop bool) {
	cur, rev, err := r.job(ctx, j.Project, j.ID)
	if err != nil {
		return false, status.Code(err) == codes.NotFound
	}
	if cur.State != rerunRunning {
		return false, true
	}
	val, err := json.Marshal(j)
	if err != nil {
		return false, true
	}
	_, err = r.kv.Update(ctx, jobKey(j.Project, j.ID), val, rev)
	return err == nil, false
}

// handOver stores the event of it in the event log for its destination;
// false when the event is not stored any more (it expired). An event not
// found for an invocation stored moments ago is asked for again: the
// index may not point at it yet (invocations.IndexLag).
func (r *reruns) handOver(ctx context.Context, st *invocations.Store, j *rerunJob, it rerunItem) bool {
	for ctx.Err() == nil {
		data, err := st.Event(ctx, j.Project, it.UUID)
		if errors.Is(err, invocations.ErrNotFound) && !st.Unindexed(ctx, it.ID) {
			return false
		}
		if err == nil {
			h := nats.Header{
				invocations.DestinationHeader: {resourcename.Destination(j.Project, it.Dest)},
				invocations.RerunHeader:       {invocations.RerunHeaderValue(j.ID, it.ID)},
				jetstream.MsgIDHeader:         {"rerun-" + j.ID + "-" + it.ID},
			}
			if j.OriginalRevision {
				h.Set(invocations.RevisionHeader, strconv.FormatInt(it.Rev, 10))
			}
			m := eventlog.NewMessage(j.Project, [][]byte{data}, h)
			if _, err = r.js.PublishMsg(ctx, m); err == nil {
				return true
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return true
}

// cancel ends j unless it ended already, and lets go of its locks.
func (r *reruns) cancel(ctx context.Context, project, id string) (*rerunJob, error) {
	for {
		j, rev, err := r.job(ctx, project, id)
		if err != nil {
			return nil, err
		}
		if j.State != rerunRunning {
			return j, nil
		}
		j.State, j.Ended = rerunCancelled, r.now()
		val, _ := json.Marshal(j)
		if _, err := r.kv.Update(ctx, jobKey(project, id), val, rev); err != nil {
			if ctx.Err() != nil {
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			continue // it made progress meanwhile
		}
		if items, err := r.items(ctx, j); err == nil {
			r.unlock(ctx, j, items)
		}
		return j, nil
	}
}

// list returns project's reruns, newest first.
func (r *reruns) list(ctx context.Context, project string) ([]*rerunJob, error) {
	keys, err := r.kv.ListKeysFiltered(ctx, "j."+project+".*")
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "listing reruns: %v", err)
	}
	var out []*rerunJob
	for k := range keys.Keys() {
		if j, _, err := r.job(ctx, project, strings.TrimPrefix(k, "j."+project+".")); err == nil {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b *rerunJob) int { return b.Created.Compare(a.Created) })
	return out, nil
}
