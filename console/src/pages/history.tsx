import { useEffect, useRef, useState } from 'preact/hooks'
import { create, toJson } from '@bufbuild/protobuf'
import { api, Code, isCode, valueToJson } from '../api'
import { DestinationSchema, FiltersSchema, type DestinationRevision } from '../gen/hogwire/v1/destination_pb'
import { ErrorBanner, Loading, Pre, fmtTime, useAsync } from '../ui'
import type { TabProps } from './destination'

export function HistoryTab({ d, onSaved }: TabProps) {
  const list = useAsync(() => api.destinations.listDestinationRevisions({ parent: d.name, pageSize: 100 }), [d.name, d.revision])
  const revs = list.data?.revisions ?? []
  const [sel, setSel] = useState(0)
  const [error, setError] = useState<unknown>(null)
  const [restored, setRestored] = useState(false)
  const r = revs[sel]
  const before = revs[sel + 1]

  const restore = async (rev: DestinationRevision) => {
    const old = rev.destination!
    setError(null)
    try {
      // Secrets are not in revisions: inputs left out keep their stored secret.
      const inputs = Object.fromEntries(Object.entries(old.inputs).filter(([, v]) => !v.secretSet))
      const res = await api.destinations.updateDestination({
        destination: create(DestinationSchema, { ...old, name: d.name, etag: d.etag, inputs }),
        updateMask: { paths: ['display_name', 'description', 'hog', 'inputs_schema', 'inputs', 'filters', 'masking', 'limits'] },
      })
      onSaved(res.destination!)
      setSel(0)
      setRestored(true)
    } catch (e) {
      setError(isCode(e, Code.Aborted) ? new Error('The destination changed meanwhile: reload and try again.') : e)
    }
  }

  return (
    <>
      <ErrorBanner error={list.error ?? error} />
      {restored && (
        <p class="banner ok" role="status">
          Restored: the destination is as it was at that revision (secrets unchanged).
        </p>
      )}
      {list.loading && !list.data && <Loading what="revisions" />}
      {list.data && revs.length === 0 && <p class="muted">No revisions are recorded for this destination yet: every change from now on will be.</p>}
      {revs.length > 0 && (
        <div class="history">
          <ol class="revisions" aria-label="Revisions, newest first">
            {revs.map((rv, i) => (
              <li key={rv.name}>
                <button type="button" class="revision" aria-pressed={i === sel} onClick={() => setSel(i)}>
                  <span class="time">{fmtTime(rv.createTime)}</span>
                  <span class="small">{rv.changedFields.length ? 'Changed ' + rv.changedFields.join(', ') : 'Created'}</span>
                  {i === 0 && <span class="badge ok">current</span>}
                </button>
              </li>
            ))}
          </ol>
          {r && (
            <section class="revision-detail" aria-label="Revision">
              <h2>
                Revision {String(r.revision)} <span class="muted small">{fmtTime(r.createTime)}</span>
              </h2>
              <p>{r.changedFields.length ? 'Changed: ' + r.changedFields.join(', ') : 'The destination was created.'}</p>
              {sel > 0 && (
                <button type="button" onClick={() => restore(r)}>
                  Restore this revision
                </button>
              )}
              <h3>Code{before && before.destination?.hog !== r.destination?.hog ? ', against the revision before' : ''}</h3>
              <CodeDiff key={r.name} now={r.destination?.hog ?? ''} before={before?.destination?.hog} />
              <h3>Inputs and filters</h3>
              <Pre>
                {JSON.stringify(
                  {
                    enabled: r.destination?.enabled,
                    inputs: Object.fromEntries(
                      Object.entries(r.destination?.inputs ?? {}).map(([k, v]) => [k, v.secretSet ? '(secret)' : v.value ? valueToJson(v.value) : null]),
                    ),
                    filters: r.destination?.filters ? toJson(FiltersSchema, r.destination.filters) : {},
                  },
                  null,
                  2,
                )}
              </Pre>
            </section>
          )}
        </div>
      )}
    </>
  )
}

/** The code of a revision, with what changed from the one before marked. */
function CodeDiff(props: { now: string; before?: string }) {
  const host = useRef<HTMLDivElement>(null)
  useEffect(() => {
    let view: { destroy(): void } | undefined
    let live = true
    import('../editor').then(({ EditorView, EditorState, hogEditor, unifiedMergeView }) => {
      if (!live || !host.current) return
      const ext = [hogEditor({ label: 'Code of this revision', readOnly: true })]
      if (props.before !== undefined && props.before !== props.now) ext.push(unifiedMergeView({ original: props.before, mergeControls: false }))
      view = new EditorView({ parent: host.current, state: EditorState.create({ doc: props.now, extensions: ext }) })
    })
    return () => {
      live = false
      view?.destroy()
    }
  }, [props.now, props.before])
  return <div class="editor readonly" ref={host} />
}
