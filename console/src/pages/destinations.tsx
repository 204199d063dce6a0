import { useMemo, useState } from 'preact/hooks'
import { timestampFromDate } from '@bufbuild/protobuf/wkt'
import { api, splitName } from '../api'
import type { Destination } from '../gen/hogwire/v1/destination_pb'
import { MetricInterval } from '../gen/hogwire/v1/metrics_pb'
import { ErrorBanner, HealthBadge, Link, Loading, PageHeading, Sparkline, healthLabel, useAsync } from '../ui'

type Grouping = 'none' | 'template' | 'health' | 'status'

export function DestinationsPage(props: { project: string }) {
  const parent = `projects/${props.project}`
  const project = useAsync(() => api.projects.getProject({ name: parent }), [parent])
  const list = useAsync(() => api.destinations.listDestinations({ parent, pageSize: 1000 }), [parent])
  // One query for the sparklines of every destination: the last 24 hours by hour.
  const spark = useAsync(async () => {
    const end = new Date()
    const r = await api.metrics.queryMetrics({
      parent,
      metrics: ['succeeded', 'failed'],
      startTime: timestampFromDate(new Date(end.getTime() - 24 * 3600e3)),
      endTime: timestampFromDate(end),
      interval: MetricInterval.HOUR,
    })
    const by: Record<string, Record<string, number[]>> = {}
    for (const s of r.series) (by[s.destination] ??= {})[s.metric] = s.points.map((p) => p.value)
    return by
  }, [parent])
  const [q, setQ] = useState('')
  const [group, setGroup] = useState<Grouping>('none')

  const groups = useMemo(() => {
    const needle = q.trim().toLowerCase()
    const ds = (list.data?.destinations ?? []).filter(
      (d) => !needle || [d.displayName, d.description, d.template, splitName(d.name)[1]].some((s) => s.toLowerCase().includes(needle)),
    )
    const key = (d: Destination) =>
      group === 'template' ? d.template.replace('templates/', '') || 'custom' : group === 'health' ? healthLabel(d.health) : group === 'status' ? (d.enabled ? 'Enabled' : 'Disabled') : ''
    const out = new Map<string, Destination[]>()
    for (const d of ds.sort((a, b) => a.displayName.localeCompare(b.displayName))) {
      const k = key(d)
      out.set(k, [...(out.get(k) ?? []), d])
    }
    return [...out.entries()].sort((a, b) => a[0].localeCompare(b[0]))
  }, [list.data, q, group])

  const total = list.data?.destinations.length ?? 0
  const shown = groups.reduce((n, [, ds]) => n + ds.length, 0)
  return (
    <>
      <PageHeading>Destinations{project.data ? ` — ${project.data.project?.displayName}` : ''}</PageHeading>
      <div class="toolbar">
        <div class="field inline">
          <label for="dest-search">Search</label>
          <input id="dest-search" type="search" value={q} placeholder="Name, template…" onInput={(e) => setQ(e.currentTarget.value)} />
        </div>
        <div class="field inline">
          <label for="dest-group">Group by</label>
          <select id="dest-group" value={group} onChange={(e) => setGroup(e.currentTarget.value as Grouping)}>
            <option value="none">Nothing</option>
            <option value="template">Template</option>
            <option value="health">Health</option>
            <option value="status">Enabled or not</option>
          </select>
        </div>
        <span class="spacer" />
        <Link to={`/projects/${props.project}/new`} class="button primary">
          New destination
        </Link>
      </div>
      <ErrorBanner error={project.error ?? list.error} />
      {list.loading && !list.data && <Loading what="destinations" />}
      {list.data && total === 0 && (
        <p>
          No destinations yet. <Link to={`/projects/${props.project}/new`}>Create one from a template.</Link>
        </p>
      )}
      {total > 0 && (
        <p class="muted" role="status">
          {shown === total ? `${total} destinations` : `${shown} of ${total} destinations`}
        </p>
      )}
      {groups.map(([name, ds]) => (
        <section key={name} aria-label={name || undefined}>
          {name && <h2 class="group">{name}</h2>}
          <div class="table-wrap">
            <table>
              <caption class="sr-only">Destinations{name ? ': ' + name : ''}</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Template</th>
                  <th scope="col">Health</th>
                  <th scope="col">Last 24 hours</th>
                </tr>
              </thead>
              <tbody>
                {ds.map((d) => {
                  const id = splitName(d.name)[1]
                  const m = spark.data?.[d.name] ?? {}
                  const ok = m.succeeded ?? [], bad = m.failed ?? []
                  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0)
                  return (
                    <tr key={d.name}>
                      <td>
                        <Link to={`/projects/${props.project}/destinations/${id}`}>{d.displayName}</Link>
                        {d.description && <div class="muted small">{d.description}</div>}
                      </td>
                      <td>{d.template ? d.template.replace('templates/', '') : <span class="muted">custom</span>}</td>
                      <td>
                        <HealthBadge health={d.health} enabled={d.enabled} />
                      </td>
                      <td class="spark">
                        <Sparkline
                          label={`${sum(ok)} delivered, ${sum(bad)} failed in the last 24 hours`}
                          series={[
                            { values: ok, class: 'ok' },
                            { values: bad, class: 'bad' },
                          ]}
                        />
                        <span class="small">
                          <span class="ok-text">{sum(ok)}</span> / <span class="bad-text">{sum(bad)}</span>
                        </span>
                      </td>
                    </tr>
                  )
                })}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </>
  )
}
