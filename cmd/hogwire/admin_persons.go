package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/resourcename"
)

func (a *app) personsCommand() *cobra.Command {
	return groupCommand("persons", "Show and delete person profiles, trace what destinations did: get, list, delete, trace", "",
		a.personsGet(), a.personsList(), a.personsDelete(), a.personsTrace())
}

// personRef is the flags and argument that name one person.
type personRef struct{ project, personID string }

func (r *personRef) register(c *adminCmd) {
	c.fs.StringVar(&r.project, "project", "", "the person's project: projects/ID or ID (default: $HOGWIRE_PROJECT or the context's)")
	c.fs.StringVar(&r.personID, "person-id", "", "name the person by its id (a UUID) instead of a distinct id")
}

// resolve returns the project and the person id or distinct id.
func (r *personRef) resolve(cmd string, args []string) (parent, personID, distinctID string, err error) {
	if r.project == "" {
		return "", "", "", usagef("persons %s: --project is required", cmd)
	}
	switch {
	case len(args) == 1 && r.personID != "":
		return "", "", "", usagef("persons %s: give a distinct id or --person-id, not both", cmd)
	case len(args) == 0 && r.personID == "":
		return "", "", "", usagef("persons %s: give a distinct id or --person-id", cmd)
	case len(args) == 1:
		distinctID = args[0]
	}
	return resourcename.ProjectArg(r.project), r.personID, distinctID, nil
}

func (a *app) personsGet() *cobra.Command {
	c := a.newAdminCmd("get [DISTINCT_ID]", "Show a person",
		"Shows the person a distinct id belongs to (or the person --person-id names): its id, distinct ids\n"+
			"and properties, as destinations see them in person.", rangeArgs(0, 1))
	c.cmd.Example = "  hogwire persons get --project shop user@example.com"
	var ref personRef
	ref.register(c)
	return c.runE(func(ctx context.Context) error {
		parent, pid, did, err := ref.resolve("get", c.args)
		if err != nil {
			return err
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		resp, err := hogwirev1.NewPersonServiceClient(cc).GetPerson(ctx, &hogwirev1.GetPersonRequest{Parent: parent, PersonId: pid, DistinctId: did})
		if err != nil {
			return c.callErr("get person", err)
		}
		return c.printMessage(resp, func(w io.Writer) error { return writePerson(w, resp.GetPerson()) })
	}).cmd
}

func (a *app) personsList() *cobra.Command {
	c := a.newAdminCmd("list", "List persons", "Lists a project's persons, least recently updated first.", noArgs)
	var project string
	var limit int
	c.fs.StringVar(&project, "project", "", "the project: projects/ID or ID (default: $HOGWIRE_PROJECT or the context's)")
	c.fs.IntVar(&limit, "limit", 100, "list at most this many (0: all)")
	return c.runE(func(ctx context.Context) error {
		if project == "" {
			return usagef("persons list: --project is required")
		}
		if limit < 0 {
			return usagef("persons list: --limit must not be negative")
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		client := hogwirev1.NewPersonServiceClient(cc)
		all := &hogwirev1.ListPersonsResponse{}
		for {
			size := 1000
			if limit > 0 {
				size = min(size, limit-len(all.Persons))
			}
			resp, err := client.ListPersons(ctx, &hogwirev1.ListPersonsRequest{Parent: resourcename.ProjectArg(project),
				PageSize: int32(size), PageToken: all.NextPageToken})
			if err != nil {
				return c.callErr("list persons", err)
			}
			all.Persons = append(all.Persons, resp.GetPersons()...)
			all.NextPageToken = resp.GetNextPageToken()
			if all.NextPageToken == "" || (limit > 0 && len(all.Persons) >= limit) {
				break
			}
		}
		return c.printMessage(all, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tDISTINCT IDS\tIDENTIFIED\tCREATED")
			for _, p := range all.Persons {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", p.GetId(), orDash(personName(p)), strings.Join(p.GetDistinctIds(), ","),
					p.GetIsIdentified(), fmtTime(p.GetCreateTime()))
			}
			if all.NextPageToken != "" {
				fmt.Fprintf(tw, "(more: raise --limit)\n")
			}
			return tw.Flush()
		})
	}).cmd
}

func (a *app) personsDelete() *cobra.Command {
	c := a.newAdminCmd("delete [DISTINCT_ID]", "Delete a person (GDPR erasure)",
		"Deletes the person a distinct id belongs to (or the person --person-id names) with all its\n"+
			"distinct ids and properties. Later events of those distinct ids start a new, empty person.", rangeArgs(0, 1))
	c.cmd.Example = "  hogwire persons delete --project shop user@example.com"
	var ref personRef
	ref.register(c)
	return c.runE(func(ctx context.Context) error {
		parent, pid, did, err := ref.resolve("delete", c.args)
		if err != nil {
			return err
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		resp, err := hogwirev1.NewPersonServiceClient(cc).DeletePerson(ctx, &hogwirev1.DeletePersonRequest{Parent: parent, PersonId: pid, DistinctId: did})
		if err != nil {
			return c.callErr("delete person", err)
		}
		return c.printMessage(resp, func(w io.Writer) error {
			p := resp.GetPerson()
			_, err := fmt.Fprintf(w, "Deleted person %s and its %d distinct id(s): %s\n", p.GetId(), len(p.GetDistinctIds()), strings.Join(p.GetDistinctIds(), ", "))
			return err
		})
	}).cmd
}

// personName is PostHog's display name of a person: its email, name or
// username property.
func personName(p *hogwirev1.PersonProfile) string {
	for _, k := range []string{"email", "name", "username"} {
		if v := p.GetProperties().GetFields()[k].GetStringValue(); v != "" {
			return v
		}
	}
	return ""
}

func writePerson(w io.Writer, p *hogwirev1.PersonProfile) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", p.GetName())
	fmt.Fprintf(tw, "Id:\t%s\n", p.GetId())
	fmt.Fprintf(tw, "Distinct ids:\t%s\n", strings.Join(p.GetDistinctIds(), ", "))
	fmt.Fprintf(tw, "Identified:\t%t\n", p.GetIsIdentified())
	fmt.Fprintf(tw, "Created:\t%s\n", fmtTime(p.GetCreateTime()))
	fmt.Fprintf(tw, "Version:\t%d\n", p.GetVersion())
	if err := tw.Flush(); err != nil {
		return err
	}
	raw, err := protojson.Marshal(p.GetProperties())
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "Properties:")
	return writeIndentedJSON(w, raw)
}
