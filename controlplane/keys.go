package controlplane

import (
	"fmt"
	"strings"
)

// Key layout under the prefix (default "/hogwire/"). Everything a data-plane
// node needs lives under "config/", so that one etcd watch on that prefix
// gives one totally ordered stream of changes:
//
//	config/projects/{project}                   Project (protobuf)
//	config/destinations/{project}/{destination} Destination, secrets sealed, no health
//	config/health/{project}/{destination}       DestinationHealth, written by the health manager
//	tokens/{capture token}                      project id
//	nodes/{node id}                             Node, attached to the node's lease
//	leader/                                     leader election
type keys struct{ prefix string }

func (k keys) config() string           { return k.prefix + "config/" }
func (k keys) projects() string         { return k.prefix + "config/projects/" }
func (k keys) project(id string) string { return k.projects() + id }
func (k keys) allDestinations() string  { return k.prefix + "config/destinations/" }
func (k keys) destinations(project string) string {
	return k.allDestinations() + project + "/"
}
func (k keys) destination(project, id string) string { return k.destinations(project) + id }
func (k keys) allHealth() string                     { return k.prefix + "config/health/" }
func (k keys) health(project, id string) string      { return k.allHealth() + project + "/" + id }
func (k keys) token(tok string) string               { return k.prefix + "tokens/" + tok }
func (k keys) nodes() string                         { return k.prefix + "nodes/" }
func (k keys) node(id string) string                 { return k.nodes() + id }
func (k keys) leader() string                        { return k.prefix + "leader/" }

// validID reports whether id has the shape of a project or destination id
// (AIP-122): a lowercase letter, then up to 62 lowercase letters, digits and
// hyphens.
func validID(id string) bool {
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

// parseProjectName parses "projects/{project}".
func parseProjectName(name string) (string, error) {
	id, ok := strings.CutPrefix(name, "projects/")
	if !ok || !validID(id) {
		return "", fmt.Errorf("%q is not a project name (projects/{project})", name)
	}
	return id, nil
}

// parseDestinationName parses "projects/{project}/destinations/{destination}";
// project may be "-" (ids are unique across projects).
func parseDestinationName(name string) (project, id string, err error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "projects" || parts[2] != "destinations" ||
		(parts[1] != "-" && !validID(parts[1])) || !validID(parts[3]) {
		return "", "", fmt.Errorf("%q is not a destination name (projects/{project}/destinations/{destination})", name)
	}
	return parts[1], parts[3], nil
}

func projectName(id string) string              { return "projects/" + id }
func destinationName(project, id string) string { return "projects/" + project + "/destinations/" + id }
