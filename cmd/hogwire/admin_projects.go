package main

import (
	"context"
	"flag"
	"fmt"
	"google.golang.org/grpc"
	"io"
	"text/tabwriter"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
)

func runProjects(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "projects", projectCommands(), args, newAdminEnv(stdout, stderr))
}

func projectCommands() []subcommand {
	return []subcommand{
		{"create", "create a project (and its capture token)", projectsCreate},
		{"list", "list projects", projectsList},
		{"get", "show a project", projectsGet},
		{"update", "change a project's name, time zone or site URL", projectsUpdate},
		{"delete", "delete a project", projectsDelete},
		{"rotate-token", "replace a project's capture token with a new one", projectsRotateToken},
	}
}

// projectFields are the flags that set a project's mutable fields.
type projectFields struct{ name, timeZone, siteURL string }

func (p *projectFields) register(fs *flag.FlagSet) {
	fs.StringVar(&p.name, "name", "", "display name")
	fs.StringVar(&p.timeZone, "time-zone", "", "IANA time zone, e.g. Europe/Paris")
	fs.StringVar(&p.siteURL, "site-url", "", "URL of the product the project tracks")
}

func projectsCreate(ctx context.Context, env *adminEnv, args []string) error {
	c := newAdminCmd(env, "projects create", "[ID]", "Creates a project. ID (or --id) is the last part of its name; a random one is generated when omitted.")
	var f projectFields
	var id string
	f.register(c.fs)
	c.fs.StringVar(&id, "id", "", "project id: lowercase letters, digits and hyphens, starting with a letter")
	if err := c.parse(args, 0, 1); err != nil {
		return err
	}
	if len(c.args) == 1 {
		if id != "" && id != c.args[0] {
			return usageError{"projects create: give the id either as an argument or with --id"}
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
}

func projectsList(ctx context.Context, env *adminEnv, args []string) error {
	c := newAdminCmd(env, "projects list", "", "Lists every project.")
	if err := c.parse(args, 0, 0); err != nil {
		return err
	}
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
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", lastSegment(p.GetName()), p.GetDisplayName(),
				p.GetCaptureToken(), orDash(p.GetTimeZone()), fmtTime(p.GetCreateTime()))
		}
		return tw.Flush()
	})
}

func projectsGet(ctx context.Context, env *adminEnv, args []string) error {
	c := newAdminCmd(env, "projects get", "PROJECT", "Shows a project. PROJECT is projects/ID or ID.")
	return callOne(ctx, c, args, "get project",
		func(ctx context.Context, cc *grpc.ClientConn, arg string) (*hogwirev1.GetProjectResponse, error) {
			return hogwirev1.NewProjectServiceClient(cc).GetProject(ctx, &hogwirev1.GetProjectRequest{Name: projectName(arg)})
		},
		func(w io.Writer, resp *hogwirev1.GetProjectResponse) error { return writeProject(w, resp.GetProject()) })
}

func projectsUpdate(ctx context.Context, env *adminEnv, args []string) error {
	c := newAdminCmd(env, "projects update", "PROJECT", "Changes the fields given by flags; the others stay as they are.")
	var f projectFields
	f.register(c.fs)
	if err := c.parse(args, 1, 1); err != nil {
		return err
	}
	in := &hogwirev1.Project{DisplayName: f.name, TimeZone: f.timeZone, SiteUrl: f.siteURL}
	var paths []string
	for flagName, path := range map[string]string{"name": "display_name", "time-zone": "time_zone", "site-url": "site_url"} {
		if c.given[flagName] {
			paths = append(paths, path)
		}
	}
	if len(paths) == 0 {
		return usageError{"projects update: nothing to update: give --name, --time-zone or --site-url"}
	}
	ctx, cc, done, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	client := hogwirev1.NewProjectServiceClient(cc)
	cur, err := client.GetProject(ctx, &hogwirev1.GetProjectRequest{Name: projectName(c.args[0])})
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
}

func projectsDelete(ctx context.Context, env *adminEnv, args []string) error {
	c := newAdminCmd(env, "projects delete", "PROJECT", "Deletes a project. It must have no destinations unless --force is given.")
	var force bool
	c.fs.BoolVar(&force, "force", false, "also delete the project's destinations")
	return callOne(ctx, c, args, "delete project",
		func(ctx context.Context, cc *grpc.ClientConn, arg string) (*hogwirev1.DeleteProjectResponse, error) {
			return hogwirev1.NewProjectServiceClient(cc).DeleteProject(ctx, &hogwirev1.DeleteProjectRequest{Name: projectName(arg), Force: force})
		},
		func(w io.Writer, _ *hogwirev1.DeleteProjectResponse) error {
			_, err := fmt.Fprintf(w, "Deleted %s.\n", projectName(c.args[0]))
			return err
		})
}

func projectsRotateToken(ctx context.Context, env *adminEnv, args []string) error {
	c := newAdminCmd(env, "projects rotate-token", "PROJECT", "Replaces the capture token; the old one stops working as soon as nodes see the change.")
	return callOne(ctx, c, args, "rotate capture token",
		func(ctx context.Context, cc *grpc.ClientConn, arg string) (*hogwirev1.RotateCaptureTokenResponse, error) {
			return hogwirev1.NewProjectServiceClient(cc).RotateCaptureToken(ctx, &hogwirev1.RotateCaptureTokenRequest{Name: projectName(arg)})
		},
		func(w io.Writer, resp *hogwirev1.RotateCaptureTokenResponse) error {
			_, err := fmt.Fprintf(w, "New capture token of %s: %s\n", resp.GetProject().GetName(), resp.GetProject().GetCaptureToken())
			return err
		})
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
