package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/hogwire/hogwire/auth"
)

// cliConfig is the optional config file, ~/.config/hogwire/config.yaml:
// named contexts, each saying how to reach one hogwire, as kubectl's
// kubeconfig does for clusters.
type cliConfig struct {
	CurrentContext string        `json:"current-context,omitempty"`
	Contexts       []*cliContext `json:"contexts,omitempty"`
}

// cliContext holds defaults of the connection flags; a flag or
// HOGWIRE_<FLAG> overrides them.
type cliContext struct {
	Name      string `json:"name"`
	Server    string `json:"server,omitempty"`
	TLS       bool   `json:"tls,omitempty"`
	CAFile    string `json:"ca-file,omitempty"`
	Token     string `json:"token,omitempty"`
	TokenFile string `json:"token-file,omitempty"`
	DataDir   string `json:"data-dir,omitempty"`
	Project   string `json:"project,omitempty"`
	Timeout   string `json:"timeout,omitempty"`
}

// configPath is --config, else $HOGWIRE_CONFIG, else
// $XDG_CONFIG_HOME/hogwire/config.yaml, else ~/.config/hogwire/config.yaml.
func configPath(getenv func(string) string, flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := getenv("HOGWIRE_CONFIG"); p != "" {
		return p
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "hogwire", "config.yaml")
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".config", "hogwire", "config.yaml")
}

// loadCLIConfig reads the config file; a missing file is an empty config.
func loadCLIConfig(getenv func(string) string, flagValue string) (*cliConfig, string, error) {
	path := configPath(getenv, flagValue)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &cliConfig{}, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("config file: %w", err)
	}
	cfg := &cliConfig{}
	if err := yaml.UnmarshalStrict(b, cfg); err != nil {
		return nil, path, usagef("config file %s: %v", path, err)
	}
	for i, c := range cfg.Contexts {
		if c == nil || c.Name == "" {
			return nil, path, usagef("config file %s: contexts[%d]: name is required", path, i)
		}
	}
	return cfg, path, nil
}

func (cfg *cliConfig) save(path string) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	// It may hold tokens.
	return os.WriteFile(path, b, 0o600)
}

func (cfg *cliConfig) find(name string) *cliContext {
	for _, c := range cfg.Contexts {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// selected returns the context named by --context (or HOGWIRE_CONTEXT),
// else the current one; nil when there is none.
func (cfg *cliConfig) selected(name, path string) (*cliContext, error) {
	if name == "" {
		name = cfg.CurrentContext
	}
	if name == "" {
		return nil, nil
	}
	if c := cfg.find(name); c != nil {
		return c, nil
	}
	return nil, usagef("context %q is not in %s (see 'hogwire config get-contexts')", name, path)
}

// apply sets the flags the context has a value for and that were given
// neither on the command line nor by the environment.
func (c *cliContext) apply(fs *pflag.FlagSet) error {
	set := func(flag, value string) error {
		f := fs.Lookup(flag)
		if value == "" || f == nil || f.Changed {
			return nil
		}
		if err := fs.Set(flag, value); err != nil {
			return usagef("context %q: %s: %v", c.Name, flag, err)
		}
		return nil
	}
	for _, kv := range [][2]string{
		{"server", c.Server}, {"ca-file", c.CAFile}, {"data-dir", c.DataDir},
		{"project", c.Project}, {"timeout", c.Timeout}, {"tls", strconv.FormatBool(c.TLS)},
	} {
		if kv[0] == "tls" && !c.TLS {
			continue
		}
		if err := set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// adminToken is the context's token, or the content of its token file.
func (c *cliContext) adminToken() (string, error) {
	if c == nil {
		return "", nil
	}
	if t := strings.TrimSpace(c.Token); t != "" {
		return t, nil
	}
	if c.TokenFile == "" {
		return "", nil
	}
	t, err := auth.ReadSecretFile(expandHome(c.TokenFile))
	if err != nil {
		return "", usagef("context %q: token-file: %v", c.Name, err)
	}
	return t, nil
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

const configLong = `Manages the optional config file, ~/.config/hogwire/config.yaml (or
$HOGWIRE_CONFIG, or --config). It holds named contexts, each a set of
defaults for the connection flags, and the current context:

  current-context: prod
  contexts:
    - name: dev
      server: 127.0.0.1:7070
      data-dir: /home/me/src/hogwire/.hogwire   # the admin token of 'hogwire dev'
    - name: prod
      server: hogwire.example.com:443
      tls: true
      token-file: ~/.config/hogwire/prod.token
      project: shop

A flag wins over HOGWIRE_<FLAG>, which wins over the context, which wins
over the built-in default. --context (or HOGWIRE_CONTEXT) picks another
context for one command.`

func (a *app) configCommand() *cobra.Command {
	var path string
	load := func() (*cliConfig, string, error) { return loadCLIConfig(a.getenv, path) }

	var out outputFormat
	var raw bool
	view := &cobra.Command{
		Use: "view", Short: "Print the config file (tokens hidden unless --raw)", Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, _, err := load()
			if err != nil {
				return err
			}
			if !raw {
				for _, c := range cfg.Contexts {
					if c.Token != "" {
						c.Token = "REDACTED"
					}
				}
			}
			return printValue(a.stdout, out, cfg, func(w io.Writer) error {
				b, err := yaml.Marshal(cfg)
				if err == nil {
					_, err = w.Write(b)
				}
				return err
			})
		},
	}
	addOutputFlag(view.Flags(), &out)
	view.Flags().BoolVar(&raw, "raw", false, "show tokens")

	var listOut outputFormat
	list := &cobra.Command{
		Use: "get-contexts", Short: "List the contexts; * marks the current one", Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, _, err := load()
			if err != nil {
				return err
			}
			type row struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
				Server  string `json:"server"`
				Project string `json:"project,omitempty"`
			}
			var rows []row
			for _, c := range cfg.Contexts {
				rows = append(rows, row{c.Name, c.Name == cfg.CurrentContext, orDefault(c.Server, defaultServer), c.Project})
			}
			return printValue(a.stdout, listOut, rows, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "CURRENT\tNAME\tSERVER\tPROJECT")
				for _, r := range rows {
					cur := ""
					if r.Current {
						cur = "*"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cur, r.Name, r.Server, orDash(r.Project))
				}
				return tw.Flush()
			})
		},
	}
	addOutputFlag(list.Flags(), &listOut)

	use := &cobra.Command{
		Use: "use-context NAME", Short: "Make a context the current one", Args: exactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			cfg, _, err := load()
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			var names []string
			for _, c := range cfg.Contexts {
				names = append(names, c.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, p, err := load()
			if err != nil {
				return err
			}
			if cfg.find(args[0]) == nil {
				return usagef("context %q is not in %s", args[0], p)
			}
			cfg.CurrentContext = args[0]
			if err := cfg.save(p); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Switched to context %q.\n", args[0])
			return nil
		},
	}

	var edit cliContext
	var current bool
	set := &cobra.Command{
		Use:   "set-context NAME",
		Short: "Create a context or change the values given by flags",
		Long: `Creates the context NAME, or changes the values given by flags in it;
an empty value (--project '') removes one. --current also makes it the current context.`,
		Example: `  hogwire config set-context prod --server hogwire.example.com:443 --tls --token-file ~/.config/hogwire/prod.token --current`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, p, err := load()
			if err != nil {
				return err
			}
			c := cfg.find(args[0])
			if c == nil {
				c = &cliContext{Name: args[0]}
				cfg.Contexts = append(cfg.Contexts, c)
			}
			fs := cmd.Flags()
			for flag, dst := range map[string]*string{"server": &c.Server, "ca-file": &c.CAFile, "token": &c.Token,
				"token-file": &c.TokenFile, "data-dir": &c.DataDir, "project": &c.Project, "timeout": &c.Timeout} {
				if fs.Changed(flag) {
					v, _ := fs.GetString(flag)
					*dst = v
				}
			}
			if fs.Changed("tls") {
				c.TLS = edit.TLS
			}
			if c.DataDir != "" {
				if abs, err := filepath.Abs(expandHome(c.DataDir)); err == nil {
					c.DataDir = abs
				}
			}
			if current || cfg.CurrentContext == "" {
				cfg.CurrentContext = c.Name
			}
			if err := cfg.save(p); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Context %q saved in %s.\n", c.Name, p)
			return nil
		},
	}
	sf := set.Flags()
	sf.StringVar(&edit.Server, "server", "", "gRPC address of the control plane")
	sf.BoolVar(&edit.TLS, "tls", false, "connect with TLS")
	sf.StringVar(&edit.CAFile, "ca-file", "", "CA (PEM) to verify the server with")
	sf.StringVar(&edit.Token, "token", "", "admin token (prefer --token-file)")
	sf.StringVar(&edit.TokenFile, "token-file", "", "file holding the admin token")
	sf.StringVar(&edit.DataDir, "data-dir", "", "data directory of 'hogwire dev' (its admin token)")
	sf.StringVar(&edit.Project, "project", "", "default --project")
	sf.StringVar(&edit.Timeout, "timeout", "", "default --timeout, e.g. 30s")
	sf.BoolVar(&current, "current", false, "also make it the current context")

	del := &cobra.Command{
		Use: "delete-context NAME", Short: "Remove a context", Args: exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, p, err := load()
			if err != nil {
				return err
			}
			i := slices.IndexFunc(cfg.Contexts, func(c *cliContext) bool { return c.Name == args[0] })
			if i < 0 {
				return usagef("context %q is not in %s", args[0], p)
			}
			cfg.Contexts = slices.Delete(cfg.Contexts, i, i+1)
			if cfg.CurrentContext == args[0] {
				cfg.CurrentContext = ""
			}
			if err := cfg.save(p); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Deleted context %q.\n", args[0])
			return nil
		},
	}

	c := groupCommand("config", "Manage contexts: where the commands find the server and token", configLong,
		view, list, use, set, del)
	c.PersistentFlags().StringVar(&path, "config", "", "config file (default: $HOGWIRE_CONFIG, else ~/.config/hogwire/config.yaml)")
	return c
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// printValue prints a plain Go value (not a protobuf message) as JSON or
// YAML, or calls table.
func printValue(w io.Writer, o outputFormat, v any, table func(io.Writer) error) error {
	switch o {
	case outputJSON, outputYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		if o == outputJSON {
			if b, err = yaml.YAMLToJSON(b); err != nil {
				return err
			}
			return writeIndentedJSON(w, b)
		}
		_, err = w.Write(b)
		return err
	}
	return table(w)
}
