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

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
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
	doc := render(cat.List())
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

func render(list []*hogwirev1.Template) []byte {
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
	for _, c := range cats {
		fmt.Fprintf(&b, "## %s\n\n", c)
		for _, t := range byCat[c] {
			id := strings.TrimPrefix(t.Name, "templates/")
			status := strings.ToLower(strings.TrimPrefix(t.Status.String(), "TEMPLATE_STATUS_"))
			fmt.Fprintf(&b, "### %s (`%s`, %s)\n\n%s\n\n", t.DisplayName, id, status, t.Description)
			if t.DocsUrl != "" {
				fmt.Fprintf(&b, "Vendor API: <%s>\n\n", t.DocsUrl)
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

func yes(v bool) string {
	if v {
		return "yes"
	}
	return ""
}
