package charts_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podOf describes a client in the cluster for NetworkPolicy checks.
type podOf struct {
	labels, nsLabels map[string]string
	namespace        string
}

func componentPod(component string) podOf {
	return podOf{
		labels:    map[string]string{"app.kubernetes.io/name": "hogwire", "app.kubernetes.io/instance": "hogwire", "app.kubernetes.io/component": component},
		namespace: namespace, nsLabels: map[string]string{"kubernetes.io/metadata.name": namespace},
	}
}

var stranger = podOf{labels: map[string]string{"app": "curious"}, namespace: "other", nsLabels: map[string]string{"kubernetes.io/metadata.name": "other"}}

// allowed evaluates the release's NetworkPolicies as the API defines them:
// a pod selected by any policy accepts only what some rule allows.
func allowed(t *testing.T, r *release, target map[string]string, c *corev1.Container, port string, from podOf) bool {
	t.Helper()
	selected := false
	for _, np := range objectsOf[*networkingv1.NetworkPolicy](r) {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Fatal(err)
		}
		if !sel.Matches(labels.Set(target)) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		selected = true
		for _, rule := range np.Spec.Ingress {
			if !portMatches(t, rule.Ports, c, port) {
				continue
			}
			if len(rule.From) == 0 {
				return true
			}
			for _, peer := range rule.From {
				if peerMatches(t, peer, np.Namespace, from) {
					return true
				}
			}
		}
	}
	return !selected
}

func portMatches(t *testing.T, ports []networkingv1.NetworkPolicyPort, c *corev1.Container, port string) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil || p.Port.String() == port || resolvePort(t, c, *p.Port) == resolvePort(t, c, intstrFromName(port)) {
			return true
		}
	}
	return false
}

func peerMatches(t *testing.T, peer networkingv1.NetworkPolicyPeer, policyNS string, from podOf) bool {
	match := func(s *metav1.LabelSelector, l map[string]string) bool {
		sel, err := metav1.LabelSelectorAsSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		return sel.Matches(labels.Set(l))
	}
	if peer.IPBlock != nil {
		return false
	}
	if peer.NamespaceSelector == nil && from.namespace != policyNS {
		return false
	}
	if peer.NamespaceSelector != nil && !match(peer.NamespaceSelector, from.nsLabels) {
		return false
	}
	return peer.PodSelector == nil || match(peer.PodSelector, from.labels)
}

// The capture API is public; the control plane's gRPC API, etcd and NATS
// answer only the release's own pods and the peers the values list.
func TestNetworkPoliciesKeepStoresAndAdminPrivate(t *testing.T) {
	sidecars := podOf{labels: map[string]string{"app.kubernetes.io/name": "shop"}, namespace: "shop",
		nsLabels: map[string]string{"kubernetes.io/metadata.name": "shop", "hogwire.io/sidecars": "true"}}
	r := render(t, renderOpts{values: map[string]any{"networkPolicy": map[string]any{"extraClients": []any{
		map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"hogwire.io/sidecars": "true"}}},
	}}}})
	pods := map[string]struct {
		labels map[string]string
		c      *corev1.Container
	}{}
	for _, d := range objectsOf[*appsv1.Deployment](r) {
		comp := d.Labels["app.kubernetes.io/component"]
		pods[comp] = struct {
			labels map[string]string
			c      *corev1.Container
		}{d.Spec.Template.Labels, container(t, &d.Spec.Template.Spec, comp)}
	}
	for _, s := range objectsOf[*appsv1.StatefulSet](r) {
		comp := s.Labels["app.kubernetes.io/component"]
		pods[comp] = struct {
			labels map[string]string
			c      *corev1.Container
		}{s.Spec.Template.Labels, container(t, &s.Spec.Template.Spec, comp)}
	}
	for _, tc := range []struct {
		target, port string
		from         podOf
		from_        string
		want         bool
	}{
		{"dataplane", "http", stranger, "anyone", true},
		{"dataplane", "grpc", stranger, "anyone", true},
		{"controlplane", "grpc", componentPod("dataplane"), "data plane", true},
		{"controlplane", "grpc", componentPod("test"), "helm test", true},
		{"controlplane", "grpc", sidecars, "sidecar namespace", true},
		{"controlplane", "grpc", stranger, "a stranger", false},
		{"etcd", "client", componentPod("controlplane"), "control plane", true},
		{"etcd", "client", componentPod("dataplane"), "data plane", false},
		{"etcd", "client", sidecars, "sidecar namespace", false},
		{"etcd", "client", stranger, "a stranger", false},
		{"nats", "client", componentPod("controlplane"), "control plane", true},
		{"nats", "client", componentPod("dataplane"), "data plane", true},
		{"nats", "client", sidecars, "sidecar namespace", true},
		{"nats", "client", stranger, "a stranger", false},
		{"nats", "monitor", stranger, "a stranger", false},
	} {
		p, ok := pods[tc.target]
		if !ok {
			t.Fatalf("no %s pods in %v", tc.target, r.inventory())
		}
		if got := allowed(t, r, p.labels, p.c, tc.port, tc.from); got != tc.want {
			t.Errorf("%s -> %s:%s allowed=%v, want %v", tc.from_, tc.target, tc.port, got, tc.want)
		}
	}

	off := render(t, renderOpts{values: map[string]any{"networkPolicy": map[string]any{"enabled": false}}})
	if n := len(objectsOf[*networkingv1.NetworkPolicy](off)); n != 0 {
		t.Errorf("networkPolicy.enabled=false still renders %d policies", n)
	}
}

// Every TLS file and credential for the external stores and the gRPC API
// comes from the operator's Secrets, mounted where the settings point; the
// data plane gets neither etcd's credentials nor the gRPC private key.
func TestStoreTLSAndCredentialsFromExistingSecrets(t *testing.T) {
	r := render(t, renderOpts{values: readValuesFile(t, "tls-auth-values.yaml")})
	if n := len(objectsOf[*corev1.Secret](r)); n != 0 {
		t.Errorf("every secret is an existingSecret, yet the chart renders %d Secrets", n)
	}
	type want struct{ secret, key string }
	wanted := map[string]map[string]want{
		"controlplane": {
			"HOGWIRE_ETCD_CACERT":        {"hogwire-etcd-client-tls", "ca.crt"},
			"HOGWIRE_ETCD_CERT":          {"hogwire-etcd-client-tls", "tls.crt"},
			"HOGWIRE_ETCD_KEY":           {"hogwire-etcd-client-tls", "tls.key"},
			"HOGWIRE_ETCD_PASSWORD_FILE": {"hogwire-etcd-password", "password"},
			"HOGWIRE_NATS_TLSCA":         {"hogwire-nats-client-tls", "ca.crt"},
			"HOGWIRE_NATS_CREDS":         {"hogwire-nats-creds", "hogwire.creds"},
			"HOGWIRE_TLS_CERT_FILE":      {"hogwire-controlplane-tls", "tls.crt"},
			"HOGWIRE_TLS_KEY_FILE":       {"hogwire-controlplane-tls", "tls.key"},
		},
		"dataplane": {
			"HOGWIRE_NATS_TLSCA":           {"hogwire-nats-client-tls", "ca.crt"},
			"HOGWIRE_NATS_CREDS":           {"hogwire-nats-creds", "hogwire.creds"},
			"HOGWIRE_CONTROLPLANE_CA_FILE": {"hogwire-controlplane-tls", "ca.crt"},
		},
	}
	for component, files := range wanted {
		d := find[*appsv1.Deployment](t, r, "hogwire-"+component)
		spec := &d.Spec.Template.Spec
		c := container(t, spec, component)
		s := settings(t, r, c)
		for setting, w := range files {
			file, ok := s[setting]
			if !ok {
				t.Errorf("%s: %s is not set", component, setting)
				continue
			}
			if secret, key := mountedSecretKey(t, spec, c, file); secret != w.secret || key != w.key {
				t.Errorf("%s: %s=%s holds key %q of %q, want %q of %q", component, setting, file, key, secret, w.key, w.secret)
			}
		}
		if s["HOGWIRE_NATS_TLSCERT"] != "" {
			t.Errorf("%s: certKey is empty, yet a NATS client certificate is configured", component)
		}
		if component == "dataplane" {
			for k := range s {
				if strings.HasPrefix(k, "HOGWIRE_ETCD_") {
					t.Errorf("data plane gets %s", k)
				}
			}
			for _, v := range spec.Volumes {
				if v.Secret == nil {
					continue
				}
				for _, it := range v.Secret.Items {
					if v.Secret.SecretName == "hogwire-etcd-client-tls" || v.Secret.SecretName == "hogwire-etcd-password" || it.Key == "tls.key" && v.Secret.SecretName == "hogwire-controlplane-tls" {
						t.Errorf("data plane mounts %s of %s", it.Key, v.Secret.SecretName)
					}
				}
			}
		}
	}
	if got := settings(t, r, container(t, &find[*appsv1.Deployment](t, r, "hogwire-dataplane").Spec.Template.Spec, "dataplane"))["HOGWIRE_CONTROLPLANE_TLS"]; got != "true" {
		t.Errorf("data plane HOGWIRE_CONTROLPLANE_TLS=%q with the control plane on TLS", got)
	}
}

// JetStream streams are replicated three ways on an external NATS cluster
// and not at all on the single bundled server.
func TestStreamReplicas(t *testing.T) {
	for name, tc := range map[string]struct {
		values map[string]any
		want   string
	}{
		"bundled":  {nil, "1"},
		"external": {readValuesFile(t, "external-stores-values.yaml"), "3"},
	} {
		r := render(t, renderOpts{values: tc.values})
		for _, comp := range []string{"controlplane", "dataplane"} {
			c := container(t, &find[*appsv1.Deployment](t, r, "hogwire-"+comp).Spec.Template.Spec, comp)
			if got := settings(t, r, c)["HOGWIRE_NATS_REPLICAS"]; got != tc.want {
				t.Errorf("%s: %s: HOGWIRE_NATS_REPLICAS=%q, want %s", name, comp, got, tc.want)
			}
		}
	}
}

// Every Go process (hogwire, etcd, NATS) gets GOMEMLIMIT from its own
// container's memory limit, but the data plane, which sets its collector
// from its cgroup's limit itself (package gctune): it needs the limit, and
// no GOMEMLIMIT that would override its own.
func TestGOMEMLIMITFollowsTheMemoryLimit(t *testing.T) {
	r := render(t, renderOpts{})
	for owner, spec := range r.podSpecs() {
		for _, c := range spec.Containers {
			if strings.HasPrefix(c.Image, "ghcr.io/grpc-ecosystem") {
				continue // the helm test pod
			}
			var ref *corev1.ResourceFieldSelector
			set := false
			for _, e := range c.Env {
				if e.Name == "GOMEMLIMIT" {
					set = true
					if e.ValueFrom != nil {
						ref = e.ValueFrom.ResourceFieldRef
					}
				}
			}
			switch {
			case c.Name == "dataplane" && set:
				t.Errorf("%s/%s: GOMEMLIMIT set; the data plane sets its own from its cgroup", owner, c.Name)
			case c.Name == "dataplane" && c.Resources.Limits.Memory().IsZero():
				t.Errorf("%s/%s: no memory limit for the data plane's collector to follow", owner, c.Name)
			case c.Name == "dataplane":
			case ref == nil:
				t.Errorf("%s/%s: no GOMEMLIMIT from the downward API", owner, c.Name)
			case ref.Resource != "limits.memory" || ref.ContainerName != c.Name:
				t.Errorf("%s/%s: GOMEMLIMIT from %s of %q", owner, c.Name, ref.Resource, ref.ContainerName)
			case c.Resources.Limits.Memory().IsZero():
				t.Errorf("%s/%s: no memory limit for GOMEMLIMIT to follow", owner, c.Name)
			}
		}
	}
}

func TestSchemaRejectsBadStoreSettings(t *testing.T) {
	external := func(nats map[string]any) map[string]any {
		return map[string]any{"nats": map[string]any{"bundled": map[string]any{"enabled": false},
			"external": map[string]any{"url": "tls://nats:4222", "auth": nats}}}
	}
	for name, vals := range map[string]map[string]any{
		"two NATS auth methods":       external(map[string]any{"existingSecret": "s", "credsKey": "c", "nkeyKey": "n"}),
		"NATS user without password":  external(map[string]any{"existingSecret": "s", "user": "u"}),
		"NATS key without the Secret": external(map[string]any{"credsKey": "c"}),
		"etcd user without a Secret": {"etcd": map[string]any{"bundled": map[string]any{"enabled": false},
			"external": map[string]any{"endpoints": []any{"https://etcd:2379"}, "auth": map[string]any{"username": "u"}}}},
		"three-way typo in replicas": {"nats": map[string]any{"external": map[string]any{"streamReplicas": "3"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := renderValues(t, renderOpts{values: vals}); err == nil || !strings.Contains(err.Error(), "schema") {
				t.Fatalf("accepted (%v)", err)
			}
		})
	}
}

func intstrFromName(port string) intstr.IntOrString { return intstr.FromString(port) }

// The dashboard ships as valid Grafana JSON in a ConfigMap the Grafana
// sidecar finds, and its queries use the data source variable.
func TestGrafanaDashboardConfigMap(t *testing.T) {
	r := render(t, renderOpts{values: map[string]any{"metrics": map[string]any{"grafanaDashboard": map[string]any{"enabled": true}}}})
	cm := find[*corev1.ConfigMap](t, r, "hogwire-dashboard")
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v lack grafana_dashboard", cm.Labels)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(cm.Data["hogwire.json"]), &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard has no uid or panels")
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %q, %d queries", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, q := range p.Targets {
			if !strings.Contains(q.Expr, `namespace=~"$namespace"`) {
				t.Errorf("panel %q: query ignores the namespace variable: %s", p.Title, q.Expr)
			}
		}
	}
	if n := len(objectsOf[*corev1.ConfigMap](render(t, renderOpts{}))); n != 2 {
		t.Errorf("dashboard off by default, yet %d ConfigMaps", n)
	}
}
