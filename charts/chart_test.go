// Package charts_test renders the hogwire Helm chart with the Helm SDK and
// checks the result against the Kubernetes API types, so a chart change that
// would be rejected by the API server, or that would wire the components up
// wrongly, fails `go test` without a cluster.
package charts_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = "hogwire"
	namespace = "observability-pipeline"
	// serviceMonitorAPI is what the chart asks .Capabilities for.
	serviceMonitorAPI = "monitoring.coreos.com/v1/ServiceMonitor"
)

// renderOpts describes one `helm install`.
type renderOpts struct {
	release     string
	values      map[string]any
	apiVersions []string
}

// release is the decoded output of one render.
type release struct {
	name    string
	objects []runtime.Object
	notes   string
}

// serviceMonitor is the part of the Prometheus Operator CRD the chart
// writes. Decoding into it strictly catches misspelt fields, as the k8s.io
// types do for the built-in kinds.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

func (s *serviceMonitor) DeepCopyObject() runtime.Object {
	c := *s
	return &c
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

func capabilities(apiVersions []string) *chartutil.Capabilities {
	caps := chartutil.DefaultCapabilities.Copy()
	// Render as for a current cluster; the SDK's default is 1.20.
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.33.0", Major: "1", Minor: "33"}
	caps.APIVersions = append(slices.Clone(caps.APIVersions), apiVersions...)
	return caps
}

// renderValues runs the chart's templates as `helm install` would, including
// the values.schema.json check.
func renderValues(t *testing.T, o renderOpts) (map[string]string, error) {
	t.Helper()
	if o.release == "" {
		o.release = "hogwire"
	}
	c := loadChart(t)
	vals, err := chartutil.ToRenderValues(c, o.values, chartutil.ReleaseOptions{
		Name:      o.release,
		Namespace: namespace,
		Revision:  1,
		IsInstall: true,
	}, capabilities(o.apiVersions))
	if err != nil {
		return nil, err
	}
	return engine.Render(c, vals)
}

// render renders the chart and strictly decodes every manifest: an unknown
// field or a wrong type anywhere fails the test.
func render(t *testing.T, o renderOpts) *release {
	t.Helper()
	files, err := renderValues(t, o)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	decoder := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	rel := &release{name: o.release}
	if rel.name == "" {
		rel.name = "hogwire"
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, "NOTES.txt"):
			rel.notes = files[name]
			continue
		case strings.HasPrefix(path.Base(name), "_"):
			continue
		}
		docs := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(files[name])))
		for {
			doc, err := docs.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: split documents: %v", name, err)
			}
			if isEmptyDoc(doc) {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			if tm.APIVersion == "monitoring.coreos.com/v1" && tm.Kind == "ServiceMonitor" {
				var sm serviceMonitor
				if err := yaml.UnmarshalStrict(doc, &sm); err != nil {
					t.Fatalf("%s: strict decode ServiceMonitor: %v\n%s", name, err, doc)
				}
				rel.objects = append(rel.objects, &sm)
				continue
			}
			obj, _, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: strict decode: %v\n%s", name, err, doc)
			}
			rel.objects = append(rel.objects, obj)
		}
	}
	return rel
}

func isEmptyDoc(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && !bytes.Equal(line, []byte("---")) {
			return false
		}
	}
	return true
}

func nameOf(o runtime.Object) string {
	m, err := meta.Accessor(o)
	if err != nil {
		return ""
	}
	return m.GetName()
}

func objectsOf[T runtime.Object](r *release) []T {
	var out []T
	for _, o := range r.objects {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func find[T runtime.Object](t *testing.T, r *release, name string) T {
	t.Helper()
	for _, v := range objectsOf[T](r) {
		if nameOf(v) == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %q in the release; have %v", zero, name, r.inventory())
	return zero
}

func (r *release) inventory() []string {
	var out []string
	for _, o := range r.objects {
		out = append(out, fmt.Sprintf("%T/%s", o, nameOf(o)))
	}
	return out
}

// podSpecs returns every pod template the release creates, by owner.
func (r *release) podSpecs() map[string]*corev1.PodSpec {
	out := map[string]*corev1.PodSpec{}
	for _, o := range r.objects {
		switch v := o.(type) {
		case *appsv1.Deployment:
			out["Deployment/"+v.Name] = &v.Spec.Template.Spec
		case *appsv1.StatefulSet:
			out["StatefulSet/"+v.Name] = &v.Spec.Template.Spec
		case *corev1.Pod:
			out["Pod/"+v.Name] = &v.Spec
		}
	}
	return out
}

func container(t *testing.T, spec *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == name {
			return &spec.InitContainers[i]
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

// settings returns the HOGWIRE_* settings a container gets, from its
// ConfigMaps and its own env, the way the binary sees them.
func settings(t *testing.T, r *release, c *corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		cm := find[*corev1.ConfigMap](t, r, from.ConfigMapRef.Name)
		for k, v := range cm.Data {
			out[k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			out[e.Name] = e.Value
		}
	}
	return out
}

func readValuesFile(t *testing.T, name string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(filepath.Join("ci", name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return v.AsMap()
}

// valueSets are the configurations the chart must render cleanly for: a few
// built here plus every values file CI lints the chart with.
func valueSets(t *testing.T) map[string]renderOpts {
	sets := map[string]renderOpts{
		"defaults": {},
		"with the ServiceMonitor CRD": {
			values:      map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}},
			apiVersions: []string{serviceMonitorAPI},
		},
		"bundled off, existing secret": {values: map[string]any{
			"etcd": map[string]any{
				"bundled":  map[string]any{"enabled": false},
				"external": map[string]any{"endpoints": []any{"http://etcd.db:2379"}},
			},
			"nats": map[string]any{
				"bundled":  map[string]any{"enabled": false},
				"external": map[string]any{"url": "nats://nats.db:4222"},
			},
			"auth": map[string]any{"existingSecret": "mine", "adminTokenKey": "admin"},
		}},
		"single replicas, no PDB": {values: map[string]any{
			"controlplane": map[string]any{"replicas": 1, "podDisruptionBudget": map[string]any{"enabled": false}},
			"dataplane":    map[string]any{"replicas": 1, "podDisruptionBudget": map[string]any{"enabled": false}},
		}},
	}
	files, err := filepath.Glob(filepath.Join("ci", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in charts/ci (%v)", err)
	}
	for _, f := range files {
		sets[f] = renderOpts{values: readValuesFile(t, filepath.Base(f))}
	}
	return sets
}

func TestEveryValueSetRendersValidManifests(t *testing.T) {
	for name, opts := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			r := render(t, opts)
			if len(objectsOf[*appsv1.Deployment](r)) != 2 {
				t.Errorf("want the control plane and data plane Deployments, have %v", r.inventory())
			}
			for _, o := range r.objects {
				m, _ := meta.Accessor(o)
				if len(m.GetName()) > 63 {
					t.Errorf("%T %q: name longer than 63 characters", o, m.GetName())
				}
				if _, cluster := o.(*corev1.Namespace); !cluster && m.GetNamespace() != namespace {
					t.Errorf("%T %q: namespace %q, want the release namespace %q", o, m.GetName(), m.GetNamespace(), namespace)
				}
			}
			for owner, spec := range r.podSpecs() {
				checkHardened(t, owner, spec)
			}
		})
	}
}

// checkHardened asserts what the chart promises for every container: sized
// resources and a non-root, read-only, capability-free security context.
func checkHardened(t *testing.T, owner string, spec *corev1.PodSpec) {
	t.Helper()
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	if len(all) == 0 {
		t.Errorf("%s: no containers", owner)
	}
	for _, c := range all {
		where := owner + "/" + c.Name
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: cpu and memory requests must be set, have %v", where, c.Resources.Requests)
		}
		if c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: memory limit must be set", where)
		}
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", where)
			continue
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil && spec.SecurityContext != nil {
			nonRoot = spec.SecurityContext.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			t.Errorf("%s: runAsNonRoot must be true", where)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("%s: runs as uid 0", where)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem must be true", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation must be false", where)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add none, have %+v", where, sc.Capabilities)
		}
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return port
}

// Liveness asks whether the process runs, readiness whether it can serve:
// a store outage must take pods out of the Services, not restart them.
// Both are HTTP on the metrics port, which is plain HTTP even when gRPC
// uses TLS (the kubelet's gRPC probes cannot speak TLS).
func TestProbesSeparateLivenessFromReadiness(t *testing.T) {
	for name, opts := range valueSets(t) {
		r := render(t, opts)
		for _, d := range objectsOf[*appsv1.Deployment](r) {
			if d.Labels["app.kubernetes.io/part-of"] != "hogwire" {
				continue
			}
			component := d.Labels["app.kubernetes.io/component"]
			c := container(t, &d.Spec.Template.Spec, component)
			listen := portOf(t, settings(t, r, c)["HOGWIRE_METRICS_ADDR"])
			for kind, want := range map[string]string{"startup": "/livez", "readiness": "/readyz", "liveness": "/livez"} {
				p := map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}[kind]
				switch {
				case p == nil:
					t.Errorf("%s: %s: no %s probe", name, component, kind)
				case p.HTTPGet == nil:
					t.Errorf("%s: %s: %s probe is not an HTTP probe: %+v", name, component, kind, p.ProbeHandler)
				case p.HTTPGet.Path != want:
					t.Errorf("%s: %s: %s probe asks %s, want %s", name, component, kind, p.HTTPGet.Path, want)
				case fmt.Sprint(resolvePort(t, c, p.HTTPGet.Port)) != listen:
					t.Errorf("%s: %s: %s probe checks port %v, the metrics server listens on %s", name, component, kind, p.HTTPGet.Port, listen)
				}
			}
		}
	}
}

func resolvePort(t *testing.T, c *corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("%s has no port named %s", c.Name, p.StrVal)
	return 0
}

// TestSecretFilesMountedWhereFlagsPoint follows every *_FILE setting to the
// volume mounted at that path and checks the right Secret key lands there.
func TestSecretFilesMountedWhereFlagsPoint(t *testing.T) {
	for _, tc := range []struct {
		name       string
		values     map[string]any
		secretName string
		keys       map[string]string // setting -> Secret key
	}{
		{
			name:       "generated secret",
			secretName: "hogwire",
			keys: map[string]string{
				"HOGWIRE_ADMIN_TOKEN_FILE": "admin-token",
				"HOGWIRE_NODE_TOKEN_FILE":  "node-token",
				"HOGWIRE_SECRETS_KEY_FILE": "secrets-key",
			},
		},
		{
			name: "existing secret with its own key names",
			values: map[string]any{"auth": map[string]any{
				"existingSecret": "vault-synced",
				"adminTokenKey":  "admin",
				"nodeTokenKey":   "node",
				"secretsKeyKey":  "key.b64",
			}},
			secretName: "vault-synced",
			keys: map[string]string{
				"HOGWIRE_ADMIN_TOKEN_FILE": "admin",
				"HOGWIRE_NODE_TOKEN_FILE":  "node",
				"HOGWIRE_SECRETS_KEY_FILE": "key.b64",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := render(t, renderOpts{values: tc.values})
			wanted := map[string][]string{
				"controlplane": {"HOGWIRE_ADMIN_TOKEN_FILE", "HOGWIRE_NODE_TOKEN_FILE", "HOGWIRE_SECRETS_KEY_FILE"},
				"dataplane":    {"HOGWIRE_NODE_TOKEN_FILE"},
			}
			for component, files := range wanted {
				d := find[*appsv1.Deployment](t, r, "hogwire-"+component)
				spec := &d.Spec.Template.Spec
				c := container(t, spec, component)
				s := settings(t, r, c)
				for _, setting := range files {
					file, ok := s[setting]
					if !ok {
						t.Errorf("%s: %s is not set", component, setting)
						continue
					}
					secret, key := mountedSecretKey(t, spec, c, file)
					if secret != tc.secretName || key != tc.keys[setting] {
						t.Errorf("%s: %s=%s holds key %q of Secret %q, want key %q of %q",
							component, setting, file, key, secret, tc.keys[setting], tc.secretName)
					}
				}
				if component == "dataplane" {
					for _, v := range spec.Volumes {
						if v.Secret == nil {
							continue
						}
						for _, item := range v.Secret.Items {
							if item.Key != tc.keys["HOGWIRE_NODE_TOKEN_FILE"] {
								t.Errorf("data plane mounts Secret key %q; it must only get the node token", item.Key)
							}
						}
					}
				}
			}
			secrets := objectsOf[*corev1.Secret](r)
			if tc.values != nil && len(secrets) != 0 {
				t.Errorf("existingSecret is set but the chart still renders Secrets %v", r.inventory())
			}
		})
	}
}

// mountedSecretKey reports which Secret key a container sees at file.
func mountedSecretKey(t *testing.T, spec *corev1.PodSpec, c *corev1.Container, file string) (secret, key string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		rel, err := filepath.Rel(m.MountPath, file)
		if err != nil || strings.HasPrefix(rel, "..") || m.SubPath != "" {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			if len(v.Secret.Items) == 0 {
				return v.Secret.SecretName, rel
			}
			for _, item := range v.Secret.Items {
				if item.Path == rel {
					return v.Secret.SecretName, item.Key
				}
			}
		}
	}
	t.Errorf("%s: nothing from a Secret is mounted at %s", c.Name, file)
	return "", ""
}

func TestGeneratedSecretHoldsUsableCredentials(t *testing.T) {
	r := render(t, renderOpts{})
	s := find[*corev1.Secret](t, r, "hogwire")
	for _, k := range []string{"admin-token", "node-token"} {
		if len(s.Data[k]) < 32 {
			t.Errorf("%s is %d bytes, want at least 32", k, len(s.Data[k]))
		}
	}
	if bytes.Equal(s.Data["admin-token"], s.Data["node-token"]) {
		t.Error("admin and node tokens are equal")
	}
	key, err := base64.StdEncoding.DecodeString(string(s.Data["secrets-key"]))
	if err != nil {
		t.Fatalf("secrets-key file is not base64: %v", err)
	}
	if len(key) != 32 {
		t.Errorf("secrets key decodes to %d bytes, want 32", len(key))
	}
	if s.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Error("generated Secret is not kept on uninstall by default")
	}
	again := find[*corev1.Secret](t, render(t, renderOpts{}), "hogwire")
	if bytes.Equal(s.Data["admin-token"], again.Data["admin-token"]) {
		t.Error("two fresh installs got the same admin token")
	}
}

// The generated Secret is made once, at install, by a hook: upgrades do
// not render it again, so nothing needs to read the cluster (lookup) to
// keep tokens and the secrets key stable, and GitOps renderers see no
// lookup whose empty answer would regenerate them.
func TestGeneratedSecretIsMadeOnceWithoutLookup(t *testing.T) {
	s := find[*corev1.Secret](t, render(t, renderOpts{}), "hogwire")
	if s.Annotations["helm.sh/hook"] != "pre-install" {
		t.Errorf("generated Secret annotations %v: want a pre-install hook", s.Annotations)
	}
	err := filepath.WalkDir(filepath.Join(chartDir, "templates"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "lookup ") || strings.Contains(string(b), "(lookup") {
			t.Errorf("%s calls lookup", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDataplaneConnectsToControlplaneService(t *testing.T) {
	for _, rel := range []string{"hogwire", "prod"} {
		t.Run(rel, func(t *testing.T) {
			r := render(t, renderOpts{release: rel})
			prefix := rel
			if rel != "hogwire" {
				prefix = rel + "-hogwire"
			}
			dp := find[*appsv1.Deployment](t, r, prefix+"-dataplane")
			addr := settings(t, r, container(t, &dp.Spec.Template.Spec, "dataplane"))["HOGWIRE_CONTROLPLANE_ADDR"]
			target, ok := strings.CutPrefix(addr, "dns:///")
			if !ok {
				t.Fatalf("HOGWIRE_CONTROLPLANE_ADDR %q: want a dns:/// target, so nodes balance over every replica", addr)
			}
			host, port, err := net.SplitHostPort(target)
			if err != nil {
				t.Fatalf("HOGWIRE_CONTROLPLANE_ADDR %q: %v", addr, err)
			}
			svcName, ns, _ := strings.Cut(strings.TrimSuffix(host, ".svc"), ".")
			if ns != namespace {
				t.Errorf("control plane address %q is not in the release namespace", addr)
			}
			svc := find[*corev1.Service](t, r, svcName)
			if svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("Service %s is not headless: its name resolves to one virtual IP, not to every replica", svcName)
			}
			cp := find[*appsv1.Deployment](t, r, prefix+"-controlplane")
			if !selects(svc.Spec.Selector, cp.Spec.Template.Labels) {
				t.Errorf("Service %s selector %v does not select control plane pods %v", svcName, svc.Spec.Selector, cp.Spec.Template.Labels)
			}
			cpGRPC := portOf(t, settings(t, r, container(t, &cp.Spec.Template.Spec, "controlplane"))["HOGWIRE_GRPC_ADDR"])
			var found bool
			for _, p := range svc.Spec.Ports {
				if fmt.Sprint(p.Port) != port {
					continue
				}
				found = true
				target := resolveTargetPort(t, &cp.Spec.Template.Spec, "controlplane", p)
				if fmt.Sprint(target) != cpGRPC {
					t.Errorf("Service port %d targets container port %d, the control plane listens on %s", p.Port, target, cpGRPC)
				}
			}
			if !found {
				t.Errorf("Service %s has no port %s", svcName, port)
			}
		})
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func resolveTargetPort(t *testing.T, spec *corev1.PodSpec, containerName string, p corev1.ServicePort) int32 {
	t.Helper()
	if p.TargetPort.StrVal == "" {
		return p.TargetPort.IntVal
	}
	for _, cp := range container(t, spec, containerName).Ports {
		if cp.Name == p.TargetPort.StrVal {
			return cp.ContainerPort
		}
	}
	t.Errorf("target port %q is not a named port of %s", p.TargetPort.StrVal, containerName)
	return 0
}

func TestServicesExposeTheDataplaneListeners(t *testing.T) {
	r := render(t, renderOpts{})
	svc := find[*corev1.Service](t, r, "hogwire-dataplane")
	dp := find[*appsv1.Deployment](t, r, "hogwire-dataplane")
	if !selects(svc.Spec.Selector, dp.Spec.Template.Labels) {
		t.Fatalf("data plane Service does not select data plane pods")
	}
	s := settings(t, r, container(t, &dp.Spec.Template.Spec, "dataplane"))
	want := map[string]string{"http": portOf(t, s["HOGWIRE_HTTP_ADDR"]), "grpc": portOf(t, s["HOGWIRE_GRPC_ADDR"]), "metrics": portOf(t, s["HOGWIRE_METRICS_ADDR"])}
	for _, p := range svc.Spec.Ports {
		if got := fmt.Sprint(resolveTargetPort(t, &dp.Spec.Template.Spec, "dataplane", p)); got != want[p.Name] {
			t.Errorf("Service port %s reaches container port %s, the data plane listens on %s", p.Name, got, want[p.Name])
		}
		delete(want, p.Name)
	}
	if len(want) > 0 {
		t.Errorf("data plane Service lacks ports %v", want)
	}
}

func TestExternalStoresReplaceBundledOnes(t *testing.T) {
	r := render(t, renderOpts{values: readValuesFile(t, "external-stores-values.yaml")})
	if ss := objectsOf[*appsv1.StatefulSet](r); len(ss) != 0 {
		t.Errorf("external stores configured but StatefulSets rendered: %v", r.inventory())
	}
	for _, svc := range objectsOf[*corev1.Service](r) {
		if strings.HasSuffix(svc.Name, "-etcd") || strings.HasSuffix(svc.Name, "-nats") {
			t.Errorf("bundled store Service %s rendered with external stores", svc.Name)
		}
	}
	cp := find[*appsv1.Deployment](t, r, "hogwire-controlplane")
	s := settings(t, r, container(t, &cp.Spec.Template.Spec, "controlplane"))
	wantEtcd := "https://etcd-0.etcd.storage.svc:2379,https://etcd-1.etcd.storage.svc:2379,https://etcd-2.etcd.storage.svc:2379"
	if s["HOGWIRE_ETCD_ENDPOINTS"] != wantEtcd {
		t.Errorf("etcd endpoints = %q, want %q", s["HOGWIRE_ETCD_ENDPOINTS"], wantEtcd)
	}
	for _, name := range []string{"hogwire-controlplane", "hogwire-dataplane"} {
		d := find[*appsv1.Deployment](t, r, name)
		c := d.Spec.Template.Spec.Containers[0]
		if got := settings(t, r, &c)["HOGWIRE_NATS_URL"]; got != "nats://nats.messaging.svc:4222" {
			t.Errorf("%s: NATS URL = %q, want the external one", name, got)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if env["OTEL_EXPORTER_OTLP_ENDPOINT"] != "http://otel-collector.observability.svc:4317" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT = %q", name, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
		}
		if !strings.Contains(env["OTEL_RESOURCE_ATTRIBUTES"], "deployment.environment=production") {
			t.Errorf("%s: OTEL_RESOURCE_ATTRIBUTES = %q lacks the configured attribute", name, env["OTEL_RESOURCE_ATTRIBUTES"])
		}
	}
	pdb := find[*policyv1.PodDisruptionBudget](t, r, "hogwire-controlplane")
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("control plane PDB = %+v, want minAvailable 2 only", pdb.Spec)
	}
}

func TestBundledStoresAreWiredIn(t *testing.T) {
	r := render(t, renderOpts{values: map[string]any{
		"etcd": map[string]any{
			"bundled":  map[string]any{"enabled": false},
			"external": map[string]any{"endpoints": []any{"http://etcd.db:2379"}},
		},
		"nats": map[string]any{"bundled": map[string]any{
			"persistence": map[string]any{"size": "50Gi", "storageClass": "fast-ssd"},
		}},
	}})
	if ss := objectsOf[*appsv1.StatefulSet](r); len(ss) != 1 || ss[0].Name != "hogwire-nats" {
		t.Fatalf("want only the NATS StatefulSet, have %v", r.inventory())
	}
	nats := find[*appsv1.StatefulSet](t, r, "hogwire-nats")
	headless := find[*corev1.Service](t, r, nats.Spec.ServiceName)
	if headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("NATS governing Service is not headless")
	}
	c := container(t, &nats.Spec.Template.Spec, "nats")
	if args := strings.Join(c.Args, " "); !strings.Contains(args, "-js") || !strings.Contains(args, "-sd /data") {
		t.Errorf("NATS args %q do not enable JetStream on /data", args)
	}
	pvc := nats.Spec.VolumeClaimTemplates[0]
	if got := pvc.Spec.Resources.Requests.Storage().String(); got != "50Gi" {
		t.Errorf("NATS volume size = %s, want 50Gi", got)
	}
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "fast-ssd" {
		t.Errorf("NATS storageClass = %v, want fast-ssd", pvc.Spec.StorageClassName)
	}
	dp := find[*appsv1.Deployment](t, r, "hogwire-dataplane")
	want := fmt.Sprintf("nats://hogwire-nats.%s.svc:4222", namespace)
	if got := settings(t, r, container(t, &dp.Spec.Template.Spec, "dataplane"))["HOGWIRE_NATS_URL"]; got != want {
		t.Errorf("data plane NATS URL = %q, want the bundled Service %q", got, want)
	}

	defaults := render(t, renderOpts{})
	etcd := find[*appsv1.StatefulSet](t, defaults, "hogwire-etcd")
	if img := container(t, &etcd.Spec.Template.Spec, "etcd").Image; img != "quay.io/coreos/etcd:v3.7.3" {
		t.Errorf("etcd image = %s", img)
	}
	cp := find[*appsv1.Deployment](t, defaults, "hogwire-controlplane")
	wantEtcd := fmt.Sprintf("http://hogwire-etcd.%s.svc:2379", namespace)
	if got := settings(t, defaults, container(t, &cp.Spec.Template.Spec, "controlplane"))["HOGWIRE_ETCD_ENDPOINTS"]; got != wantEtcd {
		t.Errorf("etcd endpoints = %q, want the bundled Service %q", got, wantEtcd)
	}
	find[*corev1.Service](t, defaults, etcd.Spec.ServiceName)
}

func TestAutoscalerOwnsDataplaneReplicas(t *testing.T) {
	r := render(t, renderOpts{values: readValuesFile(t, "hpa-ingress-values.yaml")})
	hpa := find[*autoscalingv2.HorizontalPodAutoscaler](t, r, "hogwire-dataplane")
	dp := find[*appsv1.Deployment](t, r, "hogwire-dataplane")
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != dp.Name {
		t.Errorf("HPA targets %+v, want the data plane Deployment %s", ref, dp.Name)
	}
	if dp.Spec.Replicas != nil {
		t.Errorf("data plane Deployment sets replicas=%d; upgrades would reset the HPA's scale", *dp.Spec.Replicas)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 20 {
		t.Errorf("HPA bounds = %v..%d, want 3..20", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	var cpu bool
	for _, m := range hpa.Spec.Metrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && *m.Resource.Target.AverageUtilization == 60 {
			cpu = true
		}
	}
	if !cpu {
		t.Errorf("HPA has no 60%% CPU target: %+v", hpa.Spec.Metrics)
	}

	plain := render(t, renderOpts{})
	if hpas := objectsOf[*autoscalingv2.HorizontalPodAutoscaler](plain); len(hpas) != 0 {
		t.Error("HPA rendered although autoscaling is off by default")
	}
	for _, name := range []string{"hogwire-controlplane", "hogwire-dataplane"} {
		if d := find[*appsv1.Deployment](t, plain, name); d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("%s: replicas = %v, want 2 by default", name, d.Spec.Replicas)
		}
	}
}

func TestIngressRoutesToCaptureAPI(t *testing.T) {
	r := render(t, renderOpts{values: readValuesFile(t, "hpa-ingress-values.yaml")})
	ing := find[*networkingv1.Ingress](t, r, "hogwire-dataplane")
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("ingressClassName = %v", ing.Spec.IngressClassName)
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "capture.example.com" {
		t.Fatalf("rules = %+v", ing.Spec.Rules)
	}
	backend := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
	svc := find[*corev1.Service](t, r, backend.Name)
	dp := find[*appsv1.Deployment](t, r, "hogwire-dataplane")
	httpAddr := settings(t, r, container(t, &dp.Spec.Template.Spec, "dataplane"))["HOGWIRE_HTTP_ADDR"]
	var routed bool
	for _, p := range svc.Spec.Ports {
		if p.Name == backend.Port.Name || (backend.Port.Number != 0 && p.Port == backend.Port.Number) {
			routed = fmt.Sprint(resolveTargetPort(t, &dp.Spec.Template.Spec, "dataplane", p)) == portOf(t, httpAddr)
		}
	}
	if !routed {
		t.Errorf("Ingress backend %+v does not reach the capture API on %s", backend, httpAddr)
	}
	if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "capture-tls" {
		t.Errorf("TLS = %+v", ing.Spec.TLS)
	}
	if ings := objectsOf[*networkingv1.Ingress](render(t, renderOpts{})); len(ings) != 0 {
		t.Error("Ingress rendered although it is off by default")
	}
}

func TestServiceMonitorOnlyWhereTheCRDExists(t *testing.T) {
	values := map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}}
	without := render(t, renderOpts{values: values})
	if sms := objectsOf[*serviceMonitor](without); len(sms) != 0 {
		t.Errorf("ServiceMonitor rendered on a cluster without the CRD")
	}
	if !strings.Contains(without.notes, "none was created") {
		t.Errorf("NOTES do not warn that no ServiceMonitor was created:\n%s", without.notes)
	}
	with := render(t, renderOpts{values: values, apiVersions: []string{serviceMonitorAPI}})
	sms := objectsOf[*serviceMonitor](with)
	if len(sms) != 2 {
		t.Fatalf("want a ServiceMonitor per role, have %v", with.inventory())
	}
	for _, sm := range sms {
		var matched []string
		for _, svc := range objectsOf[*corev1.Service](with) {
			if selects(sm.Spec.Selector.MatchLabels, svc.Labels) {
				matched = append(matched, svc.Name)
				var hasPort bool
				for _, p := range svc.Spec.Ports {
					hasPort = hasPort || p.Name == sm.Spec.Endpoints[0].Port
				}
				if !hasPort {
					t.Errorf("%s selects Service %s, which has no %q port", sm.Name, svc.Name, sm.Spec.Endpoints[0].Port)
				}
			}
		}
		if !slices.Equal(matched, []string{sm.Name}) {
			t.Errorf("%s selects Services %v, want exactly its own", sm.Name, matched)
		}
	}
}

func TestPodsAreAnnotatedForScraping(t *testing.T) {
	r := render(t, renderOpts{})
	for _, name := range []string{"hogwire-controlplane", "hogwire-dataplane"} {
		d := find[*appsv1.Deployment](t, r, name)
		a := d.Spec.Template.Annotations
		metricsAddr := settings(t, r, &d.Spec.Template.Spec.Containers[0])["HOGWIRE_METRICS_ADDR"]
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != portOf(t, metricsAddr) || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("%s: scrape annotations %v do not match metrics on %s", name, a, metricsAddr)
		}
	}
}

func TestConfigChangeRollsPods(t *testing.T) {
	checksum := func(level string) string {
		r := render(t, renderOpts{values: map[string]any{"log": map[string]any{"level": level}}})
		return find[*appsv1.Deployment](t, r, "hogwire-dataplane").Spec.Template.Annotations["checksum/config"]
	}
	if a, b := checksum("info"), checksum("debug"); a == "" || a == b {
		t.Errorf("pod template checksum did not change with the config (%q, %q)", a, b)
	}
}

func TestTopologySpreadSelectsOwnPods(t *testing.T) {
	r := render(t, renderOpts{})
	for _, name := range []string{"hogwire-controlplane", "hogwire-dataplane"} {
		d := find[*appsv1.Deployment](t, r, name)
		tsc := d.Spec.Template.Spec.TopologySpreadConstraints
		if len(tsc) == 0 {
			t.Errorf("%s: no topology spread constraints", name)
			continue
		}
		for _, c := range tsc {
			if c.LabelSelector == nil || !selects(c.LabelSelector.MatchLabels, d.Spec.Template.Labels) ||
				!maps.Equal(c.LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
				t.Errorf("%s: spread selector %v is not the Deployment's selector %v", name, c.LabelSelector, d.Spec.Selector.MatchLabels)
			}
		}
	}
}

func TestHelmTestChecksBothHealthServices(t *testing.T) {
	r := render(t, renderOpts{})
	var pod *corev1.Pod
	for _, p := range objectsOf[*corev1.Pod](r) {
		if p.Annotations["helm.sh/hook"] == "test" {
			pod = p
		}
	}
	if pod == nil {
		t.Fatalf("no helm test pod: %v", r.inventory())
	}
	var addrs []string
	for _, c := range pod.Spec.Containers {
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "-addr="); ok {
				addrs = append(addrs, v)
			}
		}
	}
	want := []string{
		fmt.Sprintf("hogwire-controlplane.%s.svc:7070", namespace),
		fmt.Sprintf("hogwire-dataplane.%s.svc:7071", namespace),
	}
	if !slices.Equal(addrs, want) {
		t.Errorf("test pod checks %v, want %v", addrs, want)
	}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("test pod restartPolicy = %s; a failing check must fail the test, not retry forever", pod.Spec.RestartPolicy)
	}
}

func TestNotesExplainAdminTokenAndGrpcurl(t *testing.T) {
	r := render(t, renderOpts{values: map[string]any{"auth": map[string]any{"existingSecret": "vault-synced", "adminTokenKey": "admin"}}})
	for _, want := range []string{
		"kubectl get secret vault-synced",
		"jsonpath='{.data.admin}'",
		"svc/hogwire-controlplane 7070:7070",
		`grpcurl -plaintext -H "authorization: Bearer $HOGWIRE_ADMIN_TOKEN" localhost:7070 list`,
	} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, r.notes)
		}
	}
}

func TestDefaultImageIsAppVersion(t *testing.T) {
	c := loadChart(t)
	r := render(t, renderOpts{})
	want := "ghcr.io/hogwire/hogwire:" + c.Metadata.AppVersion
	for _, name := range []string{"hogwire-controlplane", "hogwire-dataplane"} {
		if got := find[*appsv1.Deployment](t, r, name).Spec.Template.Spec.Containers[0].Image; got != want {
			t.Errorf("%s image = %s, want %s", name, got, want)
		}
	}
}

func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"replicas as a word", map[string]any{"controlplane": map[string]any{"replicas": "two"}}, "/controlplane/replicas"},
		{"zero replicas", map[string]any{"dataplane": map[string]any{"replicas": 0}}, "/dataplane/replicas"},
		{"unknown log level", map[string]any{"log": map[string]any{"level": "verbose"}}, "/log/level"},
		{"misspelt key", map[string]any{"controlplane": map[string]any{"replicaz": 3}}, "replicaz"},
		{"unknown top-level key", map[string]any{"replicas": 2}, "replicas"},
		{"autoscaling flag as a string", map[string]any{"dataplane": map[string]any{"autoscaling": map[string]any{"enabled": "yes"}}}, "/dataplane/autoscaling/enabled"},
		{"pull policy", map[string]any{"image": map[string]any{"pullPolicy": "Sometimes"}}, "/image/pullPolicy"},
		{"egress not a CIDR", map[string]any{"dataplane": map[string]any{"allowEgress": []any{"example.com"}}}, "/dataplane/allowEgress/0"},
		{"etcd neither bundled nor external", map[string]any{"etcd": map[string]any{"bundled": map[string]any{"enabled": false}}}, "/etcd"},
		{"nats neither bundled nor external", map[string]any{"nats": map[string]any{"bundled": map[string]any{"enabled": false}}}, "/nats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderValues(t, renderOpts{values: tc.values})
			if err == nil {
				t.Fatalf("values %v were accepted", tc.values)
			}
			if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not point at %s:\n%v", tc.want, err)
			}
		})
	}
}

// TestSidecarExample checks the documented sidecar Deployment: it must be a
// valid Deployment, wire the app to the sidecar, and appear verbatim in the
// deployment guide.
func TestSidecarExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("examples", "sidecar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	decoder := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	obj, _, err := decoder.Decode(doc, nil, nil)
	if err != nil {
		t.Fatalf("strict decode: %v", err)
	}
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		t.Fatalf("sidecar example is a %T, want a Deployment", obj)
	}
	spec := &d.Spec.Template.Spec
	checkHardened(t, "sidecar example", spec)

	sidecar := container(t, spec, "hogwire")
	if sidecar.RestartPolicy == nil || *sidecar.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("hogwire is not a native sidecar (init container with restartPolicy Always)")
	}
	if len(sidecar.Args) == 0 || sidecar.Args[0] != "dataplane" {
		t.Fatalf("sidecar args %v do not run `hogwire dataplane`", sidecar.Args)
	}
	flags := map[string]string{}
	for _, a := range sidecar.Args[1:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(k, "--") {
			t.Fatalf("sidecar arg %q is not --flag=value", a)
		}
		flags[k] = v
	}
	for _, f := range []string{"--http-addr", "--grpc-addr", "--controlplane-addr", "--node-token-file", "--nats-url", "--node-id"} {
		if flags[f] == "" {
			t.Errorf("sidecar does not set %s", f)
		}
	}
	if flags["--http-addr"] != "127.0.0.1:8080" {
		t.Errorf("sidecar capture API on %q, want loopback 127.0.0.1:8080", flags["--http-addr"])
	}
	if secret, key := mountedSecretKey(t, spec, sidecar, flags["--node-token-file"]); key != "node-token" || secret == "" {
		t.Errorf("node token file holds key %q of Secret %q", key, secret)
	}
	if flags["--node-id"] != "$(POD_NAME)" || !slices.ContainsFunc(sidecar.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	}) {
		t.Error("sidecar node id is not the pod name")
	}
	metricsPort := portOf(t, flags["--metrics-addr"])
	// The app starts once the sidecar is ready; liveness must not follow
	// readiness, or a NATS outage would restart every sidecar.
	for kind, want := range map[string]string{"startup": "/readyz", "readiness": "/readyz", "liveness": "/livez"} {
		p := map[string]*corev1.Probe{"startup": sidecar.StartupProbe, "readiness": sidecar.ReadinessProbe, "liveness": sidecar.LivenessProbe}[kind]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || fmt.Sprint(resolvePort(t, sidecar, p.HTTPGet.Port)) != metricsPort {
			t.Errorf("sidecar %s probe is not GET %s on the metrics port %s", kind, want, metricsPort)
		}
	}

	app := container(t, spec, "shop")
	var host string
	for _, e := range app.Env {
		if e.Name == "POSTHOG_HOST" {
			host = e.Value
		}
	}
	if host != "http://"+flags["--http-addr"] {
		t.Errorf("app sends to %q, the sidecar listens on %q", host, flags["--http-addr"])
	}
	for _, p := range app.Ports {
		if fmt.Sprint(p.ContainerPort) == portOf(t, flags["--http-addr"]) {
			t.Errorf("app port %d collides with the sidecar", p.ContainerPort)
		}
	}

	guide, err := os.ReadFile(filepath.Join("..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(guide, doc) {
		t.Error("docs/deploy.md does not contain charts/examples/sidecar.yaml verbatim; copy the file into the guide")
	}
}
