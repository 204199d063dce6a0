package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hogwire/hogwire/capture"
	"github.com/hogwire/hogwire/resourcename"
)

// Source webhooks are destinations of kind source_webhook: the webhooks
// commands are the destinations commands with that kind, and test, which
// sends a request to the webhook's URL on the data plane.

const sourceWebhookWord = "source-webhook"

func (a *app) webhooksCommand() *cobra.Command {
	create := a.destinationsCreate()
	create.Short = "Create an inbound webhook from a template (source-webhook, stripe-webhook, github-webhook…) or your Hog code"
	list := a.destinationsList()
	list.Short = "List inbound webhooks"
	for _, c := range []*cobra.Command{create, list} {
		f := c.Flags().Lookup("kind")
		_ = f.Value.Set(sourceWebhookWord)
		f.DefValue, f.Hidden = sourceWebhookWord, true
	}
	return groupCommand("webhooks", "Manage inbound (source) webhooks: create, list, get, update, delete, test",
		"Inbound webhooks turn HTTP requests to POST /public/webhooks/ID on the data plane into events\n"+
			"(see docs/webhooks.md). They are destinations of kind source_webhook: get, update and delete\n"+
			"work as for destinations.",
		create, list, a.destinationsGet(), a.destinationsUpdate(), a.destinationsDelete(), a.webhooksTest())
}

// webhookPath is the path of a webhook's URL on the data plane.
func webhookPath(name string) string { return capture.WebhookPath + resourcename.ID(name) }

func (a *app) webhooksTest() *cobra.Command {
	c := a.newAdminCmd("test WEBHOOK", "Send a request to a webhook's URL and show the answer",
		"POSTs a body to the webhook's URL on the data plane's HTTP capture address and prints the answer's\n"+
			"status and body. The events its code captures go through the pipeline as any.", exactArgs(1))
	var httpURL, body string
	var headers []string
	c.fs.StringVar(&httpURL, "http", "http://127.0.0.1:8080", "the data plane's HTTP capture base `URL`")
	c.fs.StringVar(&body, "body", "{}", "the request body (@file reads a file)")
	c.fs.StringArrayVar(&headers, "header", nil, "a request header `Name: value`, repeatable (default Content-Type: application/json)")
	return c.runE(func(ctx context.Context) error {
		b := []byte(body)
		if name, ok := strings.CutPrefix(body, "@"); ok {
			var err error
			if b, err = os.ReadFile(name); err != nil {
				return err
			}
		}
		url := strings.TrimRight(httpURL, "/") + webhookPath(c.args[0])
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(b)))
		if err != nil {
			return usagef("--http: %v", err)
		}
		req.Header.Set("Content-Type", "application/json")
		for _, h := range headers {
			k, v, ok := strings.Cut(h, ":")
			if !ok {
				return usagef("--header: %q is not Name: value", h)
			}
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("webhooks test: %w", err)
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("webhooks test: %w", err)
		}
		fmt.Fprintf(a.stdout, "%s\n%s", resp.Status, out)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			fmt.Fprintln(a.stdout)
		}
		if resp.StatusCode >= 400 {
			return fmt.Errorf("webhooks test: the webhook answered %s", resp.Status)
		}
		return nil
	}).cmd
}
