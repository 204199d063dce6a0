package charts_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// envOnly are the variables the binary reads directly, not as a flag:
// secrets that may come from the environment instead of a file.
var envOnly = map[string]bool{
	"HOGWIRE_ADMIN_TOKEN":   true,
	"HOGWIRE_NODE_TOKEN":    true,
	"HOGWIRE_SECRETS_KEY":   true,
	"HOGWIRE_ETCD_PASSWORD": true,
	"HOGWIRE_NATS_PASSWORD": true,
}

// roleFlags reads the flags of `hogwire <role>` from its help golden, which
// cmd/hogwire's TestGoldenHelp keeps equal to the binary's --help (this
// module does not import the product's).
func roleFlags(t *testing.T, role string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cmd", "hogwire", "testdata", "help", "hogwire_"+role+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(b), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 10 {
		t.Fatalf("read only %d flags of %s from its help", len(flags), role)
	}
	return flags
}

// Every HOGWIRE_* variable the chart gives a role is one its binary reads
// (a flag as HOGWIRE_<FLAG>, or a secret read from the environment): a
// misspelt or unwired variable would be ignored without a word.
func TestEnvVarsAreFlagsOfTheBinary(t *testing.T) {
	sets := valueSets(t)
	// The NATS auth methods are exclusive: render each.
	for _, auth := range []map[string]any{
		{"existingSecret": "nats-auth", "nkeyKey": "user.nk"},
		{"existingSecret": "nats-auth", "user": "hogwire", "passwordKey": "password"},
	} {
		v := readValuesFile(t, "tls-auth-values.yaml")
		nats := v["nats"].(map[string]any)["external"].(map[string]any)
		nats["auth"] = auth
		nats["tls"] = map[string]any{"existingSecret": "nats-tls"}
		v["etcd"].(map[string]any)["external"].(map[string]any)["tls"] = map[string]any{"existingSecret": "etcd-tls", "serverName": "etcd.storage.svc"}
		sets["tls-auth with NATS "+strings.Join(keys(auth), ",")] = renderOpts{values: v}
	}
	flags := map[string]map[string]bool{"controlplane": roleFlags(t, "controlplane"), "dataplane": roleFlags(t, "dataplane")}
	seen := map[string]bool{}
	for name, opts := range sets {
		r := render(t, opts)
		for role, want := range flags {
			d := find[*appsv1.Deployment](t, r, "hogwire-"+role)
			for k := range settings(t, r, container(t, &d.Spec.Template.Spec, role)) {
				if !strings.HasPrefix(k, "HOGWIRE_") {
					continue
				}
				seen[k] = true
				flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "HOGWIRE_")), "_", "-")
				if !want[flag] && !envOnly[k] {
					t.Errorf("%s: the %s gets %s, but `hogwire %s` has no --%s", name, role, k, role, flag)
				}
			}
		}
	}
	// The store settings are among what was checked.
	for _, k := range []string{"HOGWIRE_ETCD_CACERT", "HOGWIRE_ETCD_CERT", "HOGWIRE_ETCD_KEY", "HOGWIRE_ETCD_SERVER_NAME",
		"HOGWIRE_ETCD_USER", "HOGWIRE_ETCD_PASSWORD_FILE", "HOGWIRE_NATS_TLSCA", "HOGWIRE_NATS_TLSCERT", "HOGWIRE_NATS_TLSKEY",
		"HOGWIRE_NATS_CREDS", "HOGWIRE_NATS_NKEY", "HOGWIRE_NATS_USER", "HOGWIRE_NATS_PASSWORD_FILE", "HOGWIRE_NATS_REPLICAS",
		"HOGWIRE_METRICS_ADDR"} {
		if !seen[k] {
			t.Errorf("no value set renders %s", k)
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		if k != "existingSecret" {
			out = append(out, k)
		}
	}
	return out
}
