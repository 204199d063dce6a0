package resourcename_test

import (
	"testing"

	"github.com/hogwire/hogwire/resourcename"
)

func TestParse(t *testing.T) {
	if id, err := resourcename.ParseProject("projects/shop-1"); err != nil || id != "shop-1" {
		t.Errorf("project: %q, %v", id, err)
	}
	for _, bad := range []string{"shop", "projects/", "projects/Shop", "projects/shop/destinations/x", "projects/1shop"} {
		if _, err := resourcename.ParseProject(bad); err == nil {
			t.Errorf("ParseProject(%q) accepted", bad)
		}
	}
	if p, id, err := resourcename.ParseDestination("projects/-/destinations/hook"); err != nil || p != "-" || id != "hook" {
		t.Errorf("destination: %q %q %v", p, id, err)
	}
	for _, bad := range []string{"projects/shop/destinations/", "projects/shop/templates/x", "projects/shop/destinations/x/y", "destinations/x", "projects/-x/destinations/y"} {
		if _, _, err := resourcename.ParseDestination(bad); err == nil {
			t.Errorf("ParseDestination(%q) accepted", bad)
		}
	}
}

func TestHelpers(t *testing.T) {
	for name, want := range map[string]string{"projects/shop": "shop", "projects/shop/destinations/x": "shop", "templates/x": "", "": ""} {
		if got := resourcename.ProjectOf(name); got != want {
			t.Errorf("ProjectOf(%q) = %q, want %q", name, got, want)
		}
	}
	if !resourcename.IsDestination("projects/shop/destinations/x") || resourcename.IsDestination("projects/destinations") {
		t.Error("IsDestination")
	}
	if resourcename.ID("projects/shop/destinations/x") != "x" || resourcename.ID("x") != "x" {
		t.Error("ID")
	}
	if resourcename.DestinationArg("hook") != "projects/-/destinations/hook" || resourcename.DestinationArg("projects/a/destinations/b") != "projects/a/destinations/b" ||
		resourcename.ProjectArg("shop") != "projects/shop" || resourcename.TemplateArg("templates/webhook") != "templates/webhook" {
		t.Error("command-line arguments")
	}
}
