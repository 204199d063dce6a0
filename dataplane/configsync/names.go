package configsync

import "strings"

// projectID returns the project id of "projects/{p}" or
// "projects/{p}/destinations/{d}".
func projectID(name string) string {
	rest, ok := strings.CutPrefix(name, "projects/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

func isDestination(name string) bool { return strings.Contains(name, "/destinations/") }
