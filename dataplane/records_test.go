package dataplane_test

import (
	"context"
	"testing"
	"time"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

// waitRecords waits until the invocation records of parent that f selects
// number want, and returns them.
func waitRecords(t *testing.T, st *stack, parent string, f *hogwirev1.InvocationFilter, want int) []*hogwirev1.Invocation {
	t.Helper()
	client := hogwirev1.NewInvocationServiceClient(st.admin)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.ListInvocations(context.Background(), &hogwirev1.ListInvocationsRequest{Parent: parent, Filter: f, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetInvocations()) == want {
			return resp.GetInvocations()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %v: %d records, want %d", parent, f, len(resp.GetInvocations()), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func skipped(kind string) *hogwirev1.InvocationFilter {
	return &hogwirev1.InvocationFilter{Statuses: []hogwirev1.InvocationStatus{hogwirev1.InvocationStatus_INVOCATION_STATUS_SKIPPED}, ErrorKind: kind}
}
