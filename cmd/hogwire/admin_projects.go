package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/resourcename"
)

func (a *app) projectsCommand() *cobra.Command {
	return groupCommand("projects", "Manage projects: create, list, get, update, delete, rotate-token", "",
		a.projectsCreate(), a.projectsList(), a.projectsGet(), a.projectsUpdate(), a.projectsDelete(), a.projectsRotateToken())
}

// projectFields are the flags that set a project's mutable fields.
type projectFields struct{ name, timeZone, siteURL string }

func (p *projectFields) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.name, "name", "", "display name")
	fs.StringVar(&p.timeZone, "time-zone", "", "IANA time zone, e.g. Europe/Paris")
	fs.StringVar(&p.siteURL, "site-url", "", "URL of the product the project tracks")
}

func (a *app) projectsCreate() *cobra.Command {
	c := a.newAdminCmd("create [ID]", "Create a project and its capture token",
		"Creates a project. ID (or --id) is the last part of its name; a random one is generated when omitted.\n"+
			"The output shows the capture token (phc_…) that SDKs and 'hogwire events send' use.", rangeArgs(0, 1))
	var f projectFields
	var id string
	f.register(c.fs)
	c.fs.StringVar(&id, "id", "", "project id: lowercase letters, digits and hyphens, starting with a letter")
	c.cmd.Example = `  hogwire projects create shop --name "My shop"`
	return c.runE(func(ctx context.Context) error {
		if len(c.args) == 1 {
			if id != "" && id != c.args[0] {
				return usagef("projects create: give the id either as an argument or with --id")
			}
			id = c.args[0]
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		resp, err := hogwirev1.NewProjectServiceClient(cc).CreateProject(ctx, &hogwirev1.CreateProjectRequest{
			ProjectId: id,
			Project:   &hogwirev1.Project{DisplayName: f.name, TimeZone: f.timeZone, SiteUrl: f.siteURL},
		})
		if err != nil {
			return c.callErr("create project", err)
		}
		return c.printMessage(resp, func(w io.Writer) error {
			fmt.Fprintf(w, "Created %s.\n\n", resp.GetProject().GetName())
			return writeProject(w, resp.GetProject())
		})
	}).cmd
}

func (a *app) projectsList() *cobra.Command {
	c := a.newAdminCmd("list", "List projects", "Lists every project.", noArgs)
	return c.runE(func(ctx context.Context) error {
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		client := hogwirev1.NewProjectServiceClient(cc)
		all := &hogwirev1.ListProjectsResponse{}
		for {
			resp, err := client.ListProjects(ctx, &hogwirev1.ListProjectsRequest{PageSize: 1000, PageToken: all.NextPageToken})
			if err != nil {
				return c.callErr("list projects", err)
			}
			all.Projects = append(all.Projects, resp.GetProjects()...)
			if all.NextPageToken = resp.GetNextPageToken(); all.NextPageToken == "" {
				break
			}
		}
		return c.printMessage(all, func(w io.Writer) error {
			tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCAPTURE TOKEN\tTIME ZONE\tCREATED")
			for _, p := range all.Projects {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", resourcename.ID(p.GetName()), p.GetDisplayName(),
					p.GetCaptureToken(), orDash(p.GetTimeZone()), fmtTime(p.GetCreateTime()))
			}
			return tw.Flush()
		})
	}).cmd
}

func (a *app) projectsGet() *cobra.Command {
	c := a.newAdminCmd("get PROJECT", "Show a project", "Shows a project. PROJECT is projects/ID or ID.", exactArgs(1))
	c.completeArgs(completeProjects)
	return c.runE(func(ctx context.Context) error {
		return callOne(ctx, c, "get project",
			func(ctx context.Context, cc *grpc.ClientConn, arg string) (*hogwirev1.GetProjectResponse, error) {
				return hogwirev1.NewProjectServiceClient(cc).GetProject(ctx, &hogwirev1.GetProjectRequest{Name: resourcename.ProjectArg(arg)})
			},
			func(w io.Writer, resp *hogwirev1.GetProjectResponse) error { return writeProject(w, resp.GetProject()) })
	}).cmd
}

func (a *app) projectsUpdate() *cobra.Command {
	c := a.newAdminCmd("update PROJECT", "Change a project's name, time zone or site URL",
		"Changes the fields given by flags; the others stay as they are.", exactArgs(1))
	var f projectFields
	f.register(c.fs)
	c.completeArgs(completeProjects)
	return c.runE(func(ctx context.Context) error {
		in := &hogwirev1.Project{DisplayName: f.name, TimeZone: f.timeZone, SiteUrl: f.siteURL}
		var paths []string
		for flagName, path := range map[string]string{"name": "display_name", "time-zone": "time_zone", "site-url": "site_url"} {
			if c.given(flagName) {
				paths = append(paths, path)
			}
		}
		if len(paths) == 0 {
			return usagef("projects update: nothing to update: give --name, --time-zone or --site-url")
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		client := hogwirev1.NewProjectServiceClient(cc)
		cur, err := client.GetProject(ctx, &hogwirev1.GetProjectRequest{Name: resourcename.ProjectArg(c.args[0])})
		if err != nil {
			return c.callErr("get project", err)
		}
		in.Name, in.Etag = cur.GetProject().GetName(), cur.GetProject().GetEtag()
		resp, err := client.UpdateProject(ctx, &hogwirev1.UpdateProjectRequest{Project: in, UpdateMask: &fieldmaskpb.FieldMask{Paths: sortedUnique(paths)}})
		if err != nil {
			return c.callErr("update project", err)
		}
		return c.printMessage(resp, func(w io.Writer) error {
			fmt.Fprintf(w, "Updated %s.\n\n", resp.GetProject().GetName())
			return writeProject(w, resp.GetProject())
		})
	}).cmd
}

func (a *app) projectsDelete() *cobra.Command {
	c := a.newAdminCmd("delete PROJECT", "Delete a project", "Deletes a project. It must have no destinations unless --force is given.", exactArgs(1))
	var force bool
	c.fs.BoolVar(&force, "force", false, "also delete the project's destinations")
	c.completeArgs(completeProjects)
	return c.runE(func(ctx context.Context) error {
		return callOne(ctx, c, "delete project",
			func(ctx context.Context, cc *grpc.ClientConn, arg string) (*hogwirev1.DeleteProjectResponse, error) {
				return hogwirev1.NewProjectServiceClient(cc).DeleteProject(ctx, &hogwirev1.DeleteProjectRequest{Name: resourcename.ProjectArg(arg), Force: force})
			},
			func(w io.Writer, _ *hogwirev1.DeleteProjectResponse) error {
				_, err := fmt.Fprintf(w, "Deleted %s.\n", resourcename.ProjectArg(c.args[0]))
				return err
			})
	}).cmd
}

func (a *app) projectsRotateToken() *cobra.Command {
	c := a.newAdminCmd("rotate-token PROJECT", "Replace a project's capture token with a new one",
		"Replaces the capture token; the old one stops working as soon as nodes see the change.", exactArgs(1))
	c.completeArgs(completeProjects)
	return c.runE(func(ctx context.Context) error {
		return callOne(ctx, c, "rotate capture token",
			func(ctx context.Context, cc *grpc.ClientConn, arg string) (*hogwirev1.RotateCaptureTokenResponse, error) {
				return hogwirev1.NewProjectServiceClient(cc).RotateCaptureToken(ctx, &hogwirev1.RotateCaptureTokenRequest{Name: resourcename.ProjectArg(arg)})
			},
			func(w io.Writer, resp *hogwirev1.RotateCaptureTokenResponse) error {
				_, err := fmt.Fprintf(w, "New capture token of %s: %s\n", resp.GetProject().GetName(), resp.GetProject().GetCaptureToken())
				return err
			})
	}).cmd
}

func writeProject(w io.Writer, p *hogwirev1.Project) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", p.GetName())
	fmt.Fprintf(tw, "Display name:\t%s\n", p.GetDisplayName())
	fmt.Fprintf(tw, "Capture token:\t%s\n", p.GetCaptureToken())
	fmt.Fprintf(tw, "Time zone:\t%s\n", orDash(p.GetTimeZone()))
	fmt.Fprintf(tw, "Site URL:\t%s\n", orDash(p.GetSiteUrl()))
	fmt.Fprintf(tw, "Created:\t%s\n", fmtTime(p.GetCreateTime()))
	fmt.Fprintf(tw, "Updated:\t%s\n", fmtTime(p.GetUpdateTime()))
	fmt.Fprintf(tw, "Etag:\t%s\n", p.GetEtag())
	return tw.Flush()
}
