// Command gendocs writes docs/templates.md from the templates' metadata.
//
//	go run ./templates/gendocs            # rewrite docs/templates.md
//	go run ./templates/gendocs -check     # fail if it is stale (CI)
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/bytesize"
	"github.com/hogwire/hogwire/templates"
)

func main() {
	out := flag.String("o", "docs/templates.md", "file to write")
	check := flag.Bool("check", false, "only check that the file is up to date")
	flag.Parse()
	cat, err := templates.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	coverage, err := readCoverage("templates/posthog.yaml", cat)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	doc := render(cat.List(), coverage)
	if *check {
		cur, _ := os.ReadFile(*out)
		if !bytes.Equal(cur, doc) {
			fmt.Fprintf(os.Stderr, "%s is stale: run go run ./templates/gendocs\n", *out)
			os.Exit(1)
		}
		return
	}
	if err := os.WriteFile(*out, doc, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// posthogTemplate is one entry of templates/posthog.yaml.
type posthogTemplate struct {
	PostHog string `json:"posthog"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Hogwire string `json:"hogwire"`
	Note    string `json:"note"`
}

var coverageStatus = map[string]string{
	"shipped":        "shipped",
	"todo":           "not yet",
	"fetch-options":  "waits for fetch options",
	"not-applicable": "not applicable",
}

// readCoverage reads templates/posthog.yaml and checks that every template
// it names exists.
func readCoverage(path string, cat *templates.Catalog) ([]posthogTemplate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var list []posthogTemplate
	if err := yaml.UnmarshalStrict(raw, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, t := range list {
		if _, ok := coverageStatus[t.Status]; !ok {
			return nil, fmt.Errorf("%s: %s: unknown status %q", path, t.PostHog, t.Status)
		}
		if _, ok := cat.Get(t.Hogwire); (t.Status == "shipped") != (t.Hogwire != "" && ok) {
			return nil, fmt.Errorf("%s: %s: a shipped entry names an existing template, others none (%q)", path, t.PostHog, t.Hogwire)
		}
	}
	return list, nil
}

func render(list []*hogwirev1.Template, coverage []posthogTemplate) []byte {
	var b bytes.Buffer
	b.WriteString("# Destination templates\n\n")
	b.WriteString("Generated from `templates/*/template.yaml` by `go run ./templates/gendocs`; do not edit.\n")
	b.WriteString("Create a destination from one with `hogwire destinations create --project P --template ID --input key=value …`;\n")
	b.WriteString("`hogwire templates show ID` prints its inputs and code.\n\n")
	byCat := map[string][]*hogwirev1.Template{}
	var cats []string
	for _, t := range list {
		if _, ok := byCat[t.Category]; !ok {
			cats = append(cats, t.Category)
		}
		byCat[t.Category] = append(byCat[t.Category], t)
	}
	sort.Strings(cats)
	fmt.Fprintf(&b, "%d templates.\n\n", len(list))
	b.WriteString("Templates marked *batches* deliver events in batches (see [batching](dataplane.md#batch-delivery)):\n")
	b.WriteString("their code reads `events`, one request carries many events, and a destination may change the batch\n")
	b.WriteString("with `--batch-max-events`, `--batch-max-bytes` and `--batch-max-wait` up to the template's caps.\n\n")
	b.WriteString("| template | id | category | status | delivery |\n|---|---|---|---|---|\n")
	for _, t := range list {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", t.DisplayName, strings.TrimPrefix(t.Name, "templates/"), t.Category,
			strings.ToLower(strings.TrimPrefix(t.Status.String(), "TEMPLATE_STATUS_")), delivery(t))
	}
	b.WriteString("\n## PostHog's destinations\n\n")
	b.WriteString("Every realtime destination template PostHog ships (from `templates/posthog.yaml`) and where hogwire stands on it.\n\n")
	counts := map[string]int{}
	for _, t := range coverage {
		counts[t.Status]++
	}
	fmt.Fprintf(&b, "%d shipped, %d not yet, %d waiting for fetch options, %d not applicable.\n\n",
		counts["shipped"], counts["todo"], counts["fetch-options"], counts["not-applicable"])
	b.WriteString("| PostHog template | name | in hogwire | note |\n|---|---|---|---|\n")
	for _, t := range coverage {
		where := coverageStatus[t.Status]
		if t.Hogwire != "" {
			where = "`" + t.Hogwire + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", t.PostHog, t.Name, where, strings.ReplaceAll(t.Note, "|", "\\|"))
	}
	b.WriteString("\n")
	for _, c := range cats {
		fmt.Fprintf(&b, "## %s\n\n", c)
		for _, t := range byCat[c] {
			id := strings.TrimPrefix(t.Name, "templates/")
			status := strings.ToLower(strings.TrimPrefix(t.Status.String(), "TEMPLATE_STATUS_"))
			fmt.Fprintf(&b, "### %s (`%s`, %s)\n\n%s\n\n", t.DisplayName, id, status, t.Description)
			if t.DocsUrl != "" {
				fmt.Fprintf(&b, "Vendor API: <%s>\n\n", t.DocsUrl)
			}
			if bt := t.GetBatch(); bt != nil {
				fmt.Fprintf(&b, "Delivers in batches: %s.\n\n", batchText(bt))
			}
			b.WriteString("| input | type | required | secret | description |\n|---|---|---|---|---|\n")
			for _, in := range t.InputsSchema {
				typ := strings.ToLower(strings.TrimPrefix(in.Type.String(), "INPUT_TYPE_"))
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", in.Key, typ, yes(in.Required), yes(in.Secret),
					strings.ReplaceAll(strings.ReplaceAll(in.Description, "|", "\\|"), "\n", " "))
			}
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// delivery says how a template delivers: per event or in batches.
func delivery(t *hogwirev1.Template) string {
	if t.GetBatch() == nil {
		return "per event"
	}
	return "batches"
}

// batchText describes a template's batches: its defaults and caps.
func batchText(bt *hogwirev1.TemplateBatch) string {
	d := bt.GetDefaults()
	s := fmt.Sprintf("by default up to %d events", d.GetMaxEvents())
	if d.GetMaxBytes() > 0 {
		s += " or " + bytesize.Format(d.GetMaxBytes())
	}
	wait := "1s"
	if d.GetMaxWait() != nil {
		wait = d.GetMaxWait().AsDuration().String()
	}
	s += fmt.Sprintf(" per request, after waiting at most %s for a batch to fill", wait)
	if bt.GetMaxEvents() > 0 || bt.GetMaxBytes() > 0 {
		var caps []string
		if bt.GetMaxEvents() > 0 {
			caps = append(caps, fmt.Sprintf("%d events", bt.GetMaxEvents()))
		}
		if bt.GetMaxBytes() > 0 {
			caps = append(caps, bytesize.Format(bt.GetMaxBytes()))
		}
		s += "; a destination may set at most " + strings.Join(caps, " and ")
	}
	return s
}

func yes(v bool) string {
	if v {
		return "yes"
	}
	return ""
}
