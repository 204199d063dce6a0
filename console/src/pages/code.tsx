import { useEffect, useRef, useState } from 'preact/hooks'
import { create } from '@bufbuild/protobuf'
import { api, Code, fieldErrors, errorText, isCode } from '../api'
import { DestinationSchema } from '../gen/hogwire/v1/destination_pb'
import { Compartment, EditorState, EditorView, compileDiagnostic, hogEditor, unifiedMergeView, type Diagnostic } from '../editor'
import { ErrorBanner } from '../ui'
import type { TabProps } from './destination'

export function CodeTab({ d, onSaved }: TabProps) {
  const host = useRef<HTMLDivElement>(null)
  const view = useRef<EditorView | null>(null)
  const diff = useRef(new Compartment())
  const latest = useRef(d)
  latest.current = d
  const [status, setStatus] = useState<{ ok: boolean; text: string }>({ ok: true, text: 'Checking…' })
  const [template, setTemplate] = useState<string | null>(null)
  const [showDiff, setShowDiff] = useState(false)
  const [dirty, setDirty] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [saved, setSaved] = useState(false)

  useEffect(() => {
    if (!d.template) return
    api.templates.getTemplate({ name: d.template }).then((r) => setTemplate(r.template?.hog ?? null), () => setTemplate(null))
  }, [d.template])

  useEffect(() => {
    // Compile as you type: the server validates the edited code without
    // saving it (UpdateDestination with validate_only).
    const check = async (src: string): Promise<Diagnostic[]> => {
      try {
        await api.destinations.updateDestination({
          destination: create(DestinationSchema, { name: latest.current.name, hog: src }),
          updateMask: { paths: ['hog'] },
          validateOnly: true,
        })
        setStatus({ ok: true, text: 'Compiles.' })
        return []
      } catch (err) {
        const msg = fieldErrors(err)['destination.hog']
        if (!msg) {
          setStatus({ ok: false, text: 'Could not check the code: ' + errorText(err) })
          return []
        }
        const diag = compileDiagnostic(view.current!.state.doc, msg)
        const line = view.current!.state.doc.lineAt(diag.from).number
        setStatus({ ok: false, text: `Line ${line}: ${diag.message}` })
        return [diag]
      }
    }
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: d.hog,
        extensions: [hogEditor({ label: 'Hog code', check, onChange: (src) => (setDirty(src !== latest.current.hog), setSaved(false)) }), diff.current.of([])],
      }),
    })
    view.current = v
    return () => v.destroy()
    // The editor is made once; saves update d without resetting it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [])

  useEffect(() => {
    view.current?.dispatch({ effects: diff.current.reconfigure(showDiff && template !== null ? unifiedMergeView({ original: template, mergeControls: false, gutter: true }) : []) })
  }, [showDiff, template])

  const save = async () => {
    setError(null)
    try {
      const r = await api.destinations.updateDestination({
        destination: create(DestinationSchema, { name: d.name, etag: d.etag, hog: view.current!.state.doc.toString() }),
        updateMask: { paths: ['hog'] },
      })
      onSaved(r.destination!)
      setDirty(false)
      setSaved(true)
    } catch (err) {
      setError(isCode(err, Code.Aborted) ? new Error('Someone else changed this destination since you opened it: reload the page to see their change.') : err)
    }
  }
  const resetToTemplate = () => {
    if (template === null || !view.current) return
    view.current.dispatch({ changes: { from: 0, to: view.current.state.doc.length, insert: template } })
  }

  return (
    <div class="code-tab">
      <div class="toolbar">
        <p role="status" class={'compile ' + (status.ok ? 'ok-text' : 'bad-text')} data-testid="compile-status">
          {status.text}
        </p>
        <span class="spacer" />
        {template !== null && (
          <>
            <label class="check-inline">
              <input type="checkbox" checked={showDiff} onChange={(e) => setShowDiff(e.currentTarget.checked)} /> Show changes from the template
            </label>
            <button type="button" class="quiet" onClick={resetToTemplate}>
              Reset to template
            </button>
          </>
        )}
        <button type="button" class="primary" onClick={save} disabled={!dirty}>
          Save code
        </button>
      </div>
      <ErrorBanner error={error} />
      {saved && (
        <p class="banner ok" role="status">
          Saved.
        </p>
      )}
      <div class="editor" ref={host} />
      <p class="hint">Tab indents. Press Escape, then Tab, to move on from the editor. Ctrl-F searches.</p>
    </div>
  )
}
