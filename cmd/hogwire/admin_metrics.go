package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/enumword"
	"github.com/hogwire/hogwire/resourcename"
)

// tableMetrics are the columns of the table when neither --metric nor
// --all is given; JSON and YAML output get every metric.
var tableMetrics = []string{"succeeded", "failed", "filtered", "disabled_temporarily", "fetch_failed_4xx", "fetch_failed_5xx", "fetch_timeouts", "fetch_errors", "duration_p95_ms"}

// metricInterval is the --interval flag.
type metricInterval hogwirev1.MetricInterval

func (i *metricInterval) String() string {
	if *i == 0 {
		return ""
	}
	return enumword.Of(hogwirev1.MetricInterval(*i))
}

func (i *metricInterval) Type() string { return "interval" }

func (i *metricInterval) Set(s string) error {
	v, ok := enumword.Parse(hogwirev1.MetricInterval(0).Descriptor(), s)
	if !ok {
		return fmt.Errorf("%q is not minute, hour or day", s)
	}
	*i = metricInterval(v)
	return nil
}

func (a *app) metricsCommand() *cobra.Command {
	c := a.newAdminCmd("metrics DESTINATION|projects/PROJECT", "Print a destination's or project's metrics as a table and sparklines",
		"Prints a destination's metrics, summed over every node, as a table (a row per interval) and a\n"+
			"sparkline per metric. A project shows each of its destinations, or their sum with --aggregate.\n"+
			"The table shows the main metrics; --all shows every metric the system records (health_errors,\n"+
			"failed_client_error, captured, fetch_attempts, …), as do -o json and -o yaml.", exactArgs(1))
	c.cmd.Example = "  hogwire metrics hook --since 1h\n  hogwire metrics projects/shop --aggregate --all"
	var (
		since     time.Duration
		interval  metricInterval
		metrics   []string
		aggregate bool
		all       bool
	)
	c.fs.DurationVar(&since, "since", time.Hour, "show this last `duration`")
	c.fs.Var(&interval, "interval", "width of a row: minute, hour or day (default: by the range)")
	c.fs.StringArrayVar(&metrics, "metric", nil, "show this metric `name` (repeatable; default: the main ones, all with --all or -o json)")
	c.fs.BoolVar(&all, "all", false, "show every metric")
	c.fs.BoolVar(&aggregate, "aggregate", false, "sum a project's destinations")
	c.cmd.MarkFlagsMutuallyExclusive("all", "metric")
	c.completeArgs(completeDestinations)
	return c.runE(func(ctx context.Context) error {
		if since <= 0 {
			return usagef("metrics: --since must be positive")
		}
		ctx, cc, done, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer done()
		names := metrics
		if len(names) == 0 && c.output == outputTable && !all {
			names = tableMetrics
		}
		end := time.Now()
		resp, err := hogwirev1.NewMetricsServiceClient(cc).QueryMetrics(ctx, &hogwirev1.QueryMetricsRequest{
			Parent: resourcename.DestinationArg(c.args[0]), Metrics: names, StartTime: timestamppb.New(end.Add(-since)), EndTime: timestamppb.New(end),
			Interval: hogwirev1.MetricInterval(interval), Aggregate: aggregate,
		})
		if err != nil {
			return c.callErr("query metrics", err)
		}
		return c.printMessage(resp, func(w io.Writer) error {
			writeMetrics(w, resp)
			return nil
		})
	}).cmd
}

// writeMetrics prints, per destination, a table with a row per interval
// and a column per metric, then a sparkline per metric.
func writeMetrics(w io.Writer, resp *hogwirev1.QueryMetricsResponse) {
	layout := "2006-01-02 15:04"
	if resp.GetInterval() == hogwirev1.MetricInterval_METRIC_INTERVAL_DAY {
		layout = "2006-01-02"
	}
	var groups [][]*hogwirev1.MetricSeries
	for i, s := range resp.GetSeries() {
		if i == 0 || s.GetDestination() != resp.GetSeries()[i-1].GetDestination() {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], s)
	}
	if len(groups) == 0 {
		fmt.Fprintln(w, "No metrics in this range.")
		return
	}
	for gi, group := range groups {
		if gi > 0 {
			fmt.Fprintln(w)
		}
		if d := group[0].GetDestination(); d != "" {
			fmt.Fprintf(w, "%s\n", d)
		} else {
			fmt.Fprintln(w, "all destinations")
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		header := []string{"TIME (UTC)"}
		for _, s := range group {
			header = append(header, strings.ToUpper(s.GetMetric()))
		}
		fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
		for i, p := range group[0].GetPoints() {
			row := []string{p.GetTime().AsTime().UTC().Format(layout)}
			for _, s := range group {
				v := 0.0
				if i < len(s.GetPoints()) {
					v = s.GetPoints()[i].GetValue()
				}
				row = append(row, formatMetric(v))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
		fmt.Fprintln(w)
		width := 0
		for _, s := range group {
			width = max(width, len(s.GetMetric()))
		}
		for _, s := range group {
			var vs []float64
			var total, peak float64
			for _, p := range s.GetPoints() {
				vs = append(vs, p.GetValue())
				total += p.GetValue()
				peak = max(peak, p.GetValue())
			}
			fmt.Fprintf(w, "%-*s  %s  max %s", width, s.GetMetric(), sparkline(vs, 60), formatMetric(peak))
			if !strings.HasPrefix(s.GetMetric(), "duration_") {
				fmt.Fprintf(w, "  total %s", formatMetric(total))
			}
			fmt.Fprintln(w)
		}
	}
}

func formatMetric(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

var sparks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws vs in at most width cells, each the largest value of the
// points it covers, scaled to the largest overall; zero is the lowest bar.
func sparkline(vs []float64, width int) string {
	if len(vs) == 0 {
		return ""
	}
	cells := vs
	if len(vs) > width {
		cells = make([]float64, width)
		for i, v := range vs {
			j := i * width / len(vs)
			cells[j] = max(cells[j], v)
		}
	}
	var peak float64
	for _, v := range cells {
		peak = max(peak, v)
	}
	var b strings.Builder
	for _, v := range cells {
		i := 0
		if peak > 0 && v > 0 {
			i = max(1, int(math.Round(v/peak*float64(len(sparks)-1))))
		}
		b.WriteRune(sparks[i])
	}
	return b.String()
}
