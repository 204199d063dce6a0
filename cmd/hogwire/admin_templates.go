package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/enumword"
	"github.com/hogwire/hogwire/resourcename"
)

func (a *app) templatesCommand() *cobra.Command {
	return groupCommand("templates", "List destination templates and show one", "", a.templatesList(), a.templatesShow())
}

func (a *app) nodesCommand() *cobra.Command {
	return groupCommand("nodes", "List data-plane nodes", "", a.nodesList())
}

func (a *app) templatesList() *cobra.Command {
	c := a.newAdminCmd("list", "List the destination templates by category", "Lists the destination templates, grouped by category.", noArgs)
	var category string
	c.fs.StringVar(&category, "category", "", "only this category")
	var kindWord string
	c.fs.StringVar(&kindWord, "kind", "", "only templates of destinations or of transformations (destination, transformation)")
	return c.runE(func(ctx context.Context) error {
		kind, err := parseFunctionKind(kindWord)
		if err != nil {
			return err
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		client := hogwirev1.NewTemplateServiceClient(cc)
		all := &hogwirev1.ListTemplatesResponse{}
		for {
			resp, err := client.ListTemplates(ctx, &hogwirev1.ListTemplatesRequest{PageSize: 1000, PageToken: all.NextPageToken, Category: category, Kind: kind})
			if err != nil {
				return c.callErr("list templates", err)
			}
			all.Templates = append(all.Templates, resp.GetTemplates()...)
			if all.NextPageToken = resp.GetNextPageToken(); all.NextPageToken == "" {
				break
			}
		}
		return c.printMessage(all, func(w io.Writer) error {
			writeTemplateList(w, all.Templates)
			return nil
		})
	}).cmd
}

// writeTemplateList prints one line per template under its category, in
// the server's order (category, then name), with the columns aligned
// across categories.
func writeTemplateList(w io.Writer, ts []*hogwirev1.Template) {
	if len(ts) == 0 {
		fmt.Fprintln(w, "No templates.")
		return
	}
	idWidth, nameWidth := 0, 0
	for _, t := range ts {
		idWidth = max(idWidth, len(resourcename.ID(t.GetName())))
		nameWidth = max(nameWidth, len(t.GetDisplayName()))
	}
	var order []string
	byCategory := map[string][]*hogwirev1.Template{}
	for _, t := range ts {
		cat := t.GetCategory()
		if cat == "" {
			cat = "Other"
		}
		if _, ok := byCategory[cat]; !ok {
			order = append(order, cat)
		}
		byCategory[cat] = append(byCategory[cat], t)
	}
	for i, cat := range order {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, cat)
		for _, t := range byCategory[cat] {
			desc := oneLine(t.GetDescription())
			if s := t.GetStatus(); s != hogwirev1.TemplateStatus_TEMPLATE_STATUS_STABLE && s != hogwirev1.TemplateStatus_TEMPLATE_STATUS_UNSPECIFIED {
				desc += " (" + word(s) + ")"
			}
			fmt.Fprintf(w, "  %-*s  %-*s  %s\n", idWidth, resourcename.ID(t.GetName()), nameWidth, t.GetDisplayName(), desc)
		}
	}
}

func (a *app) templatesShow() *cobra.Command {
	c := a.newAdminCmd("show TEMPLATE", "Show a template: its inputs and code",
		"Shows a template's metadata, inputs and Hog code. TEMPLATE is templates/ID or ID.", exactArgs(1))
	c.completeArgs(completeTemplates)
	return c.runE(func(ctx context.Context) error {
		return callOne(ctx, c, "get template",
			func(ctx context.Context, cc *grpc.ClientConn, arg string) (*hogwirev1.GetTemplateResponse, error) {
				return hogwirev1.NewTemplateServiceClient(cc).GetTemplate(ctx, &hogwirev1.GetTemplateRequest{Name: resourcename.TemplateArg(arg)})
			},
			func(w io.Writer, resp *hogwirev1.GetTemplateResponse) error {
				return writeTemplate(w, resp.GetTemplate())
			})
	}).cmd
}

func writeTemplate(w io.Writer, t *hogwirev1.Template) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", t.GetName())
	fmt.Fprintf(tw, "Display name:\t%s\n", t.GetDisplayName())
	fmt.Fprintf(tw, "Category:\t%s\n", orDash(t.GetCategory()))
	fmt.Fprintf(tw, "Status:\t%s\n", word(t.GetStatus()))
	fmt.Fprintf(tw, "Description:\t%s\n", oneLine(t.GetDescription()))
	if t.GetDocsUrl() != "" {
		fmt.Fprintf(tw, "Docs:\t%s\n", t.GetDocsUrl())
	}
	if b := t.GetBatch(); b != nil {
		fmt.Fprintf(tw, "Batch:\t%s%s\n", batchText(b.GetDefaults()), batchCaps(b))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nInputs:")
	if len(t.GetInputsSchema()) == 0 {
		fmt.Fprintln(w, "  (none)")
	} else {
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  KEY\tTYPE\tREQUIRED\tSECRET\tDEFAULT\tDESCRIPTION")
		for _, s := range t.GetInputsSchema() {
			def := "-"
			if s.GetDefault() != nil {
				def = oneLine(valueText(s.GetDefault()))
			}
			desc := s.GetDescription()
			if desc == "" {
				desc = s.GetLabel()
			}
			if len(s.GetChoices()) > 0 {
				var vals []string
				for _, ch := range s.GetChoices() {
					vals = append(vals, ch.GetValue())
				}
				desc = strings.TrimSpace(desc + " (one of: " + strings.Join(vals, ", ") + ")")
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", s.GetKey(), enumword.Of(s.GetType()),
				yesNo(s.GetRequired()), yesNo(s.GetSecret()), def, orDash(oneLine(desc)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nDefault filters:")
	writeFilters(w, t.GetFilters())
	fmt.Fprintln(w, "\nHog:")
	fmt.Fprint(w, indent(t.GetHog(), "  "))
	return nil
}

func (a *app) nodesList() *cobra.Command {
	c := a.newAdminCmd("list", "List the data-plane nodes connected to the control plane",
		"Lists the data-plane nodes registered with the control plane, with the configuration revision each applied\n"+
			"and the last configuration each rejected.", noArgs)
	return c.runE(func(ctx context.Context) error {
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		resp, err := hogwirev1.NewNodeServiceClient(cc).ListNodes(ctx, &hogwirev1.ListNodesRequest{})
		if err != nil {
			return c.callErr("list nodes", err)
		}
		return c.printMessage(resp, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tADDRESS\tVERSION\tREVISION\tCONNECTED\tCONTROL PLANE\tREJECTED")
			for _, n := range resp.GetNodes() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", n.GetNodeId(), orDash(n.GetAddress()), orDash(n.GetVersion()),
					n.GetAckedRevision(), fmtTime(n.GetConnectTime()), orDash(n.GetControlplane()), rejectedText(n))
			}
			return tw.Flush()
		})
	}).cmd
}

// rejectedText says what a node rejected of its configuration: the
// resources named by the NACK's ResourceInfo details.
func rejectedText(n *hogwirev1.Node) string {
	st := n.GetRejected()
	if st == nil {
		return "-"
	}
	var names []string
	for _, a := range st.GetDetails() {
		ri := &errdetails.ResourceInfo{}
		if a.UnmarshalTo(ri) == nil {
			names = append(names, resourcename.ID(ri.GetResourceName()))
		}
	}
	if len(names) == 0 {
		return oneLine(st.GetMessage())
	}
	return strings.Join(names, ",")
}
