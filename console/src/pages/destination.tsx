import { useEffect, useState } from 'preact/hooks'
import { lazy, Suspense } from 'preact/compat'
import { api } from '../api'
import type { Destination } from '../gen/hogwire/v1/destination_pb'
import { ErrorBanner, HealthBadge, Link, Loading, PageHeading, Tabs, fmtTime, useAsync } from '../ui'
import { ConfigurationTab } from './config'
import { TestTab } from './test'
import { LogsTab } from './logs'
import { HistoryTab } from './history'
import { InvocationsTab } from './invocations'

// The editor and the charts are big; they load with their tabs.
const CodeTab = lazy(() => import('./code').then((m) => m.CodeTab))
const MetricsTab = lazy(() => import('./metrics').then((m) => m.MetricsTab))

const tabs = [
  { id: 'configuration', label: 'Configuration' },
  { id: 'code', label: 'Code' },
  { id: 'test', label: 'Test' },
  { id: 'metrics', label: 'Metrics' },
  { id: 'logs', label: 'Logs' },
  { id: 'invocations', label: 'Invocations' },
  { id: 'history', label: 'History' },
]

export interface TabProps {
  d: Destination
  /** Called with the destination a write returned. */
  onSaved: (d: Destination) => void
}

export function DestinationPage(props: { project: string; id: string; tab: string; sub?: string }) {
  const name = `projects/${props.project}/destinations/${props.id}`
  const got = useAsync(() => api.destinations.getDestination({ name }), [name])
  const [d, setD] = useState<Destination | undefined>()
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  useEffect(() => setD(got.data?.destination), [got.data])
  const base = `/projects/${props.project}/destinations/${props.id}`
  const tab = tabs.some((t) => t.id === props.tab) ? props.tab : 'configuration'

  const toggle = async () => {
    if (!d) return
    setBusy(true)
    setError(null)
    try {
      const r = d.enabled ? await api.destinations.disableDestination({ name, etag: d.etag }) : await api.destinations.enableDestination({ name, etag: d.etag })
      setD(r.destination)
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
    }
  }

  return (
    <>
      <p class="crumbs">
        <Link to={`/projects/${props.project}`}>← Destinations</Link>
      </p>
      <div class="title-row">
        <PageHeading>{d?.displayName ?? props.id}</PageHeading>
        {d && <HealthBadge health={d.health} enabled={d.enabled} />}
        <span class="spacer" />
        {d && (
          <button type="button" class={d.enabled ? '' : 'primary'} onClick={toggle} disabled={busy}>
            {d.enabled ? 'Disable' : 'Enable'}
          </button>
        )}
      </div>
      {d && (
        <p class="muted small">
          {d.template ? `From the ${d.template.replace('templates/', '')} template · ` : ''}
          updated {fmtTime(d.updateTime)}
          {d.health?.reason ? ` · ${d.health.reason}` : ''}
        </p>
      )}
      <ErrorBanner error={got.error ?? error} />
      {got.loading && !d && <Loading what="the destination" />}
      {d && (
        <>
          <Tabs tabs={tabs} current={tab} label="Destination" path={(id) => `${base}/${id}`} />
          <section id="tabpanel" role="tabpanel" aria-labelledby={'tab-' + tab} class="tabpanel">
            <Suspense fallback={<Loading />}>
              {tab === 'configuration' && <ConfigurationTab d={d} onSaved={setD} />}
              {tab === 'code' && <CodeTab d={d} onSaved={setD} />}
              {tab === 'test' && <TestTab d={d} onSaved={setD} />}
              {tab === 'metrics' && <MetricsTab d={d} onSaved={setD} />}
              {tab === 'logs' && <LogsTab d={d} onSaved={setD} />}
              {tab === 'invocations' && <InvocationsTab d={d} onSaved={setD} sub={props.sub} />}
              {tab === 'history' && <HistoryTab d={d} onSaved={setD} />}
            </Suspense>
          </section>
        </>
      )}
    </>
  )
}
