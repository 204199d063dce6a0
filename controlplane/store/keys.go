package store

// Keys is the key layout under the prefix (default "/hogwire/").
// Everything a data-plane node needs lives under "config/", so that one
// etcd watch on that prefix gives one totally ordered stream of changes:
//
//	config/projects/{project}                   Project (protobuf)
//	config/destinations/{project}/{destination} Destination, secrets sealed, no health
//	config/health/{project}/{destination}       DestinationHealth, written by the health manager
//	history/{project}/{destination}/{revision}  DestinationRevision, outside config/
//	tokens/{capture token}                      project id
//	nodes/{node id}                             Node, attached to the node's lease
//	leader/                                     leader election
type Keys struct{ prefix string }

// NewKeys returns the layout under prefix.
func NewKeys(prefix string) Keys { return Keys{prefix} }

func (k Keys) Prefix() string           { return k.prefix }
func (k Keys) Config() string           { return k.prefix + "config/" }
func (k Keys) Projects() string         { return k.prefix + "config/projects/" }
func (k Keys) Project(id string) string { return k.Projects() + id }
func (k Keys) AllDestinations() string  { return k.prefix + "config/destinations/" }
func (k Keys) Destinations(project string) string {
	return k.AllDestinations() + project + "/"
}
func (k Keys) Destination(project, id string) string { return k.Destinations(project) + id }
func (k Keys) AllHealth() string                     { return k.prefix + "config/health/" }
func (k Keys) ProjectHealth(project string) string   { return k.AllHealth() + project + "/" }
func (k Keys) Health(project, id string) string      { return k.ProjectHealth(project) + id }
func (k Keys) History(project, id string) string {
	return k.prefix + "history/" + project + "/" + id + "/"
}
func (k Keys) Token(tok string) string { return k.prefix + "tokens/" + tok }
func (k Keys) Nodes() string           { return k.prefix + "nodes/" }
func (k Keys) Node(id string) string   { return k.Nodes() + id }
func (k Keys) Leader() string          { return k.prefix + "leader/" }
