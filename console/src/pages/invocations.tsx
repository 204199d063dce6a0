// Invocation records (InvocationService): the Invocations tab of a
// destination, one invocation in full, and the recent events a test can
// run on.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { create } from '@bufbuild/protobuf'
import { timestampFromDate } from '@bufbuild/protobuf/wkt'
import { api, Code, isCode, splitName } from '../api'
import { InvocationFilterSchema, RerunState, type Invocation, type InvocationFilter, type Rerun } from '../gen/hogwire/v1/invocation_pb'
import { InvocationStatus } from '../gen/hogwire/v1/test_pb'
import { ErrorBanner, Link, Loading, LogLine, Pre, fmtDuration, fmtNumber, fmtTime, useAsync, useDebounced } from '../ui'
import type { TabProps } from './destination'

// The statuses a record can have, as InvocationService's filter takes them.
const recorded: [InvocationStatus, string, string][] = [
  [InvocationStatus.SUCCEEDED, 'Succeeded', 'ok'],
  [InvocationStatus.FAILED, 'Failed', 'bad'],
  [InvocationStatus.PARKED, 'Parked', 'warn'],
  [InvocationStatus.SKIPPED, 'Skipped', 'off'],
  [InvocationStatus.MASKED, 'Masked', 'off'],
]

// Error kinds by status (docs/invocations.md), offered as suggestions.
const kinds = [
  'http_4xx', 'http_5xx', 'http_429', 'fetch_timeout', 'fetch_connection', 'egress_refused', 'fetch_invalid', 'fetch_limit', 'fetch_failed',
  'hog_error', 'timeout', 'memory', 'steps', 'limit', 'inputs', 'filter', 'edited', 'disabled', 'disabled_permanently', 'disabled_temporarily',
  'paused', 'quarantined',
]

export function StatusBadge(props: { status: InvocationStatus }) {
  const s = recorded.find(([st]) => st === props.status)
  return <span class={'badge ' + (s?.[2] ?? 'unknown')}>{s?.[1] ?? 'Unknown'}</span>
}

/** The console path of a record under its own destination. */
export function invocationPath(r: Invocation): string {
  const [project, dest] = splitName(r.destination)
  return `/projects/${project}/destinations/${dest}/invocations/${r.id}`
}

/** A person's records on every destination of the project (a view of dest's tab). */
export function personPath(project: string, dest: string, distinctId: string): string {
  return `/projects/${project}/destinations/${dest}/invocations?all=1&distinct_id=${encodeURIComponent(distinctId)}`
}

type Range = '1h' | '24h' | '7d' | 'all' | 'custom'
const rangeMs: Record<string, number> = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 }

// The datetime-local value of a date, in local time.
function localInput(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`
}

export const invocationsPageSize = 50

/**
 * The Invocations tab: the destination's records, filtered and paged
 * (oldest first, as the API lists them), or one record in full when the
 * path names it.
 */
export function InvocationsTab({ d, sub }: TabProps & { sub?: string }) {
  const [project, dest] = splitName(d.name)
  const base = `/projects/${project}/destinations/${dest}/invocations`
  if (sub) return <InvocationDetail project={project} id={sub} back={base} />
  return <InvocationList d={d} />
}

function InvocationList({ d }: { d: TabProps['d'] }) {
  const [project] = splitName(d.name)
  // A link can preset the searches: ?event_uuid=…&distinct_id=…&all=1.
  const q = new URLSearchParams(location.search)
  const [status, setStatus] = useState<number>(0)
  const [kind, setKind] = useState('')
  const [range, setRange] = useState<Range>(q.get('event_uuid') || q.get('distinct_id') ? '7d' : '24h')
  const [from, setFrom] = useState(() => localInput(new Date(Date.now() - 3600e3)))
  const [to, setTo] = useState(() => localInput(new Date()))
  const [distinctId, setDistinctId] = useState(q.get('distinct_id') ?? '')
  const [eventUuid, setEventUuid] = useState(q.get('event_uuid') ?? '')
  const [all, setAll] = useState(q.get('all') === '1')
  const [tick, setTick] = useState(0)
  const search = useDebounced({ kind, distinctId, eventUuid, from, to }, 400)

  // The filter is fixed when a field changes or on Refresh, so that pages
  // of one listing share their "now".
  const filter = useMemo((): InvocationFilter => {
    const f = create(InvocationFilterSchema, {
      errorKind: search.kind.trim(),
      distinctId: search.distinctId.trim(),
      eventUuid: search.eventUuid.trim(),
      statuses: status ? [status] : [],
    })
    if (range === 'custom') {
      if (search.from) f.startTime = timestampFromDate(new Date(search.from))
      if (search.to) f.endTime = timestampFromDate(new Date(search.to))
    } else if (range !== 'all') {
      f.startTime = timestampFromDate(new Date(Date.now() - rangeMs[range]))
    }
    return f
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [status, range, search.kind, search.distinctId, search.eventUuid, search.from, search.to, tick])
  const parent = all ? `projects/${project}` : d.name

  // tokens[i] is the token of page i; Next pushes one, Previous pops.
  const [tokens, setTokens] = useState([''])
  useEffect(() => setTokens(['']), [filter, parent])
  const page = tokens.length - 1
  const list = useAsync(
    () => api.invocations.listInvocations({ parent, filter, pageSize: invocationsPageSize, pageToken: tokens[page] }),
    [parent, filter, tokens],
  )
  const rows = list.data?.invocations ?? []
  const next = list.data?.nextPageToken ?? ''
  const [rerunOpen, setRerunOpen] = useState(false)
  const rerunButton = useRef<HTMLButtonElement>(null)

  return (
    <>
      <form class="filters" aria-label="Search invocations" onSubmit={(e) => (e.preventDefault(), setTick((t) => t + 1))}>
        <div class="field">
          <label for="inv-status">Status</label>
          <select id="inv-status" value={status} onChange={(e) => setStatus(Number(e.currentTarget.value))}>
            <option value={0}>Any</option>
            {recorded.map(([st, label]) => (
              <option value={st}>{label}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="inv-kind">Error kind</label>
          <input id="inv-kind" list="inv-kinds" value={kind} placeholder="http_5xx, hog_error…" onInput={(e) => setKind(e.currentTarget.value)} />
          <datalist id="inv-kinds">
            {kinds.map((k) => (
              <option value={k} />
            ))}
          </datalist>
        </div>
        <div class="field">
          <label for="inv-range">Started</label>
          <select id="inv-range" value={range} onChange={(e) => setRange(e.currentTarget.value as Range)}>
            <option value="1h">In the last hour</option>
            <option value="24h">In the last 24 hours</option>
            <option value="7d">In the last 7 days</option>
            <option value="all">Any time</option>
            <option value="custom">Between…</option>
          </select>
        </div>
        {range === 'custom' && (
          <>
            <div class="field">
              <label for="inv-from">From</label>
              <input id="inv-from" type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
            </div>
            <div class="field">
              <label for="inv-to">To</label>
              <input id="inv-to" type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
            </div>
          </>
        )}
        <div class="field">
          <label for="inv-distinct">Person (distinct id)</label>
          <input id="inv-distinct" type="search" value={distinctId} onInput={(e) => setDistinctId(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="inv-event">Event uuid</label>
          <input id="inv-event" type="search" value={eventUuid} onInput={(e) => setEventUuid(e.currentTarget.value)} />
        </div>
        <div class="field check">
          <input type="checkbox" id="inv-all" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} />
          <label for="inv-all">Every destination of the project</label>
        </div>
        <div class="field submit">
          <button type="submit">Refresh</button>
        </div>
      </form>
      <div class="toolbar">
        <p class="muted small" role="status" data-testid="invocations-status">
          {list.loading
            ? 'Loading…'
            : list.data
              ? `${rows.length ? `${page * invocationsPageSize + 1}–${page * invocationsPageSize + rows.length}` : 'No'} invocations${
                  page > 0 || next ? ` (page ${page + 1})` : ''
                }, oldest first.`
              : ''}
        </p>
        <span class="spacer" />
        {/* Without records (no NATS) there is nothing to rerun. */}
        {!isCode(list.error, Code.Unimplemented) && (
          <button
            type="button"
            ref={rerunButton}
            aria-expanded={rerunOpen}
            aria-controls={rerunOpen ? 'rerun-panel' : undefined}
            onClick={() => setRerunOpen((o) => !o)}
          >
            Rerun…
          </button>
        )}
      </div>
      {rerunOpen && (
        <RerunPanel
          parent={parent}
          filter={filter}
          where={all ? 'every destination of the project' : splitName(d.name)[1]}
          onDone={list.reload}
          onClose={() => (setRerunOpen(false), rerunButton.current?.focus())}
        />
      )}
      <ErrorBanner
        error={
          isCode(list.error, Code.Unimplemented) ? new Error('This control plane keeps no invocation records (it has no NATS connection).') : list.error
        }
      />
      {list.data && rows.length === 0 && (
        <p class="muted">
          No invocations match. Events a destination's filters leave out are not recorded one by one: the Metrics tab counts them.
        </p>
      )}
      {rows.length > 0 && <InvocationTable rows={rows} project={project} showDestination={all} />}
      {(page > 0 || next) && (
        <nav class="pager" aria-label="Pages of invocations">
          <button type="button" disabled={page === 0 || list.loading} onClick={() => setTokens((t) => t.slice(0, -1))}>
            Previous page
          </button>
          <button type="button" disabled={!next || list.loading} onClick={() => setTokens((t) => [...t, next])}>
            Next page
          </button>
        </nav>
      )}
    </>
  )
}

// The rerun's selection: the listing's filter, with the status failed
// unless the search names one (RerunInvocations' own default, made visible).
function rerunFilter(f: InvocationFilter): InvocationFilter {
  return create(InvocationFilterSchema, { ...f, statuses: f.statuses.length ? f.statuses : [InvocationStatus.FAILED] })
}

const rerunStates: Record<number, string> = {
  [RerunState.RUNNING]: 'Running',
  [RerunState.SUCCEEDED]: 'Done',
  [RerunState.CANCELLED]: 'Cancelled',
}

/**
 * Reruns what the search selects: a dry run (validate_only) for the count
 * first, then the rerun itself, followed with GetRerun until it ends. The
 * rerun runs on in the background if the panel is closed.
 */
function RerunPanel(props: { parent: string; filter: InvocationFilter; where: string; onDone: () => void; onClose: () => void }) {
  const filter = useMemo(() => rerunFilter(props.filter), [props.filter])
  const heading = useRef<HTMLHeadingElement>(null)
  useEffect(() => heading.current?.focus({ preventScroll: true }), [])
  // The preview follows the search until a rerun is started.
  const [rerun, setRerun] = useState<Rerun | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const preview = useAsync(
    () => (rerun ? Promise.resolve(undefined) : api.invocations.rerunInvocations({ parent: props.parent, filter, validateOnly: true })),
    [props.parent, filter],
  )
  const count = preview.data?.rerun

  const start = async () => {
    setBusy(true)
    setError(null)
    try {
      const r = await api.invocations.rerunInvocations({ parent: props.parent, filter })
      setRerun(r.rerun ?? null)
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
    }
  }
  const cancel = async () => {
    if (!rerun) return
    setBusy(true)
    setError(null)
    try {
      const r = await api.invocations.cancelRerun({ name: rerun.name })
      if (r.rerun) setRerun(r.rerun)
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
    }
  }

  // Follow a running rerun; refresh the listing once it has ended, as its
  // records are new invocations.
  const running = !!rerun?.name && rerun.state === RerunState.RUNNING
  useEffect(() => {
    if (!rerun?.name) return
    if (!running) {
      props.onDone()
      return
    }
    const ctl = new AbortController()
    const t = setTimeout(async () => {
      try {
        const r = await api.invocations.getRerun({ name: rerun.name }, { signal: ctl.signal })
        setError(null)
        if (r.rerun) setRerun(r.rerun)
        else setRerun({ ...rerun }) // poll again
      } catch (e) {
        if (ctl.signal.aborted) return
        setError(e)
        setRerun({ ...rerun }) // a passing failure: keep following
      }
    }, 1000)
    return () => (clearTimeout(t), ctl.abort())
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [rerun])

  const status = filter.statuses.map((st) => recorded.find(([s]) => s === st)?.[1].toLowerCase() ?? 'unknown').join(', ')
  const done = rerun ? rerun.succeeded + rerun.failed + rerun.skipped + rerun.missing : 0
  return (
    <section
      id="rerun-panel"
      class="card rerun"
      aria-labelledby="rerun-heading"
      data-testid="rerun"
      onKeyDown={(e) => e.key === 'Escape' && (e.preventDefault(), props.onClose())}
    >
      <h3 id="rerun-heading" tabIndex={-1} ref={heading}>
        Rerun {status} invocations
      </h3>
      {!rerun ? (
        <>
          <p class="muted small">
            Runs the {status} invocations of {props.where} that this search selects again, on their stored events, with each destination's current code,
            inputs and filters; oldest first, at most 10,000. With no start time, the last 7 days are searched; at most 30 days can be.
          </p>
          <p role="status" data-testid="rerun-count">
            {preview.loading
              ? 'Counting…'
              : count
                ? `${fmtNumber(count.total)} ${count.total === 1 ? 'invocation' : 'invocations'} would run again${
                    count.truncated ? ` (more matched: capped at ${fmtNumber(count.maxInvocations || 10000)}, the oldest first)` : ''
                  }.`
                : ''}
          </p>
          <ErrorBanner error={preview.error ?? error} />
          <p class="row">
            <button type="button" class="primary" disabled={busy || preview.loading || !count || count.total === 0} onClick={start}>
              {count && count.total > 0 ? `Rerun ${fmtNumber(count.total)}` : 'Rerun'}
            </button>
            <button type="button" onClick={props.onClose}>
              Close
            </button>
          </p>
        </>
      ) : (
        <>
          <p role="status" data-testid="rerun-progress">
            {!rerun.name
              ? 'Nothing matched any more: nothing ran.'
              : `${rerunStates[rerun.state] ?? 'Unknown'}: ${fmtNumber(done)} of ${fmtNumber(rerun.total)} finished (${fmtNumber(rerun.succeeded)} succeeded, ${fmtNumber(
                  rerun.failed,
                )} failed, ${fmtNumber(rerun.skipped)} skipped, ${fmtNumber(rerun.missing)} no longer stored); ${fmtNumber(rerun.started)} started.`}
          </p>
          {rerun.name && <progress max={rerun.total || 1} value={done} aria-label="Rerun progress" />}
          {rerun.name && (
            <p class="muted small">
              <span class="mono">{rerun.name}</span>
              {rerun.truncated && ` — capped at ${fmtNumber(rerun.maxInvocations || 10000)}; more matched.`}
            </p>
          )}
          <ErrorBanner error={error} />
          <p class="row">
            {running && (
              <button type="button" class="bad-text" disabled={busy} onClick={cancel}>
                Cancel rerun
              </button>
            )}
            <button type="button" onClick={props.onClose}>
              Close
            </button>
          </p>
          {running && <p class="muted small">Closing this leaves the rerun running.</p>}
        </>
      )}
    </section>
  )
}

export function InvocationTable(props: { rows: Invocation[]; project: string; showDestination?: boolean; caption?: string }) {
  return (
    <div class="table-wrap">
      <table class="invocations all-cols" data-testid="invocations">
        <caption class="sr-only">{props.caption ?? 'Invocations'}</caption>
        <thead>
          <tr>
            <th scope="col">Started</th>
            {props.showDestination && <th scope="col">Destination</th>}
            <th scope="col">Status</th>
            <th scope="col">Error kind</th>
            <th scope="col">Attempts</th>
            <th scope="col">Event</th>
            <th scope="col">Distinct id</th>
            <th scope="col">Person id</th>
            <th scope="col">Took</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r) => (
            <tr key={r.id}>
              <td>
                <Link to={invocationPath(r)}>{fmtTime(r.startTime)}</Link>
              </td>
              {props.showDestination && <td>{splitName(r.destination)[1]}</td>}
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td>{r.errorKind ? <code>{r.errorKind}</code> : <span class="muted">—</span>}</td>
              <td>
                <Attempts r={r} />
              </td>
              <td>
                {r.eventName}
                <div class="muted small mono">{r.eventUuid}</div>
              </td>
              <td>{r.distinctId ? <Link to={personPath(props.project, splitName(r.destination)[1], r.distinctId)}>{r.distinctId}</Link> : <span class="muted">—</span>}</td>
              <td class="mono small">{r.personId || <span class="muted">—</span>}</td>
              <td>{fmtDuration(r.duration)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

// Attempts: the requests it sent (each of fetch's own retries counts), and
// which durable run this was.
function Attempts({ r }: { r: Invocation }) {
  const n = r.fetches.length
  return (
    <>
      {n === 1 ? '1 request' : `${n} requests`}
      {r.retries > 0 && <div class="muted small">run {r.retries + 1}</div>}
    </>
  )
}

/** One invocation in full: its fetch attempts and its log entries. */
export function InvocationDetail(props: { project: string; id: string; back: string }) {
  const name = `projects/${props.project}/invocations/${props.id}`
  const got = useAsync(() => api.invocations.getInvocation({ name }), [name])
  const heading = useRef<HTMLHeadingElement>(null)
  useEffect(() => heading.current?.focus({ preventScroll: true }), [])
  const r = got.data?.invocation
  const logs = got.data?.logs ?? []
  const [, dest] = r ? splitName(r.destination) : []
  return (
    <article class="invocation" aria-labelledby="inv-heading" data-testid="invocation">
      <p class="crumbs">
        <Link to={props.back}>← All invocations</Link>
      </p>
      <h2 id="inv-heading" tabIndex={-1} ref={heading}>
        Invocation <span class="mono">{props.id}</span> {r && <StatusBadge status={r.status} />}
      </h2>
      <ErrorBanner error={got.error} />
      {got.loading && !r && <Loading what="the invocation" />}
      {r && (
        <>
          <dl class="facts">
            <dt>Destination</dt>
            <dd>
              <Link to={`/projects/${props.project}/destinations/${dest}`}>{dest}</Link>
            </dd>
            <dt>Event</dt>
            <dd>
              {r.eventName} <span class="mono small">{r.eventUuid}</span>
            </dd>
            <dt>Distinct id</dt>
            <dd>{r.distinctId ? <Link to={personPath(props.project, dest, r.distinctId)}>{r.distinctId}</Link> : '—'}</dd>
            <dt>Person id</dt>
            <dd class="mono">{r.personId || '—'}</dd>
            <dt>Started</dt>
            <dd>{fmtTime(r.startTime)}</dd>
            <dt>Took</dt>
            <dd>{fmtDuration(r.duration)} (Hog and requests, not the wait for its turn)</dd>
            {r.errorKind && (
              <>
                <dt>Error kind</dt>
                <dd>
                  <code>{r.errorKind}</code>
                </dd>
              </>
            )}
            <dt>Run</dt>
            <dd>{r.retries > 0 ? `retry ${r.retries} (run ${r.retries + 1})` : 'first run'}</dd>
            {r.retryTime && (
              <>
                <dt>Runs again</dt>
                <dd>{fmtTime(r.retryTime)}</dd>
              </>
            )}
            <dt>Node</dt>
            <dd class="mono">{r.nodeId || '—'}</dd>
          </dl>
          {r.error && (
            <>
              <h3>Error</h3>
              <Pre class="error-text">{r.error}</Pre>
            </>
          )}
          <p class="row">
            <Link to={`/projects/${props.project}/destinations/${dest}/test?event=${encodeURIComponent(r.eventUuid)}`} class="button">
              Test on this event
            </Link>
            <Link to={`/projects/${props.project}/destinations/${dest}/invocations?all=1&event_uuid=${encodeURIComponent(r.eventUuid)}`} class="button">
              Every destination's runs of this event
            </Link>
            {r.distinctId && (
              <Link to={personPath(props.project, dest, r.distinctId)} class="button">
                This person's runs everywhere
              </Link>
            )}
          </p>
          <h3>Requests</h3>
          {r.fetches.length === 0 ? (
            <p class="muted">No requests.</p>
          ) : (
            <div class="table-wrap">
              <table class="compact all-cols" data-testid="fetch-attempts">
                <caption class="sr-only">Fetch attempts</caption>
                <thead>
                  <tr>
                    <th scope="col">Attempt</th>
                    <th scope="col">Request</th>
                    <th scope="col">Response</th>
                    <th scope="col">Took</th>
                  </tr>
                </thead>
                <tbody>
                  {r.fetches.map((f) => (
                    <tr>
                      <td>{f.attempt}</td>
                      <td class="break">
                        <code>
                          {f.method} {f.url}
                        </code>
                      </td>
                      <td>{f.status ? <span class={f.status < 400 ? 'ok-text' : 'bad-text'}>{f.status}</span> : <span class="bad-text">{f.error || 'no response'}</span>}</td>
                      <td>{fmtDuration(f.duration)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <p class="muted small">Records keep each request's method, URL (without its query), status and time; headers and bodies are not kept.</p>
          <h3>Logs</h3>
          {logs.length === 0 ? (
            <p class="muted">Nothing logged.</p>
          ) : (
            <ul class="logs" aria-label="Log entries of the invocation">
              {logs.map((l) => (
                <LogLine entry={l} />
              ))}
            </ul>
          )}
        </>
      )}
    </article>
  )
}

/**
 * The most recent events of parent (a destination or a project) that have
 * records, newest first: the last minute's, else the last 10 minutes', and
 * so on up to 7 days. The API lists oldest first, so each window is read
 * to its end (a few pages at most).
 */
export async function recentEvents(parent: string, signal: AbortSignal, max = 25): Promise<Invocation[]> {
  const now = Date.now()
  for (const w of [60e3, 600e3, 3600e3, 86400e3, 7 * 86400e3]) {
    let got: Invocation[] = []
    let token = ''
    for (let i = 0; i < 4; i++) {
      const r = await api.invocations.listInvocations(
        { parent, filter: { startTime: timestampFromDate(new Date(now - w)) }, pageSize: 1000, pageToken: token },
        { signal },
      )
      got = got.concat(r.invocations).slice(-2000)
      token = r.nextPageToken
      if (!token) break
    }
    if (got.length === 0) continue
    const seen = new Set<string>()
    const out: Invocation[] = []
    for (const r of got.reverse()) {
      if (!r.eventUuid || seen.has(r.eventUuid)) continue
      seen.add(r.eventUuid)
      out.push(r)
      if (out.length === max) break
    }
    return out
  }
  return []
}
