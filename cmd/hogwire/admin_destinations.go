package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/bytesize"
	"github.com/hogwire/hogwire/enumword"
	"github.com/hogwire/hogwire/resourcename"
)

func (a *app) destinationsCommand() *cobra.Command {
	return groupCommand("destinations", "Manage destinations: create, list, get, update, delete, enable, disable, test", "",
		a.destinationsCreate(), a.destinationsList(), a.destinationsGet(), a.destinationsUpdate(), a.destinationsDelete(),
		a.destinationsEnable(), a.destinationsDisable(), a.destinationsReenable(), a.destinationsTest())
}

// destinationEdit holds the flags that set a destination's fields, shared
// by create and update.
type destinationEdit struct {
	name, description, hogFile, inputsFile, filterExpr, file string
	mappingsFile                                             string
	inputs, filterEvents, inputSchema                        []string
	enabled, validateOnly                                    bool
	limits                                                   limitFlags
	batch                                                    batchFlags
}

func (e *destinationEdit) register(fs *pflag.FlagSet) {
	fs.StringVar(&e.name, "name", "", "display name")
	fs.StringVar(&e.description, "description", "", "description")
	fs.StringVar(&e.hogFile, "hog-file", "", "read the Hog code from this `file` (- for stdin)")
	fs.StringArrayVar(&e.inputSchema, "input-schema", nil, "declare an input: `KEY:TYPE[:secret][:required]`, repeatable; TYPE is string, number, boolean, choice, dictionary, json or email (replaces the inputs schema)")
	fs.StringArrayVar(&e.inputs, "input", nil, "set an input: `key=value`, repeatable; the value is read as the input's type (number, boolean, JSON for json and dictionary inputs)")
	fs.StringVar(&e.inputsFile, "inputs-file", "", "set inputs from a YAML or JSON `file` mapping key to value (- for stdin)")
	fs.StringVar(&e.mappingsFile, "mappings-file", "", "set the mappings from a YAML or JSON `file`: a list of {name, filters, inputs_schema, inputs (key to value, as in --inputs-file), disabled}; replaces them (- for stdin; an empty list removes them)")
	fs.StringArrayVar(&e.filterEvents, "filter-event", nil, "run only for this event `name`, repeatable; replaces the event filters (an empty name removes them)")
	fs.StringVar(&e.filterExpr, "filter-expr", "", "run only for events where this Hog `expression` is true (empty removes it)")
	fs.BoolVar(&e.enabled, "enabled", true, "whether the destination runs (--enabled=false to disable)")
	fs.StringVarP(&e.file, "file", "f", "", "a whole Destination from this YAML or JSON `file` (input types may be words: string, json…; - for stdin); flags override it")
	fs.BoolVar(&e.validateOnly, "validate-only", false, "validate and compile only; store nothing")
	e.limits.register(fs)
	e.batch.register(fs)
}

// limitFlags set a destination's execution limits; zero leaves a limit at
// the server's default.
type limitFlags struct {
	execTimeout, fetchTimeout        time.Duration
	maxFetches, concurrency          int32
	maxSteps                         int64
	maxMemory                        string
	retryBase, retryMax, retryGiveUp time.Duration
	maxRate                          float64
	maxInFlight                      int32
	maxBacklog                       int64
	maxBacklogBytes                  string
	maxBacklogAge                    time.Duration
}

var limitFlagNames = []string{"exec-timeout", "fetch-timeout", "max-fetches", "max-concurrency", "max-steps", "max-memory",
	"retry-base", "retry-max", "retry-give-up", "max-rate", "max-requests-in-flight", "max-backlog", "max-backlog-bytes", "max-backlog-age"}

func (l *limitFlags) register(fs *pflag.FlagSet) {
	fs.DurationVar(&l.execTimeout, "exec-timeout", 0, "limit: wall time of the Hog code per invocation (server default 5s)")
	fs.DurationVar(&l.fetchTimeout, "fetch-timeout", 0, "limit: timeout of one HTTP request made by fetch (server default 10s)")
	fs.Int32Var(&l.maxFetches, "max-fetches", 0, "limit: fetch calls per invocation (server default 5)")
	fs.Int32Var(&l.concurrency, "max-concurrency", 0, "limit: invocations in flight at once on one node (server default 32)")
	fs.Int64Var(&l.maxSteps, "max-steps", 0, "limit: VM steps per invocation")
	fs.StringVar(&l.maxMemory, "max-memory", "", "limit: VM memory per invocation, e.g. 64MiB (server default 64MiB)")
	fs.DurationVar(&l.retryBase, "retry-base", 0, "durable retries: first wait before retrying an event whose delivery failed (node default 5s)")
	fs.DurationVar(&l.retryMax, "retry-max", 0, "durable retries: longest wait between retries (node default 1h)")
	fs.DurationVar(&l.retryGiveUp, "retry-give-up", 0, "durable retries: give an event up this long after its first failure (node default 24h)")
	fs.Float64Var(&l.maxRate, "max-rate", 0, "limit: requests per second to the endpoint, across all data-plane nodes (0: none, or the template's)")
	fs.Int32Var(&l.maxInFlight, "max-requests-in-flight", 0, "limit: requests to the endpoint in flight at once, across all data-plane nodes (0: none)")
	fs.Int64Var(&l.maxBacklog, "max-backlog", 0, "backlog: events parked for later at most; further events are dropped and logged (node default 1000000)")
	fs.StringVar(&l.maxBacklogBytes, "max-backlog-bytes", "", "backlog: about how many bytes of parked events at most, e.g. 512MiB (node default 1GiB)")
	fs.DurationVar(&l.maxBacklogAge, "max-backlog-age", 0, "backlog: drop a parked event waiting this long (node default 24h)")
}

// apply sets the limits given on the command line on base (a copy) and
// reports whether any was.
func (l *limitFlags) apply(c *adminCmd, base *hogwirev1.ExecutionLimits) (*hogwirev1.ExecutionLimits, bool, error) {
	out := &hogwirev1.ExecutionLimits{}
	if base != nil {
		out = proto.CloneOf(base)
	}
	any := false
	for _, name := range limitFlagNames {
		if !c.given(name) {
			continue
		}
		any = true
		switch name {
		case "exec-timeout":
			out.Timeout = durationOrNil(l.execTimeout)
		case "fetch-timeout":
			out.FetchTimeout = durationOrNil(l.fetchTimeout)
		case "max-fetches":
			out.MaxFetches = l.maxFetches
		case "max-concurrency":
			out.MaxConcurrency = l.concurrency
		case "max-steps":
			out.MaxSteps = l.maxSteps
		case "retry-base":
			out.RetryBase = durationOrNil(l.retryBase)
		case "retry-max":
			out.RetryMax = durationOrNil(l.retryMax)
		case "retry-give-up":
			out.RetryGiveUp = durationOrNil(l.retryGiveUp)
		case "max-rate":
			out.MaxRate = l.maxRate
		case "max-requests-in-flight":
			out.MaxRequestsInFlight = l.maxInFlight
		case "max-backlog":
			out.MaxBacklog = l.maxBacklog
		case "max-backlog-age":
			out.MaxBacklogAge = durationOrNil(l.maxBacklogAge)
		case "max-backlog-bytes":
			n, err := parseBytes(l.maxBacklogBytes)
			if err != nil {
				return nil, false, usagef("--max-backlog-bytes: %v", err)
			}
			out.MaxBacklogBytes = n
		case "max-memory":
			n, err := parseBytes(l.maxMemory)
			if err != nil {
				return nil, false, usagef("--max-memory: %v", err)
			}
			out.MaxMemoryBytes = n
		}
	}
	return out, any, nil
}

func durationOrNil(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// parseBytes reads a byte count: a number with an optional unit (B, KB,
// KiB, MB, MiB, GB, GiB); "" is 0.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	mult, ok := map[string]float64{"": 1, "b": 1, "kb": 1e3, "kib": 1 << 10, "mb": 1e6, "mib": 1 << 20, "gb": 1e9, "gib": 1 << 30}[strings.ToLower(unit)]
	if err != nil || !ok || f < 0 {
		return 0, fmt.Errorf("%q is not a size such as 64MiB", s)
	}
	return int64(f * mult), nil
}

// parseInputSchema reads --input-schema KEY:TYPE[:secret][:required].
func parseInputSchema(specs []string) ([]*hogwirev1.InputSchema, error) {
	var out []*hogwirev1.InputSchema
	seen := map[string]bool{}
	for _, spec := range specs {
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || parts[0] == "" {
			return nil, usagef("--input-schema %q: want KEY:TYPE[:secret][:required]", spec)
		}
		if seen[parts[0]] {
			return nil, usagef("--input-schema: %s is declared twice", parts[0])
		}
		seen[parts[0]] = true
		ed := hogwirev1.InputType(0).Descriptor()
		t, ok := enumword.Parse(ed, parts[1])
		if !ok {
			return nil, usagef("--input-schema %q: type %q is not one of %s", spec, parts[1], strings.Join(enumword.Words(ed), ", "))
		}
		s := &hogwirev1.InputSchema{Key: parts[0], Type: hogwirev1.InputType(t), Label: parts[0]}
		for _, m := range parts[2:] {
			switch m {
			case "secret":
				s.Secret = true
			case "required":
				s.Required = true
			default:
				return nil, usagef("--input-schema %q: %q is not secret or required", spec, m)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// check catches what is wrong with the flags before anything is sent.
func (e *destinationEdit) check() error {
	n := 0
	for _, p := range []string{e.file, e.hogFile, e.inputsFile, e.mappingsFile} {
		if p == "-" {
			n++
		}
	}
	if n > 1 {
		return usagef("only one of -f, --hog-file, --inputs-file and --mappings-file can read stdin")
	}
	for _, kv := range e.inputs {
		if key, _, ok := strings.Cut(kv, "="); !ok || key == "" {
			return usagef("--input %q: want key=value", kv)
		}
	}
	if _, err := parseInputSchema(e.inputSchema); err != nil {
		return err
	}
	if _, err := parseBytes(e.limits.maxMemory); err != nil {
		return usagef("--max-memory: %v", err)
	}
	if _, err := parseBytes(e.batch.maxBytes); err != nil {
		return usagef("--batch-max-bytes: %v", err)
	}
	return nil
}

// given reports whether any flag or file changes a field.
func (e *destinationEdit) given(c *adminCmd) bool {
	for _, f := range append([]string{"name", "description", "hog-file", "input", "inputs-file", "filter-event", "filter-expr", "enabled", "file", "input-schema", "mappings-file"}, append(limitFlagNames, batchFlagNames...)...) {
		if c.given(f) {
			return true
		}
	}
	return false
}

// apply sets the fields given by flags on d and returns their update-mask
// paths. schema types the --input values; baseFilters is what filter flags
// change when d has no filters of its own.
func (e *destinationEdit) apply(c *adminCmd, d *hogwirev1.Destination, schema []*hogwirev1.InputSchema, baseFilters *hogwirev1.Filters) ([]string, error) {
	var paths []string
	if c.given("name") {
		d.DisplayName = e.name
		paths = append(paths, "display_name")
	}
	if c.given("description") {
		d.Description = e.description
		paths = append(paths, "description")
	}
	if c.given("enabled") {
		d.Enabled = e.enabled
		paths = append(paths, "enabled")
	}
	if c.given("hog-file") {
		b, err := c.readInput(e.hogFile)
		if err != nil {
			return nil, fmt.Errorf("--hog-file: %w", err)
		}
		d.Hog = string(b)
		paths = append(paths, "hog")
	}
	if c.given("filter-event") || c.given("filter-expr") {
		f := d.Filters
		if f == nil {
			f = &hogwirev1.Filters{}
			if baseFilters != nil {
				f = proto.CloneOf(baseFilters)
			}
		}
		f.Bytecode = nil
		if c.given("filter-event") {
			f.Events = nil
			for _, ev := range e.filterEvents {
				if ev != "" {
					f.Events = append(f.Events, &hogwirev1.EventFilter{Event: ev})
				}
			}
		}
		if c.given("filter-expr") {
			f.Expression = e.filterExpr
		}
		d.Filters = f
		paths = append(paths, "filters")
	}
	if c.given("input-schema") {
		schema, err := parseInputSchema(e.inputSchema)
		if err != nil {
			return nil, err
		}
		d.InputsSchema = schema
		paths = append(paths, "inputs_schema")
	}
	limits, ok, err := e.limits.apply(c, d.GetLimits())
	if err != nil {
		return nil, err
	}
	if ok {
		d.Limits = limits
		paths = append(paths, "limits")
	}
	batch, ok, err := e.batch.apply(c, d.GetBatch())
	if err != nil {
		return nil, err
	}
	if ok {
		d.Batch = batch
		paths = append(paths, "batch")
	}
	if c.given("mappings-file") {
		b, err := c.readInput(e.mappingsFile)
		if err != nil {
			return nil, fmt.Errorf("--mappings-file: %w", err)
		}
		if d.Mappings, err = parseMappingsFile(b); err != nil {
			return nil, usagef("--mappings-file %s: %v", e.mappingsFile, err)
		}
		paths = append(paths, "mappings")
	}
	setInput := func(key string, v *structpb.Value) {
		if d.Inputs == nil {
			d.Inputs = map[string]*hogwirev1.InputValue{}
		}
		d.Inputs[key] = &hogwirev1.InputValue{Value: v}
		paths = append(paths, "inputs."+key)
	}
	if c.given("inputs-file") {
		b, err := c.readInput(e.inputsFile)
		if err != nil {
			return nil, fmt.Errorf("--inputs-file: %w", err)
		}
		values, err := parseInputsFile(b)
		if err != nil {
			return nil, fmt.Errorf("--inputs-file %s: %w", e.inputsFile, err)
		}
		for _, k := range sortedKeys(values) {
			setInput(k, values[k])
		}
	}
	for _, kv := range e.inputs {
		key, raw, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return nil, usagef("--input %q: want key=value", kv)
		}
		if c.given("input-schema") {
			schema = d.InputsSchema
		}
		v, err := coerceInput(raw, inputType(schema, key))
		if err != nil {
			return nil, usagef("--input %s: %v", key, err)
		}
		setInput(key, v)
	}
	return paths, nil
}

func inputType(schema []*hogwirev1.InputSchema, key string) hogwirev1.InputType {
	for _, s := range schema {
		if s.GetKey() == key {
			return s.GetType()
		}
	}
	return hogwirev1.InputType_INPUT_TYPE_UNSPECIFIED
}

// coerceInput reads a command-line value as the JSON value an input of
// type t holds. Strings (and inputs of unknown type, which the server will
// reject by name) are taken as they are.
func coerceInput(raw string, t hogwirev1.InputType) (*structpb.Value, error) {
	switch t {
	case hogwirev1.InputType_INPUT_TYPE_NUMBER:
		n, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", raw)
		}
		return structpb.NewNumberValue(n), nil
	case hogwirev1.InputType_INPUT_TYPE_BOOLEAN:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", raw)
		}
		return structpb.NewBoolValue(b), nil
	case hogwirev1.InputType_INPUT_TYPE_JSON, hogwirev1.InputType_INPUT_TYPE_DICTIONARY:
		v := &structpb.Value{}
		if err := v.UnmarshalJSON([]byte(raw)); err != nil {
			return nil, fmt.Errorf("%q is not JSON (a JSON string needs quotes: '\"text\"')", raw)
		}
		if _, ok := v.GetKind().(*structpb.Value_StructValue); !ok && t == hogwirev1.InputType_INPUT_TYPE_DICTIONARY {
			return nil, fmt.Errorf("%q is not a JSON object", raw)
		}
		return v, nil
	}
	return structpb.NewStringValue(raw), nil
}

// parseInputsFile reads a YAML or JSON map of input key to value.
// parseMappingsFile decodes a list of mappings (bare, or as {mappings:
// […]}) in protojson form, enum values as words, each mapping's inputs
// mapping key to value as --inputs-file does.
func parseMappingsFile(b []byte) ([]*hogwirev1.Mapping, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, err
	}
	var list []any
	if err := json.Unmarshal(j, &list); err != nil {
		var top struct {
			Mappings []any `json:"mappings"`
		}
		if err := json.Unmarshal(j, &top); err != nil {
			return nil, fmt.Errorf("want a list of mappings: %w", err)
		}
		list = top.Mappings
	}
	for i, m := range list {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("mappings[%d]: want an object", i)
		}
		if ins, ok := mm["inputs"].(map[string]any); ok {
			for k, v := range ins {
				ins[k] = map[string]any{"value": v}
			}
		}
	}
	top := map[string]any{"mappings": list}
	if err := enumword.Normalize((&hogwirev1.Destination{}).ProtoReflect().Descriptor(), top); err != nil {
		return nil, err
	}
	if j, err = json.Marshal(top); err != nil {
		return nil, err
	}
	d := &hogwirev1.Destination{}
	if err := protojson.Unmarshal(j, d); err != nil {
		return nil, err
	}
	if d.Mappings == nil {
		d.Mappings = []*hogwirev1.Mapping{}
	}
	return d.Mappings, nil
}

func parseInputsFile(b []byte) (map[string]*structpb.Value, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(j, &raw); err != nil {
		return nil, fmt.Errorf("want a map of input key to value: %w", err)
	}
	out := make(map[string]*structpb.Value, len(raw))
	for k, r := range raw {
		v := &structpb.Value{}
		if err := v.UnmarshalJSON(r); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// readDestinationFile decodes a Destination from YAML or JSON in protojson
// form, bare or wrapped as {"destination": …}, with enum values as words
// ("type: string") or full names. It also returns the proto names of the
// top-level fields the file sets, since proto3 cannot tell "enabled: false"
// from no enabled at all.
func readDestinationFile(b []byte) (*hogwirev1.Destination, map[string]bool, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, nil, err
	}
	var top map[string]any
	if err := json.Unmarshal(j, &top); err != nil || top == nil {
		return nil, nil, fmt.Errorf("want a Destination object")
	}
	// Accept what "destinations get -o yaml" prints: the response message
	// that wraps the destination.
	if inner, ok := top["destination"].(map[string]any); ok && len(top) == 1 {
		top = inner
	}
	md := (&hogwirev1.Destination{}).ProtoReflect().Descriptor()
	if err := enumword.Normalize(md, top); err != nil {
		return nil, nil, err
	}
	if j, err = json.Marshal(top); err != nil {
		return nil, nil, err
	}
	d := &hogwirev1.Destination{}
	if err := protojson.Unmarshal(j, d); err != nil {
		return nil, nil, err
	}
	keys := map[string]bool{}
	for k := range top {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		if fd != nil {
			keys[string(fd.Name())] = true
		}
	}
	return d, keys, nil
}

func (c *adminCmd) readDestinationFile(path string) (*hogwirev1.Destination, map[string]bool, error) {
	b, err := c.readInput(path)
	if err != nil {
		return nil, nil, fmt.Errorf("-f: %w", err)
	}
	d, keys, err := readDestinationFile(b)
	if err != nil {
		return nil, nil, usagef("-f %s: %v", path, err)
	}
	return d, keys, nil
}

const createLong = `Creates a destination, enabled unless --enabled=false (or the file says enabled: false).
Start from a template (--template) and fill in its inputs; or give your own Hog code with
--hog-file, declaring its inputs with --input-schema; or give a whole destination in a
YAML or JSON file (-f), such as one 'destinations get -o yaml' printed.`

const createExample = `  # From a template:
  hogwire destinations create --project shop --template webhook --input url=https://example.com/hook --id hook

  # Your own code, no file needed for the inputs:
  hogwire destinations create --project shop --id notify --name Notify --hog-file notify.hog \
      --input-schema url:string:required --input-schema api_key:string:secret \
      --input url=https://example.com/notify --input api_key=s3cret --filter-event signed_up --max-fetches 2`

func (a *app) destinationsCreate() *cobra.Command {
	c := a.newAdminCmd("create", "Create a destination from a template, your Hog code or a file", createLong, noArgs)
	c.cmd.Example = createExample
	var e destinationEdit
	var project, id, template, kindWord string
	var order int32
	e.register(c.fs)
	c.fs.StringVar(&kindWord, "kind", "", "what it is: destination, transformation or source-webhook (default: the template's, else destination); see docs/transformations.md and docs/webhooks.md")
	c.fs.Int32Var(&order, "order", 0, "transformations: where it runs among its project's, lowest first")
	c.fs.StringVar(&project, "project", "", "project to create it in: projects/ID or ID (default: $HOGWIRE_PROJECT or the context's)")
	c.fs.StringVar(&id, "id", "", "destination id, unique across projects (default: generated)")
	c.fs.StringVar(&template, "template", "", "start from this template (e.g. webhook): its code, inputs schema and filters fill what is not given")
	c.cmd.RegisterFlagCompletionFunc("template", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return c.complete(cmd, completeTemplates)
	})
	c.cmd.RegisterFlagCompletionFunc("project", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return c.complete(cmd, completeProjects)
	})
	return c.runE(func(ctx context.Context) error {
		if err := e.check(); err != nil {
			return err
		}
		d := &hogwirev1.Destination{}
		fileKeys := map[string]bool{}
		if e.file != "" {
			var err error
			if d, fileKeys, err = c.readDestinationFile(e.file); err != nil {
				return err
			}
			// A file written by "destinations get -o yaml" names its project.
			if p, fid, err := resourcename.ParseDestination(d.GetName()); err == nil {
				if !c.given("project") && p != resourcename.Wildcard {
					project = p
				}
				if id == "" {
					id = fid
				}
			}
			if template == "" {
				template = d.GetTemplate()
			}
			d.Name, d.Etag, d.Template = "", "", ""
		}
		if project == "" {
			return usagef("destinations create: --project is required")
		}
		if template == "" && !c.given("hog-file") && d.GetHog() == "" {
			return usagef("destinations create: give --template, --hog-file or -f")
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		schema := d.GetInputsSchema()
		var baseFilters *hogwirev1.Filters
		if template != "" {
			// The template's schema types the --input values.
			t, err := hogwirev1.NewTemplateServiceClient(cc).GetTemplate(ctx, &hogwirev1.GetTemplateRequest{Name: resourcename.TemplateArg(template)})
			if err != nil {
				return c.callErr("get template", err)
			}
			if len(schema) == 0 {
				schema = t.GetTemplate().GetInputsSchema()
			}
			baseFilters = t.GetTemplate().GetFilters()
		}
		if _, err := e.apply(c, d, schema, baseFilters); err != nil {
			return err
		}
		if !c.given("enabled") && !fileKeys["enabled"] {
			d.Enabled = true
		}
		if d.Kind, err = parseFunctionKind(kindWord); err != nil {
			return err
		}
		if c.given("order") {
			d.Order = order
		}
		resp, err := hogwirev1.NewDestinationServiceClient(cc).CreateDestination(ctx, &hogwirev1.CreateDestinationRequest{
			Parent: resourcename.ProjectArg(project), Destination: d, DestinationId: id,
			FromTemplate: template, ValidateOnly: e.validateOnly,
		})
		if err != nil {
			return c.callErr("create destination", err)
		}
		return c.printMessage(resp, func(w io.Writer) error {
			if e.validateOnly {
				fmt.Fprintf(w, "Valid; nothing was created.\n\n")
			} else {
				fmt.Fprintf(w, "Created %s.\n\n", resp.GetDestination().GetName())
			}
			return writeDestination(w, resp.GetDestination())
		})
	}).cmd
}

// complete completes a flag's value with names from the server.
func (c *adminCmd) complete(cmd *cobra.Command, list func(ctx context.Context, cc *grpc.ClientConn) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	saved := c.cmd.ValidArgsFunction
	c.completeArgs(list)
	defer func() { c.cmd.ValidArgsFunction = saved }()
	return c.cmd.ValidArgsFunction(cmd, nil, "")
}

// updatableFromFile are the top-level fields an update takes from -f;
// inputs are taken key by key.
func updatableFromFile() []string {
	return []string{
		"display_name", "description", "enabled", "hog", "inputs_schema",
		"filters", "masking", "limits", "notification_destination", "batch", "mappings",
	}
}

const updateLong = `Changes the fields given by flags (or set in the -f file) and nothing else.
DESTINATION is projects/P/destinations/ID or just ID. The update carries the etag
that was read (or the file's etag), so a concurrent edit is refused, not lost.
Inputs are changed key by key; secret inputs not given keep their value; limit
flags change those limits and keep the others.`

func (a *app) destinationsUpdate() *cobra.Command {
	c := a.newAdminCmd("update DESTINATION", "Change the fields given by flags or a file", updateLong, exactArgs(1))
	var e destinationEdit
	e.register(c.fs)
	c.completeArgs(completeDestinations)
	return c.runE(func(ctx context.Context) error {
		if err := e.check(); err != nil {
			return err
		}
		if !e.given(c) {
			return usagef("destinations update: nothing to update: give -f or flags such as --input, --name, --hog-file, --filter-expr, --enabled")
		}
		var file *hogwirev1.Destination
		var fileKeys map[string]bool
		if e.file != "" {
			var err error
			if file, fileKeys, err = c.readDestinationFile(e.file); err != nil {
				return err
			}
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		client := hogwirev1.NewDestinationServiceClient(cc)
		got, err := client.GetDestination(ctx, &hogwirev1.GetDestinationRequest{Name: resourcename.DestinationArg(c.args[0])})
		if err != nil {
			return c.callErr("get destination", err)
		}
		cur := got.GetDestination()
		upd := &hogwirev1.Destination{Name: cur.GetName(), Etag: cur.GetEtag()}
		var paths []string
		if file != nil {
			if file.GetName() != "" && resourcename.ID(file.GetName()) != resourcename.ID(cur.GetName()) {
				return usagef("-f %s describes %s, not %s", e.file, file.GetName(), cur.GetName())
			}
			if file.GetEtag() != "" {
				// The file came from an earlier read: refuse to overwrite what
				// changed since then.
				upd.Etag = file.GetEtag()
			}
			src, dst := file.ProtoReflect(), upd.ProtoReflect()
			for _, name := range updatableFromFile() {
				if fileKeys[name] {
					fd := src.Descriptor().Fields().ByName(protoreflect.Name(name))
					dst.Set(fd, src.Get(fd))
					paths = append(paths, name)
				}
			}
			for k, in := range file.GetInputs() {
				// A secret input read back has no value: leave it as stored.
				if in.GetValue() == nil {
					continue
				}
				if upd.Inputs == nil {
					upd.Inputs = map[string]*hogwirev1.InputValue{}
				}
				upd.Inputs[k] = &hogwirev1.InputValue{Value: in.GetValue()}
				paths = append(paths, "inputs."+k)
			}
		}
		schema := cur.GetInputsSchema()
		if fileKeys["inputs_schema"] {
			schema = upd.GetInputsSchema()
		}
		if upd.Limits == nil {
			// Limit flags change one limit and keep the others.
			upd.Limits = cur.GetLimits()
		}
		if upd.Batch == nil {
			upd.Batch = cur.GetBatch()
		}
		more, err := e.apply(c, upd, schema, cur.GetFilters())
		if err != nil {
			return err
		}
		paths = sortedUnique(append(paths, more...))
		if len(paths) == 0 {
			return usagef("destinations update: nothing to update")
		}
		resp, err := client.UpdateDestination(ctx, &hogwirev1.UpdateDestinationRequest{
			Destination: upd, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}, ValidateOnly: e.validateOnly,
		})
		if err != nil {
			return c.callErr("update destination", err)
		}
		return c.printMessage(resp, func(w io.Writer) error {
			if e.validateOnly {
				fmt.Fprintf(w, "Valid; nothing was changed (%s).\n\n", strings.Join(paths, ", "))
			} else {
				fmt.Fprintf(w, "Updated %s (%s).\n\n", resp.GetDestination().GetName(), strings.Join(paths, ", "))
			}
			return writeDestination(w, resp.GetDestination())
		})
	}).cmd
}

func (a *app) destinationsList() *cobra.Command {
	c := a.newAdminCmd("list", "List destinations", "Lists the destinations of a project, or of every project.", noArgs)
	var project, template, enabled, health string
	c.fs.StringVar(&project, "project", "", "only this project: projects/ID or ID (default: every project)")
	c.fs.StringVar(&template, "template", "", "only destinations created from this template")
	var kindWord string
	c.fs.StringVar(&kindWord, "kind", "", "only functions of this kind (destination, transformation, source-webhook)")
	c.fs.StringVar(&enabled, "enabled", "", "only enabled (true) or disabled (false) destinations")
	c.fs.StringVar(&health, "health", "", "only destinations in this health state: healthy, degraded, disabled-temporarily or disabled-indefinitely")
	return c.runE(func(ctx context.Context) error {
		req := &hogwirev1.ListDestinationsRequest{Parent: resourcename.Project(resourcename.Wildcard), PageSize: 1000}
		if project != "" && project != resourcename.Wildcard {
			req.Parent = resourcename.ProjectArg(project)
		}
		if template != "" {
			req.Template = resourcename.TemplateArg(template)
		}
		var err error
		if req.Kind, err = parseFunctionKind(kindWord); err != nil {
			return err
		}
		if enabled != "" {
			b, err := strconv.ParseBool(enabled)
			if err != nil {
				return usagef("--enabled: %q is not true or false", enabled)
			}
			req.Enabled = &b
		}
		if health != "" {
			ed := hogwirev1.HealthState(0).Descriptor()
			v, ok := enumword.Parse(ed, health)
			if !ok {
				return usagef("--health: %q is not one of %s", health, strings.Join(enumword.Words(ed), ", "))
			}
			req.HealthState = hogwirev1.HealthState(v)
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		client := hogwirev1.NewDestinationServiceClient(cc)
		all := &hogwirev1.ListDestinationsResponse{}
		for {
			resp, err := client.ListDestinations(ctx, req)
			if err != nil {
				return c.callErr("list destinations", err)
			}
			all.Destinations = append(all.Destinations, resp.GetDestinations()...)
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		everyProject := req.Parent == resourcename.Project(resourcename.Wildcard)
		return c.printMessage(all, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			if everyProject {
				fmt.Fprint(tw, "PROJECT\t")
			}
			fmt.Fprintln(tw, "ID\tNAME\tENABLED\tHEALTH\tTEMPLATE\tUPDATED")
			for _, d := range all.Destinations {
				if everyProject {
					fmt.Fprintf(tw, "%s\t", resourcename.ProjectOf(d.GetName()))
				}
				tpl := "-"
				if d.GetTemplate() != "" {
					tpl = resourcename.ID(d.GetTemplate())
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", resourcename.ID(d.GetName()), d.GetDisplayName(),
					yesNo(d.GetEnabled()), healthWord(d.GetHealth()), tpl, fmtTime(d.GetUpdateTime()))
			}
			return tw.Flush()
		})
	}).cmd
}

// destinationCall is a command that makes one call on one destination.
func destinationCall[R proto.Message](a *app, use, short, long, op string,
	call func(ctx context.Context, client hogwirev1.DestinationServiceClient, name string) (R, error),
	text func(c *adminCmd, w io.Writer, resp R) error) *cobra.Command {
	c := a.newAdminCmd(use+" DESTINATION", short, long+" DESTINATION is projects/P/destinations/ID or just ID.", exactArgs(1))
	c.completeArgs(completeDestinations)
	return c.runE(func(ctx context.Context) error {
		return callOne(ctx, c, op,
			func(ctx context.Context, cc *grpc.ClientConn, arg string) (R, error) {
				return call(ctx, hogwirev1.NewDestinationServiceClient(cc), resourcename.DestinationArg(arg))
			},
			func(w io.Writer, resp R) error { return text(c, w, resp) })
	}).cmd
}

func (a *app) destinationsGet() *cobra.Command {
	return destinationCall(a, "get", "Show a destination: inputs, filters, health and its Hog code", "Shows a destination.", "get destination",
		func(ctx context.Context, client hogwirev1.DestinationServiceClient, name string) (*hogwirev1.GetDestinationResponse, error) {
			return client.GetDestination(ctx, &hogwirev1.GetDestinationRequest{Name: name})
		},
		func(_ *adminCmd, w io.Writer, resp *hogwirev1.GetDestinationResponse) error {
			return writeDestination(w, resp.GetDestination())
		})
}

func (a *app) destinationsDelete() *cobra.Command {
	return destinationCall(a, "delete", "Delete a destination", "Deletes a destination.", "delete destination",
		func(ctx context.Context, client hogwirev1.DestinationServiceClient, name string) (*hogwirev1.DeleteDestinationResponse, error) {
			return client.DeleteDestination(ctx, &hogwirev1.DeleteDestinationRequest{Name: name})
		},
		func(c *adminCmd, w io.Writer, resp *hogwirev1.DeleteDestinationResponse) error {
			_, err := fmt.Fprintf(w, "Deleted %s.%s\n", resourcename.DestinationArg(c.args[0]), droppedText(resp.GetDroppedBacklogEvents()))
			return err
		})
}

func (a *app) destinationsEnable() *cobra.Command {
	return enableDestination(a, "enable", "Enable a destination and reset its health",
		"Enables a destination and resets its health: also how to bring back a quarantined or disabled one.",
		"enable destination", "Enabled %s (health: %s).\n")
}

func (a *app) destinationsReenable() *cobra.Command {
	return enableDestination(a, "reenable", "Bring back a quarantined or disabled destination",
		"Brings back a quarantined or disabled destination: enables it and resets its health to healthy (the same as enable).",
		"re-enable destination", "Re-enabled %s: health reset to %s.\n")
}

// enableDestination is enable and reenable: EnableDestination also resets
// the health state.
func enableDestination(a *app, use, short, long, op, format string) *cobra.Command {
	return destinationCall(a, use, short, long, op,
		func(ctx context.Context, client hogwirev1.DestinationServiceClient, name string) (*hogwirev1.EnableDestinationResponse, error) {
			return client.EnableDestination(ctx, &hogwirev1.EnableDestinationRequest{Name: name})
		},
		func(_ *adminCmd, w io.Writer, resp *hogwirev1.EnableDestinationResponse) error {
			d := resp.GetDestination()
			_, err := fmt.Fprintf(w, format, d.GetName(), healthWord(d.GetHealth()))
			return err
		})
}

func (a *app) destinationsDisable() *cobra.Command {
	return destinationCall(a, "disable", "Disable a destination", "Disables a destination: events are no longer run for it.", "disable destination",
		func(ctx context.Context, client hogwirev1.DestinationServiceClient, name string) (*hogwirev1.DisableDestinationResponse, error) {
			return client.DisableDestination(ctx, &hogwirev1.DisableDestinationRequest{Name: name})
		},
		func(_ *adminCmd, w io.Writer, resp *hogwirev1.DisableDestinationResponse) error {
			_, err := fmt.Fprintf(w, "Disabled %s.%s\n", resp.GetDestination().GetName(), droppedText(resp.GetDroppedBacklogEvents()))
			return err
		})
}

// droppedText says how many backlogged events a disable or delete drops.
func droppedText(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" Dropped its backlog of %d events waiting for delivery.", n)
}

// writeDestination is the readable view of "destinations get".
func writeDestination(w io.Writer, d *hogwirev1.Destination) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", d.GetName())
	fmt.Fprintf(tw, "Display name:\t%s\n", d.GetDisplayName())
	if d.GetDescription() != "" {
		fmt.Fprintf(tw, "Description:\t%s\n", oneLine(d.GetDescription()))
	}
	fmt.Fprintf(tw, "Enabled:\t%s\n", yesNo(d.GetEnabled()))
	fmt.Fprintf(tw, "Template:\t%s\n", orDash(d.GetTemplate()))
	if d.GetKind() == hogwirev1.FunctionKind_FUNCTION_KIND_SOURCE_WEBHOOK {
		fmt.Fprintf(tw, "URL:\tPOST %s on the data plane's HTTP address (hogwire dev: http://127.0.0.1:8080%s)\n", webhookPath(d.GetName()), webhookPath(d.GetName()))
	}
	if h := d.GetHealth(); h != nil {
		fmt.Fprintf(tw, "Health:\t%s since %s\n", healthWord(h), fmtTime(h.GetStateTime()))
		if h.GetReason() != "" {
			fmt.Fprintf(tw, "Health reason:\t%s\n", oneLine(h.GetReason()))
		}
		if h.GetRetryTime() != nil {
			fmt.Fprintf(tw, "Retry at:\t%s\n", fmtTime(h.GetRetryTime()))
		}
	}
	if dl := d.GetDelivery(); dl != nil {
		if p := dl.GetPausedUntil(); p != nil {
			fmt.Fprintf(tw, "Paused until:\t%s (%s)\n", fmtTime(p), oneLine(dl.GetPauseReason()))
		}
		if n := dl.GetBacklogEvents(); n > 0 {
			line := fmt.Sprintf("%d events, about %s", n, bytesize.Format(dl.GetBacklogBytes()))
			if o := dl.GetBacklogOldestTime(); o != nil {
				line += ", oldest since " + fmtTime(o)
			}
			fmt.Fprintf(tw, "Backlog:\t%s (counted %s)\n", line, fmtTime(dl.GetObserveTime()))
		}
	}
	fmt.Fprintf(tw, "Created:\t%s\n", fmtTime(d.GetCreateTime()))
	fmt.Fprintf(tw, "Updated:\t%s\n", fmtTime(d.GetUpdateTime()))
	fmt.Fprintf(tw, "Etag:\t%s\n", d.GetEtag())
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nInputs:")
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	declared := map[string]bool{}
	for _, s := range d.GetInputsSchema() {
		declared[s.GetKey()] = true
		fmt.Fprintf(tw, "  %s\t%s\n", s.GetKey(), inputText(d.GetInputs()[s.GetKey()], s.GetSecret()))
	}
	for _, k := range sortedKeys(d.GetInputs()) {
		if !declared[k] {
			fmt.Fprintf(tw, "  %s\t%s\n", k, inputText(d.GetInputs()[k], false))
		}
	}
	if len(d.GetInputsSchema()) == 0 && len(d.GetInputs()) == 0 {
		fmt.Fprintln(tw, "  (none)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nFilters:")
	writeFilters(w, d.GetFilters())
	for i, m := range d.GetMappings() {
		state := ""
		if m.GetDisabled() {
			state = " (disabled)"
		}
		fmt.Fprintf(w, "\nMapping %d: %s%s\n", i+1, m.GetName(), state)
		writeFilters(w, m.GetFilters())
		for _, k := range sortedKeys(m.GetInputs()) {
			fmt.Fprintf(w, "  inputs.%s: %s\n", k, inputText(m.GetInputs()[k], false))
		}
	}
	if m := d.GetMasking(); m != nil {
		fmt.Fprintf(w, "\nMasking: at most %d per %s of %s\n", max(m.GetThreshold(), 1), m.GetTtl().AsDuration(), m.GetHash())
	}
	if l := d.GetLimits(); l != nil {
		fmt.Fprintf(w, "\nLimits: %s\n", limitsText(l))
	}
	if b := d.GetBatch(); b != nil {
		fmt.Fprintf(w, "\nBatch: %s\n", batchText(b))
	}
	fmt.Fprintln(w, "\nHog:")
	fmt.Fprint(w, indent(d.GetHog(), "  "))
	return nil
}

// inputText shows an input's value; secret values are never shown (the
// server does not return them anyway), only whether one is stored.
func inputText(in *hogwirev1.InputValue, secret bool) string {
	if secret || in.GetSecretSet() {
		if in.GetSecretSet() {
			return "(secret, set)"
		}
		return "(secret, not set)"
	}
	if in.GetValue() == nil {
		return "(not set)"
	}
	return oneLine(valueText(in.GetValue()))
}

func writeFilters(w io.Writer, f *hogwirev1.Filters) {
	if len(f.GetEvents()) == 0 && len(f.GetProperties()) == 0 && f.GetExpression() == "" {
		fmt.Fprintln(w, "  (none: every event)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, e := range f.GetEvents() {
		ev := e.GetEvent()
		if ev == "" {
			ev = "(any event)"
		}
		line := "  event:\t" + ev
		for _, p := range e.GetProperties() {
			line += ", " + propertyText(p)
		}
		fmt.Fprintln(tw, line)
	}
	for _, p := range f.GetProperties() {
		fmt.Fprintf(tw, "  property:\t%s\n", propertyText(p))
	}
	if f.GetExpression() != "" {
		fmt.Fprintf(tw, "  expression:\t%s\n", oneLine(f.GetExpression()))
	}
	tw.Flush()
}

func propertyText(p *hogwirev1.PropertyFilter) string {
	key := p.GetKey()
	if p.GetScope() == hogwirev1.PropertyScope_PROPERTY_SCOPE_PERSON {
		key = "person." + key
	}
	s := key + " " + word(p.GetOperator())
	if p.GetValue() != nil {
		b, _ := p.GetValue().MarshalJSON()
		s += " " + compactJSON(b)
	}
	return s
}

func limitsText(l *hogwirev1.ExecutionLimits) string {
	var parts []string
	if l.GetTimeout() != nil {
		parts = append(parts, "timeout "+l.GetTimeout().AsDuration().String())
	}
	if l.GetFetchTimeout() != nil {
		parts = append(parts, "fetch timeout "+l.GetFetchTimeout().AsDuration().String())
	}
	if n := l.GetMaxFetches(); n != 0 {
		parts = append(parts, fmt.Sprintf("%d fetches", n))
	}
	if n := l.GetMaxConcurrency(); n != 0 {
		parts = append(parts, fmt.Sprintf("concurrency %d", n))
	}
	if n := l.GetMaxSteps(); n != 0 {
		parts = append(parts, fmt.Sprintf("%d steps", n))
	}
	if n := l.GetMaxMemoryBytes(); n != 0 {
		parts = append(parts, fmt.Sprintf("%d bytes of memory", n))
	}
	if l.GetRetryBase() != nil || l.GetRetryMax() != nil || l.GetRetryGiveUp() != nil {
		parts = append(parts, fmt.Sprintf("retries every %s up to %s, for %s", orNode(l.GetRetryBase(), "5s"),
			orNode(l.GetRetryMax(), "1h"), orNode(l.GetRetryGiveUp(), "24h")))
	}
	if r := l.GetMaxRate(); r != 0 {
		parts = append(parts, fmt.Sprintf("%g requests/s", r))
	}
	if n := l.GetMaxRequestsInFlight(); n != 0 {
		parts = append(parts, fmt.Sprintf("%d requests in flight", n))
	}
	if n := l.GetMaxBacklog(); n != 0 {
		parts = append(parts, fmt.Sprintf("backlog of %d events", n))
	}
	if n := l.GetMaxBacklogBytes(); n != 0 {
		parts = append(parts, fmt.Sprintf("backlog of %d bytes", n))
	}
	if l.GetMaxBacklogAge() != nil {
		parts = append(parts, "backlog age "+l.GetMaxBacklogAge().AsDuration().String())
	}
	if len(parts) == 0 {
		return "server defaults"
	}
	return strings.Join(parts, ", ")
}

// oneLine keeps a value from breaking a table: text with line breaks or
// tabs is shown quoted.
func oneLine(s string) string {
	if strings.ContainsAny(s, "\n\r\t") {
		return strconv.Quote(s)
	}
	return s
}

func indent(s, prefix string) string {
	if s == "" {
		return prefix + "(none)\n"
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if line != "" {
			b.WriteString(prefix)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// orNode formats a duration limit, or the node's default when unset.
func orNode(d *durationpb.Duration, def string) string {
	if d == nil {
		return def + " (node default)"
	}
	return d.AsDuration().String()
}

// parseFunctionKind reads a --kind flag: "" is unspecified (the server's
// default, or every kind in a list).
func parseFunctionKind(word string) (hogwirev1.FunctionKind, error) {
	if word == "" {
		return hogwirev1.FunctionKind_FUNCTION_KIND_UNSPECIFIED, nil
	}
	v, ok := enumword.Parse(hogwirev1.FunctionKind(0).Descriptor(), word)
	if !ok {
		return 0, usagef("--kind: %q is not destination, transformation or source-webhook", word)
	}
	return hogwirev1.FunctionKind(v), nil
}
