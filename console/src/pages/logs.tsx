import { useEffect, useState } from 'preact/hooks'
import { timestampFromDate } from '@bufbuild/protobuf/wkt'
import { api, errorText } from '../api'
import { LogLevel, type LogEntry } from '../gen/hogwire/v1/log_pb'
import { ErrorBanner, LogLine, useDebounced } from '../ui'
import type { TabProps } from './destination'

const maxShown = 500

export function LogsTab({ d }: TabProps) {
  const [search, setSearch] = useState('')
  const [level, setLevel] = useState(LogLevel.DEBUG)
  const [live, setLive] = useState(true)
  const [entries, setEntries] = useState<LogEntry[]>([])
  const [next, setNext] = useState('')
  const [error, setError] = useState<unknown>(null)
  const [state, setState] = useState('')
  const q = useDebounced(search, 300)
  const filter = { search: q, minLevel: level }

  useEffect(() => {
    const ctl = new AbortController()
    setError(null)
    setEntries([])
    setNext('')
    if (live) {
      // The tail sends the last hour first, then entries as they come.
      setState('Connecting…')
      ;(async () => {
        try {
          const stream = api.logs.tailLogEntries(
            { parent: d.name, filter: { ...filter, startTime: timestampFromDate(new Date(Date.now() - 3600e3)) } },
            { signal: ctl.signal },
          )
          setState('Live: new entries appear at the top.')
          for await (const r of stream) setEntries((es) => [...r.entries.slice().reverse(), ...es].slice(0, maxShown))
          setState('The live tail ended.')
        } catch (e) {
          if (!ctl.signal.aborted) {
            setError(e)
            setState('')
          }
        }
      })()
    } else {
      setState('Loading…')
      api.logs.listLogEntries({ parent: d.name, filter, pageSize: 100 }, { signal: ctl.signal }).then(
        (r) => {
          setEntries(r.entries)
          setNext(r.nextPageToken)
          setState(`${r.entries.length}${r.nextPageToken ? '+' : ''} entries, newest first.`)
        },
        (e) => !ctl.signal.aborted && (setError(e), setState('')),
      )
    }
    return () => ctl.abort()
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [d.name, q, level, live])

  const more = async () => {
    try {
      const r = await api.logs.listLogEntries({ parent: d.name, filter, pageSize: 100, pageToken: next })
      setEntries((es) => [...es, ...r.entries])
      setNext(r.nextPageToken)
    } catch (e) {
      setError(new Error(errorText(e)))
    }
  }

  return (
    <>
      <div class="toolbar">
        <div class="field inline">
          <label for="logs-search">Search</label>
          <input id="logs-search" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </div>
        <div class="field inline">
          <label for="logs-level">At least</label>
          <select id="logs-level" value={level} onChange={(e) => setLevel(Number(e.currentTarget.value))}>
            <option value={LogLevel.DEBUG}>debug</option>
            <option value={LogLevel.INFO}>info</option>
            <option value={LogLevel.WARN}>warn</option>
            <option value={LogLevel.ERROR}>error</option>
          </select>
        </div>
        <label class="check-inline">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Live tail
        </label>
      </div>
      <p class="muted small" role="status">
        {state}
      </p>
      <ErrorBanner error={error} />
      {entries.length === 0 && !error ? (
        <p class="muted">No log entries{q ? ` matching “${q}”` : ''}.</p>
      ) : (
        <ul class="logs" aria-label="Log entries" data-testid="log-entries">
          {entries.map((l) => (
            <LogLine key={l.id || l.time?.seconds + l.message} entry={l}>
              {l.invocationId && <span class="small muted"> · invocation {l.invocationId}</span>}
            </LogLine>
          ))}
        </ul>
      )}
      {!live && next && (
        <button type="button" class="quiet" onClick={more}>
          Load older entries
        </button>
      )}
    </>
  )
}
