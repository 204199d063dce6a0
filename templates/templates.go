// Package templates holds the destination templates shipped with hogwire.
//
// Each template is a directory, templates/<id>/, with its Hog code in
// template.hog and its metadata in template.yaml (see README.md). Both are
// embedded in the binary. Load parses every template, compiles its code,
// its default filters and the templated defaults of its inputs, and
// validates its inputs schema, so that a broken template fails at start-up
// and in go test rather than when a user picks it.
package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/enumword"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/compiler"
	"github.com/hogwire/hogwire/hogvm/kind"
	"github.com/hogwire/hogwire/inputs"
)

//go:embed */template.hog */template.yaml
var files embed.FS

// HostFunctions returns the functions destination template code may call
// besides Hog's standard library.
func HostFunctions() []string { return kind.Destination().Functions }

// codeKind is the Hog kind of a template's code: a destination's unless
// the template says kind: transformation.
func codeKind(t *hogwirev1.Template) kind.Kind {
	switch t.Kind {
	case hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION:
		return kind.Transformation()
	case hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK:
		return kind.SourceWebhook()
	}
	return kind.Destination()
}

// Catalog is the set of shipped templates. It is immutable; List and Get
// return copies.
type Catalog struct {
	byID   map[string]*hogwirev1.Template
	sorted []*hogwirev1.Template
}

// Load parses, compiles and validates every embedded template.
func Load() (*Catalog, error) { return LoadFS(files) }

// LoadFS is Load for templates in fsys, laid out as <id>/template.hog and
// <id>/template.yaml; tests use it to check broken templates are refused.
func LoadFS(fsys fs.FS) (*Catalog, error) {
	dirs, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	c := &Catalog{byID: map[string]*hogwirev1.Template{}}
	var errs []error
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		t, err := load(fsys, d.Name())
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: %s: %w", d.Name(), err))
			continue
		}
		c.byID[d.Name()] = t
		c.sorted = append(c.sorted, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(c.sorted, func(a, b *hogwirev1.Template) int {
		if c := strings.Compare(a.Category, b.Category); c != 0 {
			return c
		}
		if c := strings.Compare(strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName)); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return c, nil
}

// List returns every template, sorted by category, then name.
func (c *Catalog) List() []*hogwirev1.Template {
	out := make([]*hogwirev1.Template, len(c.sorted))
	for i, t := range c.sorted {
		out[i] = proto.CloneOf(t)
	}
	return out
}

// Get returns the template with the given id ("webhook"); the resource
// name "templates/webhook" is accepted too.
func (c *Catalog) Get(id string) (*hogwirev1.Template, bool) {
	t, ok := c.byID[strings.TrimPrefix(id, "templates/")]
	if !ok {
		return nil, false
	}
	return proto.CloneOf(t), true
}

var validID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

func load(fsys fs.FS, id string) (*hogwirev1.Template, error) {
	if !validID.MatchString(id) {
		return nil, fmt.Errorf("directory name %q is not a valid template id (lower-case letters, digits and dashes)", id)
	}
	meta, err := fs.ReadFile(fsys, path.Join(id, "template.yaml"))
	if err != nil {
		return nil, err
	}
	hog, err := fs.ReadFile(fsys, path.Join(id, "template.hog"))
	if err != nil {
		return nil, err
	}
	t, err := parseMeta(meta)
	if err != nil {
		return nil, fmt.Errorf("template.yaml: %w", err)
	}
	if t.Name != "templates/"+id {
		return nil, fmt.Errorf("template.yaml: id %q does not match the directory %q", strings.TrimPrefix(t.Name, "templates/"), id)
	}
	t.Hog = string(hog)
	if err := check(t); err != nil {
		return nil, err
	}
	return t, nil
}

// parseMeta turns template.yaml into a Template: id and name become the
// resource name and display name, and short enum names become the API's.
// Unknown fields are errors, so a typo cannot silently drop metadata.
func parseMeta(y []byte) (*hogwirev1.Template, error) {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("empty")
	}
	for _, k := range []string{"hog", "display_name", "displayName"} {
		if _, ok := m[k]; ok {
			return nil, fmt.Errorf("%s: not allowed here (the code is template.hog, the display name is name)", k)
		}
	}
	id, ok := m["id"].(string)
	if raw, set := m["id"]; set && !ok {
		return nil, fmt.Errorf("id: %v is not a string (quote it)", raw)
	}
	if id == "" {
		return nil, errors.New("id: is required")
	}
	delete(m, "id")
	if name, ok := m["name"]; ok {
		m["display_name"] = name
	}
	m["name"] = "templates/" + id
	// PostHog writes templating: hog or liquid for an input's language.
	if list, ok := m["inputs_schema"].([]any); ok {
		for _, item := range list {
			if im, ok := item.(map[string]any); ok {
				if l, ok := im["templating"].(string); ok {
					delete(im, "templating")
					im["template_language"] = l
				}
			}
		}
	}
	// Enum values are words (status: beta, type: string, operator: exact).
	if err := enumword.Normalize((&hogwirev1.Template{}).ProtoReflect().Descriptor(), m); err != nil {
		return nil, err
	}
	j, err = json.Marshal(m)
	if err != nil {
		return nil, err
	}
	t := &hogwirev1.Template{}
	if err := protojson.Unmarshal(j, t); err != nil {
		return nil, err
	}
	// The JSON above has lost the order of the defaults' keys; read them
	// again from the YAML, in order.
	defaults, err := orderedDefaults(y)
	if err != nil {
		return nil, err
	}
	for i, v := range defaults[-1] {
		if i < len(t.InputsSchema) {
			inputs.SetDefault(t.InputsSchema[i], v)
		}
	}
	for j, mt := range t.MappingTemplates {
		for i, v := range defaults[j] {
			if i < len(mt.InputsSchema) {
				inputs.SetDefault(mt.InputsSchema[i], v)
			}
		}
	}
	return t, nil
}

// orderedDefaults returns the default of each inputs_schema item that has
// one, by index, with object keys in the order written: the template's
// under -1, mapping_templates[j]'s under j.
func orderedDefaults(y []byte) (map[int]map[int]inputs.Value, error) {
	var doc yaml3.Node
	if err := yaml3.Unmarshal(y, &doc); err != nil {
		return nil, err
	}
	out := map[int]map[int]inputs.Value{}
	if len(doc.Content) == 0 {
		return out, nil
	}
	schemaDefaults := func(n *yaml3.Node, field string) (map[int]inputs.Value, error) {
		m := map[int]inputs.Value{}
		list := mappingValue(n, "inputs_schema")
		if list == nil || list.Kind != yaml3.SequenceNode {
			return m, nil
		}
		for i, item := range list.Content {
			if def := mappingValue(item, "default"); def != nil {
				v, err := yamlValue(def)
				if err != nil {
					return nil, fmt.Errorf("%sinputs_schema[%d].default: %w", field, i, err)
				}
				m[i] = v
			}
		}
		return m, nil
	}
	var err error
	if out[-1], err = schemaDefaults(doc.Content[0], ""); err != nil {
		return nil, err
	}
	if mts := mappingValue(doc.Content[0], "mapping_templates"); mts != nil && mts.Kind == yaml3.SequenceNode {
		for j, mt := range mts.Content {
			if out[j], err = schemaDefaults(mt, fmt.Sprintf("mapping_templates[%d].", j)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func mappingValue(n *yaml3.Node, key string) *yaml3.Node {
	if n.Kind != yaml3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func yamlValue(n *yaml3.Node) (inputs.Value, error) {
	switch n.Kind {
	case yaml3.AliasNode:
		return yamlValue(n.Alias)
	case yaml3.SequenceNode:
		v := inputs.Value{Kind: inputs.Array}
		for _, c := range n.Content {
			e, err := yamlValue(c)
			if err != nil {
				return inputs.Value{}, err
			}
			v.Elems = append(v.Elems, e)
		}
		return v, nil
	case yaml3.MappingNode:
		v := inputs.Value{Kind: inputs.Object}
		for i := 0; i+1 < len(n.Content); i += 2 {
			e, err := yamlValue(n.Content[i+1])
			if err != nil {
				return inputs.Value{}, err
			}
			v.Keys = append(v.Keys, n.Content[i].Value)
			v.Elems = append(v.Elems, e)
		}
		return v, nil
	case yaml3.ScalarNode:
		var x any
		if err := n.Decode(&x); err != nil {
			return inputs.Value{}, err
		}
		switch x := x.(type) {
		case nil:
			return inputs.Value{}, nil
		case bool:
			return inputs.Value{Kind: inputs.Bool, Bool: x}, nil
		case int:
			return inputs.Value{Kind: inputs.Number, Number: float64(x)}, nil
		case float64:
			return inputs.Value{Kind: inputs.Number, Number: x}, nil
		case string:
			return inputs.Str(x), nil
		}
		return inputs.Str(n.Value), nil
	}
	return inputs.Value{}, fmt.Errorf("unsupported YAML node")
}

var (
	validKey  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	inputRefs = regexp.MustCompile(`\binputs\.([A-Za-z_][A-Za-z0-9_]*)`)
)

// check validates a parsed template; errors name the field.
func check(t *hogwirev1.Template) error {
	switch {
	case strings.TrimSpace(t.DisplayName) == "":
		return errors.New("name: is required")
	case strings.TrimSpace(t.Description) == "":
		return errors.New("description: is required")
	case strings.TrimSpace(t.Category) == "":
		return errors.New("category: is required")
	case t.Status == hogwirev1.TemplateStatus_TEMPLATE_STATUS_UNSPECIFIED:
		return errors.New("status: is required")
	}
	if _, err := codeKind(t).Compile(t.Hog, nil); err != nil {
		return fmt.Errorf("template.hog: %w", err)
	}
	keys := map[string]bool{}
	for i, s := range t.InputsSchema {
		field := fmt.Sprintf("inputs_schema[%d]", i)
		if !validKey.MatchString(s.Key) {
			return fmt.Errorf("%s.key: %q must be letters, digits and underscores, not starting with a digit", field, s.Key)
		}
		if keys[s.Key] {
			return fmt.Errorf("%s.key: %q is declared twice", field, s.Key)
		}
		keys[s.Key] = true
		if err := checkInput(s); err != nil {
			return fmt.Errorf("%s (%s).%w", field, s.Key, err)
		}
	}
	// A mapping's inputs are read as inputs.<key> too.
	for _, mt := range t.MappingTemplates {
		for _, s := range mt.InputsSchema {
			keys[s.Key] = true
		}
	}
	// A misspelt input would read as null at run time; catch it here.
	for _, m := range inputRefs.FindAllStringSubmatch(t.Hog, -1) {
		if !keys[m[1]] {
			return fmt.Errorf("template.hog: reads inputs.%s, which inputs_schema does not declare", m[1])
		}
	}
	if t.Filters != nil {
		if _, err := filters.Compile(t.Filters); err != nil {
			return err
		}
	}
	for i, mt := range t.MappingTemplates {
		field := fmt.Sprintf("mapping_templates[%d]", i)
		if strings.TrimSpace(mt.Name) == "" {
			return fmt.Errorf("%s.name: is required", field)
		}
		if mt.Filters != nil {
			if _, err := filters.Compile(mt.Filters); err != nil {
				return fmt.Errorf("%s.%w", field, err)
			}
		}
		for j, s := range mt.InputsSchema {
			if err := checkInput(s); err != nil {
				return fmt.Errorf("%s.inputs_schema[%d] (%s).%w", field, j, s.Key, err)
			}
		}
	}
	if len(t.MappingTemplates) > 0 && t.Batch != nil {
		return errors.New("mapping_templates: a template that delivers in batches cannot have mappings")
	}
	return checkBatch(t)
}

// checkBatch checks a template that delivers in batches: defaults within
// its own caps, and code that reads events, which per-event code must not.
func checkBatch(t *hogwirev1.Template) error {
	b := t.Batch
	if t.Kind == hogwirev1.FunctionKind_FUNCTION_KIND_TRANSFORMATION || t.Kind == hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK {
		if b != nil {
			return errors.New("batch: only destinations deliver in batches")
		}
		return nil
	}
	readsEvents, err := readsGlobal(t.Hog, "events")
	if err != nil {
		return fmt.Errorf("template.hog: %w", err)
	}
	if b == nil {
		if readsEvents {
			return errors.New("template.hog: reads events, which only code that delivers in batches has (declare batch:)")
		}
		return nil
	}
	def := b.GetDefaults()
	switch {
	case def == nil || def.MaxEvents < 1:
		return errors.New("batch.defaults.max_events: is required (at least 1)")
	case b.MaxEvents > 0 && def.MaxEvents > b.MaxEvents:
		return fmt.Errorf("batch.defaults.max_events: %d is more than batch.max_events %d", def.MaxEvents, b.MaxEvents)
	case b.MaxBytes > 0 && def.MaxBytes > b.MaxBytes:
		return fmt.Errorf("batch.defaults.max_bytes: %d is more than batch.max_bytes %d", def.MaxBytes, b.MaxBytes)
	case !readsEvents:
		return errors.New("template.hog: a template that delivers in batches must read events")
	}
	return nil
}

// readsGlobal reports whether code reads the global name: compiled as
// destination code that lacks it, it warns of the unknown global.
func readsGlobal(code, name string) (bool, error) {
	k := kind.Destination()
	k.Globals = slices.DeleteFunc(k.Globals, func(g string) bool { return g == name })
	reads := false
	want := fmt.Sprintf("unknown global variable '%s'", name)
	_, err := k.Compile(code, func(w compiler.Warning) { reads = reads || w.Msg == want })
	return reads, err
}

func checkInput(s *hogwirev1.InputSchema) error {
	if _, ok := hogwirev1.InputType_name[int32(s.Type)]; !ok || s.Type == hogwirev1.InputType_INPUT_TYPE_UNSPECIFIED {
		return errors.New("type: is required")
	}
	if strings.TrimSpace(s.Label) == "" {
		return errors.New("label: is required")
	}
	if s.Type == hogwirev1.InputType_INPUT_TYPE_CHOICE {
		if len(s.Choices) == 0 {
			return errors.New("choices: a choice input needs choices")
		}
		seen := map[string]bool{}
		for i, c := range s.Choices {
			if c.Value == "" || seen[c.Value] {
				return fmt.Errorf("choices[%d].value: %q is empty or repeated", i, c.Value)
			}
			seen[c.Value] = true
		}
	} else if len(s.Choices) > 0 {
		return errors.New("choices: only choice inputs have choices")
	}
	def, ok, err := inputs.DefaultOf(s)
	if err != nil {
		return fmt.Errorf("default: %w", err)
	}
	if !ok {
		return nil
	}
	if msg := inputs.Check(s, def); msg != "" {
		return fmt.Errorf("default: %s", msg)
	}
	if _, err := inputs.Compile(def, inputs.Language(s, nil)); err != nil {
		return fmt.Errorf("default: template: %w", err)
	}
	return nil
}
