// Package liquid renders input templates written in Liquid
// ("Hi {{ person.properties.name | default: 'there' }}") the way PostHog's
// destinations do, on top of github.com/osteele/liquid.
//
// It follows PostHog's LiquidJS set-up: every {{ output }} is HTML-escaped
// unless its last filter is raw; HTML entities inside {{ }} and {% %} are
// decoded first (rich-text editors write &gt; for >); now is bound to the
// current time; the date filter takes "now", ISO timestamps and Unix
// seconds. Templates are untrusted: include is refused, sources are
// limited to 100 KB, and a render stops with an error when it runs out of
// time, loop iterations, output or string size (Limits).
package liquid

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/osteele/liquid"
	"github.com/osteele/liquid/parser"
	"github.com/osteele/liquid/render"
	yaml "gopkg.in/yaml.v2"
)

// MaxSource is the largest template accepted, as in PostHog.
const MaxSource = 100 << 10

// Error is a template that does not parse. Line is 1-based (0 when
// unknown).
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Template is a parsed template, safe for concurrent use.
type Template struct {
	t *liquid.Template
}

// captureTag replaces the capture tag (the engine does not let a standard
// tag be redefined).
const captureTag = "hogwire_capture"

// budgetVar names the binding that carries a render's budget to the
// loop filter; templates cannot do anything with it.
const budgetVar = "__hogwire_budget"

// Parse parses a template. Errors are *Error.
func Parse(src string) (*Template, error) {
	if len(src) > MaxSource {
		return nil, &Error{Msg: fmt.Sprintf("the template is longer than %d bytes", MaxSource)}
	}
	rewritten, err := rewrite(src)
	if err != nil {
		return nil, err
	}
	t, serr := newEngine().ParseTemplateLocation([]byte(rewritten), "", 1)
	if serr != nil {
		return nil, sourceError(serr)
	}
	return &Template{t: t}, nil
}

func sourceError(err liquid.SourceError) *Error {
	msg := err.Error()
	if c := err.Cause(); c != nil {
		msg = c.Error()
	}
	msg = liquidPrefix.ReplaceAllString(msg, "")
	// The engine quotes the rewritten source; name the user's constructs.
	msg = strings.ReplaceAll(msg, " | "+loopFilter+": "+budgetVar, "")
	msg = strings.ReplaceAll(msg, " | escape }}", " }}")
	msg = strings.ReplaceAll(msg, ` | escape"`, `"`)
	msg = strings.ReplaceAll(msg, captureTag, "capture")
	return &Error{Line: err.LineNumber(), Msg: msg}
}

var (
	entityInTag  = regexp.MustCompile(`&(lt|gt|quot|#x27|#39|amp);`)
	loopArgs     = regexp.MustCompile(`^\s*([\w-]+)\s+in\s+(.+?)\s*$`)
	loopModifier = regexp.MustCompile(`\s+(reversed|(?:limit|offset|cols)\s*:\s*(?:[\w.\-\[\]]+|"[^"]*"|'[^']*'))\s*$`)
	rawFilter    = regexp.MustCompile(`\|\s*raw\s*$`)
	liquidPrefix = regexp.MustCompile(`^Liquid error(?: \(line \d+\))?: `)
)

// decodeEntities undoes the HTML escaping rich-text editors apply inside
// {{ }} and {% %}, as PostHog does before parsing.
func decodeEntities(s string) string {
	return entityInTag.ReplaceAllStringFunc(s, func(m string) string {
		switch m {
		case "&lt;":
			return "<"
		case "&gt;":
			return ">"
		case "&quot;":
			return `"`
		case "&#x27;", "&#39;":
			return "'"
		}
		return "&"
	})
}

// rewrite checks what the engine lets through and adds what PostHog's
// engine does on its own: escaping of outputs, and a budget on every loop.
func rewrite(src string) (string, error) {
	var b strings.Builder
	raw := false
	for _, tok := range parser.Scan(src, parser.SourceLoc{LineNo: 1}, nil) {
		line := tok.SourceLoc.LineNo
		switch tok.Type {
		case parser.TextTokenType:
			if !raw {
				for _, open := range []string{"{{", "{%"} {
					if i := strings.Index(tok.Source, open); i >= 0 {
						return "", &Error{Line: line + strings.Count(tok.Source[:i], "\n"), Msg: fmt.Sprintf("%q is not closed", open)}
					}
				}
			}
			b.WriteString(tok.Source)
		case parser.ObjTokenType:
			if raw {
				b.WriteString(tok.Source)
				continue
			}
			l, r := trimMarks(tok.Source)
			expr := decodeEntities(tok.Args)
			if err := checkFilters(expr); err != nil {
				return "", &Error{Line: line, Msg: err.Error()}
			}
			if rawFilter.MatchString(expr) {
				expr = strings.TrimSpace(rawFilter.ReplaceAllString(expr, ""))
			} else {
				expr += " | escape"
			}
			b.WriteString("{{" + l + " " + expr + " " + r + "}}")
		case parser.TagTokenType:
			switch {
			case tok.Name == "endraw":
				raw = false
			case raw:
			case tok.Name == "raw":
				raw = true
			case tok.Name == "include" || tok.Name == "render" || tok.Name == "layout":
				return "", &Error{Line: line, Msg: tok.Name + " is not supported: templates cannot read other files"}
			}
			if raw || tok.Name == "raw" || tok.Name == "endraw" {
				b.WriteString(tok.Source)
				continue
			}
			l, r := trimMarks(tok.Source)
			args := decodeEntities(tok.Args)
			if err := checkFilters(args); err != nil {
				return "", &Error{Line: line, Msg: err.Error()}
			}
			if tok.Name == "for" || tok.Name == "tablerow" {
				var err error
				if args, err = budgetLoop(args); err != nil {
					return "", &Error{Line: line, Msg: err.Error()}
				}
			}
			name := tok.Name
			switch name {
			case "capture", "endcapture":
				// capture builds strings; ours checks their size.
				name = strings.Replace(name, "capture", captureTag, 1)
			}
			b.WriteString("{%" + l + " " + name + " " + args + " " + r + "%}")
		}
		// Trim tokens carry no source; the marks are kept on the tags.
	}
	return b.String(), nil
}

// trimMarks returns the whitespace-control dashes of a tag or output.
func trimMarks(source string) (left, right string) {
	if len(source) > 2 && source[2] == '-' {
		left = "-"
	}
	if len(source) > 4 && source[len(source)-3] == '-' {
		right = "-"
	}
	return left, right
}

// budgetLoop passes a loop's collection through the loop filter, which
// counts its iterations against the render's budget: "x in items limit:2"
// becomes "x in items | loop: budget limit:2".
func budgetLoop(args string) (string, error) {
	m := loopArgs.FindStringSubmatch(args)
	if m == nil {
		return "", fmt.Errorf("syntax error in loop %q", args)
	}
	expr, mods := m[2], ""
	for {
		loc := loopModifier.FindStringIndex(expr)
		if loc == nil {
			break
		}
		mods = expr[loc[0]:] + mods
		expr = expr[:loc[0]]
	}
	return m[1] + " in " + expr + " | " + loopFilter + ": " + budgetVar + mods, nil
}

// Limits bound one render. Zero fields take the defaults.
type Limits struct {
	// Deadline stops a render that has not finished by then.
	Deadline time.Time
	// MaxIterations is the number of loop iterations allowed in all (default 100,000).
	MaxIterations int
	// MaxOutput is the largest output, and the largest string a filter or
	// capture may build, in bytes (default 1 MiB).
	MaxOutput int
}

// Default limits.
const (
	DefaultMaxIterations = 100_000
	DefaultMaxOutput     = 1 << 20
)

// ErrLimit is wrapped by the error of a render that ran out of time,
// iterations or output.
var ErrLimit = errors.New("liquid: render limit")

// budget is one render's remaining allowance, shared by the loop filter,
// the capture tag and the output writer.
type budget struct {
	deadline   time.Time
	iterations int
	output     int
	maxString  int
	exceeded   error
}

func (b *budget) fail(format string, args ...any) {
	if b.exceeded == nil {
		b.exceeded = fmt.Errorf("%w: "+format, append([]any{ErrLimit}, args...)...)
	}
	panic(b.exceeded)
}

func (b *budget) tick() {
	b.iterations--
	if b.iterations < 0 {
		b.fail("more than the allowed loop iterations")
	}
	if b.iterations%256 == 0 && !b.deadline.IsZero() && time.Now().After(b.deadline) {
		b.fail("the template took too long to render")
	}
}

// writer is the render's output, counted against the budget.
type writer struct {
	buf bytes.Buffer
	b   *budget
}

func (w *writer) Write(p []byte) (int, error) {
	w.b.output -= len(p)
	if w.b.output < 0 {
		w.b.fail("the output is larger than %d bytes", w.b.maxString)
	}
	if !w.b.deadline.IsZero() && time.Now().After(w.b.deadline) {
		w.b.fail("the template took too long to render")
	}
	return w.buf.Write(p)
}

// Render renders the template with bindings (see Bindings) within lim.
// Errors that come from lim wrap ErrLimit.
func (t *Template) Render(bindings map[string]any, lim Limits) (out string, err error) {
	b := &budget{
		deadline:   lim.Deadline,
		iterations: lim.MaxIterations,
		output:     lim.MaxOutput,
	}
	if b.iterations <= 0 {
		b.iterations = DefaultMaxIterations
	}
	if b.output <= 0 {
		b.output = DefaultMaxOutput
	}
	b.maxString = b.output
	vars := make(map[string]any, len(bindings)+2)
	for k, v := range bindings {
		vars[k] = v
	}
	if _, ok := vars["now"]; !ok {
		vars["now"] = time.Now()
	}
	vars[budgetVar] = b
	w := &writer{b: b}
	defer func() {
		if r := recover(); r != nil {
			switch {
			case b.exceeded != nil:
				out, err = "", b.exceeded
			default:
				lp, ok := r.(limitPanic)
				if !ok {
					panic(r)
				}
				out, err = "", lp.err
			}
		}
	}()
	if serr := t.t.FRender(w, vars); serr != nil {
		if b.exceeded != nil {
			return "", b.exceeded
		}
		return "", sourceError(serr)
	}
	return w.buf.String(), nil
}

// newEngine returns an engine with the standard tags and filters and
// PostHog's additions; see filters.go.
func newEngine() *liquid.Engine {
	e := liquid.NewEngine()
	addFilters(e)
	e.RegisterBlock(captureTag, func(ctx render.Context) (string, error) {
		s, err := ctx.InnerString()
		if err != nil {
			return "", err
		}
		capped(s)
		ctx.Set(strings.TrimSpace(ctx.TagArgs()), s)
		return "", nil
	})
	return e
}

// Map is an object whose keys keep their order, as bindings should hold
// objects (the engine's ordered map type).
type Map = yaml.MapSlice

// MapItem is one key of a Map.
type MapItem = yaml.MapItem
