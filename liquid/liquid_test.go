package liquid_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	yaml "gopkg.in/yaml.v2"

	"github.com/hogwire/hogwire/liquid"
)

func render(t *testing.T, src string, vars map[string]any) (string, error) {
	t.Helper()
	tpl, err := liquid.Parse(src)
	if err != nil {
		return "", err
	}
	return tpl.Render(vars, liquid.Limits{Deadline: time.Now().Add(5 * time.Second)})
}

func TestRender(t *testing.T) {
	vars := map[string]any{
		"event": yaml.MapSlice{{Key: "event", Value: "signed_up"}, {Key: "properties", Value: yaml.MapSlice{
			{Key: "zeta", Value: 1.0}, {Key: "alpha", Value: "a&b <i>"}, {Key: "items", Value: []any{"x", "y"}},
		}}},
		"person": yaml.MapSlice{{Key: "properties", Value: yaml.MapSlice{{Key: "name", Value: "Ada"}, {Key: "signed_up_at", Value: "2024-03-20T15:30:00Z"}}}},
	}
	for _, c := range []struct{ src, want string }{
		{"Hi {{ person.properties.name }}!", "Hi Ada!"},
		{"{{ person.properties.missing | default: 'there' }}", "there"},
		{"{{ event.properties.alpha }}", "a&amp;b &lt;i&gt;"},
		{"{{ event.properties.alpha | raw }}", "a&b <i>"},
		{"{{ event.properties | json | raw }}", `{"zeta":1,"alpha":"a&b <i>","items":["x","y"]}`},
		{"{% for i in event.properties.items %}[{{ i }}]{% endfor %}", "[x][y]"},
		{"{% for i in event.properties.items reversed limit: 1 %}{{ forloop.index }}{{ i }}{% endfor %}", "1y"},
		{"{% for i in (1..3) %}{{ i }}{% endfor %}", "123"},
		{"{% for p in event.properties %}{{ p[0] }},{% endfor %}", "zeta,alpha,items,"},
		{"{% if event.event == 'signed_up' %}yes{% else %}no{% endif %}", "yes"},
		{"{{ person.properties.signed_up_at | date: '%Y-%m-%d %H:%M' }}", "2024-03-20 15:30"},
		{"{{ '2024-03-20' | date: '%Y%m%d' }}", "20240320"},
		{"{{ 'John, Paul' | split: ', ' | join: ' and ' }}", "John and Paul"},
		{"{{ event.properties.zeta | plus: 2 }}", "3"},
		// Rich-text editors escape what is inside the braces.
		{"{% if event.properties.zeta &gt; 0 %}pos{% endif %}", "pos"},
		{"{%- if true -%}  x  {%- endif -%}", "x"},
		{"{% raw %}{{ not rendered }}{% endraw %}", "{{ not rendered }}"},
		{"{% capture c %}{{ person.properties.name }}!{% endcapture %}{{ c | raw }}", "Ada!"},
	} {
		got, err := render(t, c.src, vars)
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.src, got, err, c.want)
		}
	}
	got, err := render(t, "{{ now | date: '%Y' }}", nil)
	if err != nil || got != time.Now().Format("2006") {
		t.Errorf("now: %q %v", got, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		src  string
		line int
		msg  string
	}{
		{"{% if x %}open", -1, `unterminated "if"`},
		{"a\n{{ x | }}", 2, "syntax error"},
		{"{{ x | nosuchfilter }}", 1, "undefined filter"},
		{"ok\nHi {{ name", 2, `"{{" is not closed`},
		{`{% include "/etc/passwd" %}`, 1, "include is not supported"},
		{strings.Repeat("x", liquid.MaxSource+1), 0, "longer than"},
	} {
		_, err := liquid.Parse(c.src)
		var le *liquid.Error
		if !errors.As(err, &le) || (c.line >= 0 && le.Line != c.line) || !strings.Contains(le.Msg, c.msg) {
			t.Errorf("%.40q: got %v, want line %d containing %q", c.src, err, c.line, c.msg)
		}
	}
}

func TestLimits(t *testing.T) {
	items := make([]any, 1000)
	for i := range items {
		items[i] = i
	}
	for _, src := range []string{
		"{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}",
		"{% for a in (1..1000000000) %}{% endfor %}",
		"{% assign s = 'xx' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}",
		"{% assign s = 'xx' %}{% for i in (1..40) %}{% capture s %}{{ s | raw }}{{ s | raw }}{% endcapture %}{% endfor %}",
		"{% for a in items %}{% for b in items %}xxxxxxxxxxxxxxxxxxxx{% endfor %}{% endfor %}",
	} {
		_, err := render(t, src, map[string]any{"items": items})
		if !errors.Is(err, liquid.ErrLimit) {
			t.Errorf("%s: got %v, want a limit error", src, err)
		}
	}
	tpl, err := liquid.Parse("{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Render(map[string]any{"items": items}, liquid.Limits{Deadline: time.Now().Add(-time.Second), MaxIterations: 1 << 30}); !errors.Is(err, liquid.ErrLimit) || !strings.Contains(err.Error(), "too long") {
		t.Errorf("deadline: got %v", err)
	}
}
