import { useEffect, useRef, useState } from 'preact/hooks'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt'
import { api } from '../api'
import { MetricInterval, type MetricSeries } from '../gen/hogwire/v1/metrics_pb'
import { ErrorBanner, Loading, fmtNumber, useAsync } from '../ui'
import type { TabProps } from './destination'

const periods = [
  { id: '1h', label: 'Last hour', ms: 3600e3, interval: MetricInterval.MINUTE },
  { id: '24h', label: 'Last 24 hours', ms: 24 * 3600e3, interval: MetricInterval.HOUR },
  { id: '7d', label: 'Last 7 days', ms: 7 * 24 * 3600e3, interval: MetricInterval.HOUR },
  { id: '30d', label: 'Last 30 days', ms: 30 * 24 * 3600e3, interval: MetricInterval.DAY },
]

interface Chart {
  title: string
  unit: string
  metrics: { name: string; label: string; color: string }[]
  sum: boolean
}

const charts: Chart[] = [
  {
    title: 'Outcomes',
    unit: 'invocations',
    sum: true,
    metrics: [
      { name: 'succeeded', label: 'Succeeded', color: '#1a7f37' },
      { name: 'failed', label: 'Failed', color: '#cf222e' },
      { name: 'filtered', label: 'Filtered', color: '#6e7781' },
      { name: 'masked', label: 'Masked', color: '#8250df' },
      { name: 'disabled_temporarily', label: 'Quarantined', color: '#bc4c00' },
      { name: 'disabled_permanently', label: 'Disabled', color: '#953800' },
      { name: 'filtering_failed', label: 'Filter failed', color: '#a40e26' },
      { name: 'inputs_failed', label: 'Inputs failed', color: '#e16f24' },
    ],
  },
  {
    title: 'Requests',
    unit: 'requests',
    sum: true,
    metrics: [
      { name: 'fetch_attempts', label: 'Attempts', color: '#0969da' },
      { name: 'fetch_failed_4xx', label: '4xx', color: '#bf8700' },
      { name: 'fetch_failed_5xx', label: '5xx', color: '#cf222e' },
      { name: 'fetch_timeouts', label: 'Timeouts', color: '#8250df' },
      { name: 'fetch_errors', label: 'Connection errors', color: '#57606a' },
    ],
  },
  {
    title: 'Duration',
    unit: 'ms',
    sum: false,
    metrics: [
      { name: 'duration_p50_ms', label: 'p50', color: '#0969da' },
      { name: 'duration_p95_ms', label: 'p95', color: '#bf8700' },
      { name: 'duration_p99_ms', label: 'p99', color: '#cf222e' },
    ],
  },
]

export function MetricsTab({ d }: TabProps) {
  const [period, setPeriod] = useState('24h')
  const [compare, setCompare] = useState(true)
  const p = periods.find((x) => x.id === period)!
  const data = useAsync(async () => {
    const end = new Date()
    const start = new Date(end.getTime() - p.ms)
    const q = (s: Date, e: Date) =>
      api.metrics.queryMetrics({ parent: d.name, startTime: timestampFromDate(s), endTime: timestampFromDate(e), interval: p.interval }).then((r) => r.series)
    const [cur, prev] = await Promise.all([q(start, end), compare ? q(new Date(start.getTime() - p.ms), start) : Promise.resolve([] as MetricSeries[])])
    return { cur, prev }
  }, [d.name, period, compare])
  return (
    <>
      <div class="toolbar">
        <div class="field inline">
          <label for="metrics-period">Period</label>
          <select id="metrics-period" value={period} onChange={(e) => setPeriod(e.currentTarget.value)}>
            {periods.map((x) => (
              <option value={x.id}>{x.label}</option>
            ))}
          </select>
        </div>
        <label class="check-inline">
          <input type="checkbox" checked={compare} onChange={(e) => setCompare(e.currentTarget.checked)} /> Compare with the period before
        </label>
        <button type="button" class="quiet" onClick={data.reload}>
          Refresh
        </button>
      </div>
      <ErrorBanner error={data.error} />
      {data.loading && !data.data && <Loading what="metrics" />}
      {data.data &&
        charts.map((c) => <ChartSection key={c.title + period + compare} chart={c} cur={data.data!.cur} prev={data.data!.prev} compare={compare} shift={p.ms / 1000} />)}
    </>
  )
}

function values(series: MetricSeries[], name: string): MetricSeries | undefined {
  return series.find((s) => s.metric === name)
}

function total(s: MetricSeries | undefined, sum: boolean): number {
  if (!s || s.points.length === 0) return 0
  const vs = s.points.map((p) => p.value)
  return sum ? vs.reduce((a, b) => a + b, 0) : Math.max(...vs)
}

function ChartSection(props: { chart: Chart; cur: MetricSeries[]; prev: MetricSeries[]; compare: boolean; shift: number }) {
  const { chart } = props
  const host = useRef<HTMLDivElement>(null)
  const shown = chart.metrics.filter((m) => values(props.cur, m.name))
  useEffect(() => {
    const first = values(props.cur, shown[0]?.name)
    const el = host.current
    if (!el || !first) return
    const xs = first.points.map((p) => timestampDate(p.time!).getTime() / 1000)
    const data: (number | null)[][] = [xs]
    const series: uPlot.Series[] = [{}]
    for (const m of shown) {
      data.push(values(props.cur, m.name)!.points.map((p) => p.value))
      series.push({ label: m.label, stroke: m.color, width: 2, points: { show: false } })
    }
    if (props.compare) {
      for (const m of shown) {
        const prev = values(props.prev, m.name)
        if (!prev) continue
        // The period before, drawn over this one: point i of each lines up.
        data.push(xs.map((_, i) => prev.points[i]?.value ?? null))
        series.push({ label: m.label + ' (before)', stroke: m.color, width: 1, dash: [4, 4], points: { show: false }, show: m.name === 'succeeded' || m.name === 'failed' || !chart.sum })
      }
    }
    const width = () => Math.max(280, el.clientWidth)
    const plot = new uPlot(
      { width: width(), height: 220, series, scales: { x: { time: true } }, axes: [{}, { label: chart.unit, size: 60 }], // The table under the chart is its legend, with the figures.
        legend: { show: false } },
      data as uPlot.AlignedData,
      el,
    )
    const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: 220 }))
    ro.observe(el)
    return () => {
      ro.disconnect()
      plot.destroy()
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.cur, props.prev, props.compare])
  const id = 'chart-' + chart.title.toLowerCase()
  return (
    <section class="chart card" aria-labelledby={id}>
      <h2 id={id}>{chart.title}</h2>
      <div ref={host} role="img" aria-label={`${chart.title} over time; the table below has the figures.`} />
      <div class="table-wrap">
        <table class="compact" data-testid={id}>
          <caption class="sr-only">{chart.title}: {chart.sum ? 'totals' : 'highest value'} this period{props.compare ? ' and the period before' : ''}</caption>
          <thead>
            <tr>
              <th scope="col">{chart.sum ? 'Total' : 'Highest'}</th>
              <th scope="col">This period</th>
              {props.compare && <th scope="col">Period before</th>}
              {props.compare && <th scope="col">Change</th>}
            </tr>
          </thead>
          <tbody>
            {shown.map((m) => {
              const now = total(values(props.cur, m.name), chart.sum)
              const before = total(values(props.prev, m.name), chart.sum)
              const change = before === 0 ? (now === 0 ? '—' : 'new') : `${now >= before ? '+' : ''}${(((now - before) / before) * 100).toFixed(0)}%`
              return (
                <tr key={m.name}>
                  <th scope="row">
                    <span class="swatch" style={{ background: m.color }} aria-hidden="true" /> {m.label}
                  </th>
                  <td data-metric={m.name}>{fmtNumber(now)}</td>
                  {props.compare && <td>{fmtNumber(before)}</td>}
                  {props.compare && <td>{change}</td>}
                </tr>
              )
            })}
          </tbody>
        </table>
      </div>
    </section>
  )
}
