import { useEffect, useState } from 'preact/hooks'
import { fromJson, toJson } from '@bufbuild/protobuf'
import { ValueSchema } from '@bufbuild/protobuf/wkt'
import { api, fieldErrors } from '../api'
import { EventSchema } from '../gen/hogwire/v1/event_pb'
import { FetchMode, InvocationStatus, type TestResponse } from '../gen/hogwire/v1/test_pb'
import { ErrorBanner, Field, LogLine, Pre, fmtDuration, fmtTime } from '../ui'
import { recentEvents } from './invocations'
import type { Invocation } from '../gen/hogwire/v1/invocation_pb'
import type { TabProps } from './destination'

const statusText: Record<number, [string, string]> = {
  [InvocationStatus.SUCCEEDED]: ['Succeeded', 'ok'],
  [InvocationStatus.FAILED]: ['Failed', 'bad'],
  [InvocationStatus.FILTERED]: ['Filtered out: the filters do not match this event', 'warn'],
  [InvocationStatus.MASKED]: ['Masked', 'warn'],
  [InvocationStatus.DISABLED]: ['Disabled', 'off'],
}

export function TestTab({ d }: TabProps) {
  // "Test on this event" links here with ?event=UUID.
  const linked = new URLSearchParams(location.search).get('event') ?? ''
  const [source, setSource] = useState<'sample' | 'recent' | 'custom'>(linked ? 'recent' : 'sample')
  const [recentUuid, setRecentUuid] = useState(linked)
  const [projectWide, setProjectWide] = useState(false)
  const [recent, setRecent] = useState<Invocation[] | null>(null)
  useEffect(() => {
    if (source !== 'recent') return
    const ctl = new AbortController()
    setRecent(null)
    const parent = projectWide ? d.name.split('/destinations/')[0] : d.name
    recentEvents(parent, ctl.signal).then(
      (rs) => {
        setRecent(rs)
        setRecentUuid((u) => u || rs[0]?.eventUuid || '')
      },
      (e) => !ctl.signal.aborted && setError(e),
    )
    return () => ctl.abort()
  }, [source, projectWide, d.name])
  const [eventText, setEventText] = useState('')
  const [mode, setMode] = useState(FetchMode.MOCK)
  const [skipFilters, setSkipFilters] = useState(true)
  const [result, setResult] = useState<TestResponse | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)

  const run = async (e: Event) => {
    e.preventDefault()
    setError(null)
    let event
    if (source === 'custom') {
      try {
        event = fromJson(EventSchema, JSON.parse(eventText))
      } catch (err) {
        setError(new Error('The event is not valid: ' + (err as Error).message))
        return
      }
    }
    setBusy(true)
    try {
      if (source === 'recent' && !recentUuid) throw new Error('Choose a recent event.')
      const eventUuid = source === 'recent' ? recentUuid : ''
      const r = await api.tests.test({ target: { case: 'destination', value: d.name }, event, eventUuid, fetchMode: mode, skipFilters })
      setResult(r)
      if (source !== 'custom' && r.event) setEventText(JSON.stringify(toJson(EventSchema, r.event, { useProtoFieldName: true }), null, 2))
    } catch (err) {
      const fe = Object.entries(fieldErrors(err))
      setError(fe.length ? new Error(fe.map(([k, v]) => `${k}: ${v}`).join('; ')) : err)
    } finally {
      setBusy(false)
    }
  }

  const [st, cls] = result ? statusText[result.status] ?? ['Unknown', ''] : ['', '']
  return (
    <>
      <form onSubmit={run} class="card" aria-label="Test run">
        <p class="muted">Runs the saved destination once, with the same code the data plane runs. A test changes no metrics, logs or health.</p>
        <fieldset class="radios">
          <legend>Event</legend>
          <label>
            <input type="radio" name="source" checked={source === 'sample'} onChange={() => setSource('sample')} /> A sample page view
          </label>
          <label>
            <input type="radio" name="source" checked={source === 'recent'} onChange={() => setSource('recent')} /> A recent event
          </label>
          <label>
            <input
              type="radio"
              name="source"
              checked={source === 'custom'}
              onChange={() => {
                setSource('custom')
                if (!eventText && result?.event) setEventText(JSON.stringify(toJson(EventSchema, result.event, { useProtoFieldName: true }), null, 2))
              }}
            />{' '}
            An event I write
          </label>
        </fieldset>
        {source === 'recent' && (
          <>
            <Field id="test-recent" label="Recent event" hint="Events the data plane kept with their invocation records, newest first.">
              {(a) => (
                <select {...a} value={recentUuid} onChange={(e) => setRecentUuid(e.currentTarget.value)} disabled={!recent}>
                  {recentUuid && !recent?.some((r) => r.eventUuid === recentUuid) && <option value={recentUuid}>{recentUuid}</option>}
                  {recent?.map((r) => (
                    <option value={r.eventUuid}>
                      {r.eventName} · {r.distinctId} · {fmtTime(r.startTime)} · {r.eventUuid}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            {recent === null ? (
              <p class="muted small" role="status">
                Loading recent events…
              </p>
            ) : (
              recent.length === 0 && <p class="muted small" role="status">No recorded events in the last 7 days.</p>
            )}
            <div class="field check">
              <input type="checkbox" id="test-project-wide" checked={projectWide} onChange={(e) => setProjectWide(e.currentTarget.checked)} />
              <label for="test-project-wide">Events of any destination of the project</label>
            </div>
          </>
        )}
        {source === 'custom' && (
          <Field id="test-event" label="Event (JSON)" hint='For example {"event": "signed_up", "distinct_id": "ada", "properties": {"plan": "pro"}}. Run once with the sample to start from it.'>
            {(a) => <textarea {...a} class="code" rows={10} spellcheck={false} value={eventText} onInput={(e) => setEventText(e.currentTarget.value)} />}
          </Field>
        )}
        <fieldset class="radios">
          <legend>Requests</legend>
          <label>
            <input type="radio" name="mode" checked={mode === FetchMode.MOCK} onChange={() => setMode(FetchMode.MOCK)} /> Mocked: record them, answer 200
          </label>
          <label>
            <input type="radio" name="mode" checked={mode === FetchMode.REAL} onChange={() => setMode(FetchMode.REAL)} /> Real: send them
          </label>
        </fieldset>
        <div class="field check">
          <input type="checkbox" id="test-skip" checked={skipFilters} onChange={(e) => setSkipFilters(e.currentTarget.checked)} />
          <label for="test-skip">Run even if the filters do not match</label>
        </div>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Running…' : 'Run test'}
        </button>
      </form>
      <ErrorBanner error={error} />
      {result && (
        <section aria-labelledby="test-result" class="result" data-testid="test-result">
          <h2 id="test-result">
            Result: <span class={'badge ' + cls}>{st}</span>
          </h2>
          <p class="muted small">
            Took {fmtDuration(result.duration)} on event <code>{result.event?.event}</code> ({result.event?.uuid})
          </p>
          {result.error && <Pre class="error-text">{result.error}</Pre>}
          {result.result && (
            <>
              <h3>Returned</h3>
              <Pre>{JSON.stringify(toJson(ValueSchema, result.result), null, 2)}</Pre>
            </>
          )}
          <h3>Logs</h3>
          {result.logs.length === 0 ? (
            <p class="muted">Nothing logged.</p>
          ) : (
            <ul class="logs">
              {result.logs.map((l) => (
                <LogLine entry={l} />
              ))}
            </ul>
          )}
          <h3>Requests</h3>
          {result.requests.length === 0 ? (
            <p class="muted">No requests.</p>
          ) : (
            result.requests.map((x, i) => (
              <details class="request" key={i}>
                <summary>
                  <code>
                    {x.method} {x.url}
                  </code>{' '}
                  → {x.status ? <span class={x.status < 400 ? 'ok-text' : 'bad-text'}>{x.status}</span> : <span class="bad-text">{x.error || 'no response'}</span>}
                  {x.attempt > 1 ? ` (attempt ${x.attempt})` : ''}
                </summary>
                <h4>Request headers</h4>
                <Pre>{Object.entries(x.headers).map(([k, v]) => `${k}: ${v}`).join('\n') || '—'}</Pre>
                <h4>Request body</h4>
                <Pre>{x.body || '—'}</Pre>
                <h4>Response headers</h4>
                <Pre>{Object.entries(x.responseHeaders).map(([k, v]) => `${k}: ${v}`).join('\n') || '—'}</Pre>
                <h4>Response body</h4>
                <Pre>{x.responseBody || '—'}</Pre>
              </details>
            ))
          )}
        </section>
      )}
    </>
  )
}
