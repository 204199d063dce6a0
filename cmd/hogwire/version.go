package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time, e.g. -ldflags "-X main.version=v1.2.0 -X main.commit=… -X main.date=…";
// when unset they come from the build info Go records (the module version
// of `go install …@v1.2.0`, and the VCS revision and time of a build from
// a git checkout).
var version, commit, date string

// versionInfo is what `hogwire version` prints.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	Modified  bool   `json:"modified,omitempty"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, BuildDate: date,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				if v.BuildDate == "" {
					v.BuildDate = s.Value
				}
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	if v.BuildDate == "" {
		v.BuildDate = "unknown"
	}
	return v
}

func (a *app) versionCommand() *cobra.Command {
	var out outputFormat
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			v := buildVersion()
			return printValue(a.stdout, out, v, func(w io.Writer) error {
				commit := v.Commit
				if v.Modified {
					commit += " (modified)"
				}
				_, err := fmt.Fprintf(w, "hogwire %s\n  commit:     %s\n  built:      %s\n  go version: %s %s\n",
					v.Version, commit, v.BuildDate, v.GoVersion, v.Platform)
				return err
			})
		},
	}
	addOutputFlag(cmd.Flags(), &out)
	return cmd
}
