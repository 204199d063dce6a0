package invocations

import (
	"strings"

	"github.com/hogwire/hogwire/resourcename"
)

// A rerun reaches data-plane nodes the way a slow destination's overflow
// does: its stored event, in a message of the event log whose
// DestinationHeader names the one destination to run, and whose
// RerunHeader says which rerun it belongs to and which invocation it runs
// again. Any node takes it from the shared work queue, so a rerun is as
// durable as any event, and runs under the destination's current state
// (disabled, quarantined, limits, retries).
//
// A rerun with the original revision sets RevisionHeader too: the
// destination's kept revision (a DestinationRevision.revision) whose code,
// inputs, filters and mappings run the event, which the node gets from the
// control plane (ConfigService.GetDestinationRevision).
const (
	DestinationHeader = "Hogwire-Destination"
	RerunHeader       = "Hogwire-Rerun"
	RevisionHeader    = "Hogwire-Revision"
)

// RerunHeaderValue is RerunHeader's value for the rerun of invocation of.
func RerunHeaderValue(rerun, of string) string { return rerun + " " + of }

// ParseRerunHeader reads RerunHeader's value.
func ParseRerunHeader(v string) (rerun, of string, ok bool) {
	rerun, of, ok = strings.Cut(v, " ")
	return rerun, of, ok && rerun != "" && of != ""
}

// RerunName is "projects/{project}/reruns/{id}".
func RerunName(project, id string) string {
	return resourcename.Project(project) + "/reruns/" + id
}

// ParseRerunName reads RerunName's form.
func ParseRerunName(name string) (project, id string, ok bool) {
	rest, ok := strings.CutPrefix(name, "projects/")
	if !ok {
		return "", "", false
	}
	project, id, ok = strings.Cut(rest, "/reruns/")
	if !ok || !resourcename.ValidID(project) || !resourcename.ValidID(id) {
		return "", "", false
	}
	return project, id, true
}

func projectOf(destination string) string {
	project, _, err := resourcename.ParseDestination(destination)
	if err != nil {
		return ""
	}
	return project
}
