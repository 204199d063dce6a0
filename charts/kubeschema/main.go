// Command kubeschema writes the JSON schemas kubeconform validates against,
// from the OpenAPI definitions that ship inside Go modules, so the chart can
// be checked with `kubeconform -strict` on a machine that cannot download
// kubeconform's published schema set.
//
// The Kubernetes schemas come from api/openapi-spec/swagger.json in the
// k8s.io/kubernetes module; CRD schemas (ServiceMonitor) from the
// CustomResourceDefinitions in the prometheus-operator module. Both modules
// are fetched with `go mod download`, i.e. through the Go module proxy.
//
// The output is kubeconform's "standalone strict" layout:
//
//	OUT/v<version>-standalone-strict/<kind>-<group>-<version>.json
//
// with every $ref inlined and additionalProperties false on every object
// that declares its properties, so an unknown field is an error. Use it as
//
//	kubeconform -strict -schema-location OUT -kubernetes-version <version>
//
// Only the kinds named in the given manifests are written (all of them with
// no manifests): the full set is hundreds of megabytes.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The module versions that carry the definitions. Kubernetes matches the
// k8s.io/api release in go.mod.
const (
	kubernetesModule = "k8s.io/kubernetes"
	operatorModule   = "github.com/prometheus-operator/prometheus-operator"
	operatorVersion  = "v0.85.0"
)

func main() {
	version := flag.String("kubernetes-version", "1.37.2", "Kubernetes release whose API schemas to write")
	out := flag.String("out", "", "directory to write the schemas under (required)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "kubeschema: -out is required")
		os.Exit(2)
	}
	if err := run(*version, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "kubeschema:", err)
		os.Exit(1)
	}
}

// gvk is a kind as kubeconform names its schema file.
type gvk struct{ group, version, kind string }

func (g gvk) fileName() string {
	suffix := "-" + strings.ToLower(strings.Split(g.group, ".")[0])
	if g.group == "" {
		suffix = ""
	}
	return strings.ToLower(g.kind) + suffix + "-" + strings.ToLower(g.version) + ".json"
}

func run(version, out string, manifests []string) error {
	want, err := kindsIn(manifests)
	if err != nil {
		return err
	}
	k8sDir, err := moduleDir(kubernetesModule, "v"+version)
	if err != nil {
		return err
	}
	schemas, err := kubernetesSchemas(filepath.Join(k8sDir, "api", "openapi-spec", "swagger.json"))
	if err != nil {
		return err
	}
	opDir, err := moduleDir(operatorModule, operatorVersion)
	if err != nil {
		return err
	}
	crds, err := filepath.Glob(filepath.Join(opDir, "example", "prometheus-operator-crd", "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range crds {
		if err := crdSchemas(f, schemas); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	dir := filepath.Join(out, "v"+version+"-standalone-strict")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	n := 0
	for k, s := range schemas {
		if want != nil && !want[k] {
			continue
		}
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, k.fileName()), b, 0o644); err != nil {
			return err
		}
		n++
	}
	for k := range want {
		if _, ok := schemas[k]; !ok {
			// kubeconform reports the missing schema itself; say where it
			// would have come from.
			fmt.Fprintf(os.Stderr, "kubeschema: no schema for %s/%s %s\n", k.group, k.version, k.kind)
		}
	}
	fmt.Fprintf(os.Stderr, "kubeschema: wrote %d schemas to %s\n", n, dir)
	return nil
}

// kindsIn lists the kinds of every document in the manifests; nil means
// all kinds.
func kindsIn(files []string) (map[gvk]bool, error) {
	if len(files) == 0 {
		return nil, nil
	}
	want := map[gvk]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			var tm struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if tm.Kind == "" {
				continue
			}
			g, v, ok := strings.Cut(tm.APIVersion, "/")
			if !ok {
				g, v = "", tm.APIVersion
			}
			want[gvk{g, v, tm.Kind}] = true
		}
	}
	return want, nil
}

// moduleDir downloads a module through the Go module proxy (or finds it in
// the module cache) and returns its directory.
func moduleDir(path, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", path+"@"+version)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(b, &m); jerr == nil && m.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", path, version, m.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", path, version, err)
	}
	if m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no directory in %s", path, version, b)
	}
	return m.Dir, nil
}

// kubernetesSchemas turns every definition that names a kind into a
// standalone schema.
func kubernetesSchemas(swaggerFile string) (map[gvk]any, error) {
	b, err := os.ReadFile(swaggerFile)
	if err != nil {
		return nil, err
	}
	var spec struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", swaggerFile, err)
	}
	out := map[gvk]any{}
	for name, def := range spec.Definitions {
		kinds, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, k := range kinds {
			m, _ := k.(map[string]any)
			g := gvk{str(m["group"]), str(m["version"]), str(m["kind"])}
			if strings.HasSuffix(name, ".WatchEvent") || strings.HasSuffix(name, ".DeleteOptions") {
				continue // shared by every group; not a resource
			}
			s := inline(def, spec.Definitions, map[string]bool{name: true})
			constrainTypeMeta(s.(map[string]any), g)
			out[g] = s
		}
	}
	return out, nil
}

// inline copies a schema with every "#/definitions/…" reference replaced
// by the definition, made strict. A reference back into a definition being
// expanded (only JSONSchemaProps refers to itself) accepts anything.
func inline(v any, defs map[string]map[string]any, expanding map[string]bool) any {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			def, ok := defs[name]
			if !ok || expanding[name] {
				return map[string]any{}
			}
			expanding[name] = true
			defer delete(expanding, name)
			return inline(def, defs, expanding)
		}
		out := map[string]any{}
		for k, e := range v {
			if strings.HasPrefix(k, "x-") || k == "description" || k == "format" {
				continue
			}
			if k == "properties" {
				props := map[string]any{}
				for p, ps := range e.(map[string]any) {
					props[p] = inline(ps, defs, expanding)
				}
				out[k] = props
				continue
			}
			out[k] = inline(e, defs, expanding)
		}
		// Kubernetes' "int-or-string" and Quantity are strings in the
		// OpenAPI document but numbers are accepted too.
		if v["format"] == "int-or-string" || v["x-kubernetes-int-or-string"] == true {
			delete(out, "type")
			out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		if isQuantity(v) {
			delete(out, "type")
			out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}
		}
		if _, hasProps := out["properties"]; hasProps && v["x-kubernetes-preserve-unknown-fields"] != true {
			if _, set := out["additionalProperties"]; !set {
				out["additionalProperties"] = false
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = inline(e, defs, expanding)
		}
		return out
	}
	return v
}

// isQuantity recognises resource.Quantity by its description, the only
// mark it has once inlined.
func isQuantity(v map[string]any) bool {
	d, _ := v["description"].(string)
	return v["type"] == "string" && strings.HasPrefix(d, "Quantity is a fixed-point representation of a number.")
}

// constrainTypeMeta pins apiVersion and kind, so a manifest cannot pass
// against the wrong schema.
func constrainTypeMeta(s map[string]any, g gvk) {
	props, _ := s["properties"].(map[string]any)
	if props == nil {
		return
	}
	api := g.version
	if g.group != "" {
		api = g.group + "/" + g.version
	}
	props["apiVersion"] = map[string]any{"type": "string", "enum": []any{api}}
	props["kind"] = map[string]any{"type": "string", "enum": []any{g.kind}}
}

// crdSchemas adds a schema for every served version of the CRDs in a file.
func crdSchemas(file string, out map[gvk]any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var crd struct {
		Kind string `json:"kind"`
		Spec struct {
			Group string `json:"group"`
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Served bool   `json:"served"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		return err
	}
	if crd.Kind != "CustomResourceDefinition" {
		return nil
	}
	for _, v := range crd.Spec.Versions {
		if !v.Served || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		g := gvk{crd.Spec.Group, v.Name, crd.Spec.Names.Kind}
		s := inline(v.Schema.OpenAPIV3Schema, nil, map[string]bool{}).(map[string]any)
		// The API server adds metadata's schema to every CRD; the CRD
		// itself declares it as a bare object.
		if props, ok := s["properties"].(map[string]any); ok {
			props["metadata"] = map[string]any{"type": "object"}
		}
		constrainTypeMeta(s, g)
		out[g] = s
	}
	return nil
}

func str(v any) string { s, _ := v.(string); return s }
