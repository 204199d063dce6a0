// Package resourcename parses and builds hogwire's resource names
// (AIP-122): "projects/{project}", "projects/{project}/destinations/{destination}"
// and "templates/{template}". Every part of hogwire that reads or writes a
// name does it here.
package resourcename

import (
	"fmt"
	"strings"
)

// Wildcard stands for any project in a destination name
// ("projects/-/destinations/hook"): destination ids are unique across
// projects.
const Wildcard = "-"

// ValidID reports whether id has the shape of a project or destination id:
// a lowercase letter, then up to 62 lowercase letters, digits and hyphens.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 63 || id[0] < 'a' || id[0] > 'z' {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// Project returns "projects/{id}".
func Project(id string) string { return "projects/" + id }

// Destination returns "projects/{project}/destinations/{id}".
func Destination(project, id string) string { return "projects/" + project + "/destinations/" + id }

// Template returns "templates/{id}".
func Template(id string) string { return "templates/" + id }

// ParseProject parses "projects/{project}".
func ParseProject(name string) (string, error) {
	id, ok := strings.CutPrefix(name, "projects/")
	if !ok || !ValidID(id) {
		return "", fmt.Errorf("%q is not a project name (projects/{project})", name)
	}
	return id, nil
}

// ParseDestination parses "projects/{project}/destinations/{destination}";
// project may be Wildcard.
func ParseDestination(name string) (project, id string, err error) {
	rest, ok := strings.CutPrefix(name, "projects/")
	project, rest, ok2 := strings.Cut(rest, "/")
	id, ok3 := strings.CutPrefix(rest, "destinations/")
	if !ok || !ok2 || !ok3 || (project != Wildcard && !ValidID(project)) || !ValidID(id) {
		return "", "", fmt.Errorf("%q is not a destination name (projects/{project}/destinations/{destination})", name)
	}
	return project, id, nil
}

// ProjectOf returns the project id of a project or destination name
// ("projects/{p}" or "projects/{p}/…"), or "" for any other string. It
// does not validate: it is for names that came from the control plane.
func ProjectOf(name string) string {
	rest, ok := strings.CutPrefix(name, "projects/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// IsDestination reports whether name has the form of a destination name.
func IsDestination(name string) bool {
	_, rest, ok := strings.Cut(strings.TrimPrefix(name, "projects/"), "/")
	return ok && strings.HasPrefix(rest, "destinations/")
}

// ID returns the last segment of a name: the id of the resource it names.
func ID(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// ProjectArg reads a project given on a command line: "projects/x" or "x".
func ProjectArg(arg string) string {
	if strings.HasPrefix(arg, "projects/") {
		return arg
	}
	return Project(arg)
}

// DestinationArg reads a destination given on a command line: a full name,
// or a bare id, which names the destination in whichever project it is.
func DestinationArg(arg string) string {
	if strings.Contains(arg, "/") {
		return arg
	}
	return Destination(Wildcard, arg)
}

// TemplateArg reads a template given on a command line: "templates/x" or "x".
func TemplateArg(arg string) string {
	if strings.HasPrefix(arg, "templates/") {
		return arg
	}
	return Template(arg)
}
