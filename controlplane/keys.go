package controlplane

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
