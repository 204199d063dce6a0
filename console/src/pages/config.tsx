import { useEffect, useState } from 'preact/hooks'
import { clone, create, fromJson, toJson, type JsonValue } from '@bufbuild/protobuf'
import { api, Code, errorText, fieldErrors, isCode, jsonToValue, valueToJson } from '../api'
import {
  DestinationSchema,
  FiltersSchema,
  PropertyOperator,
  PropertyScope,
  type Filters,
  type PropertyFilter,
} from '../gen/hogwire/v1/destination_pb'
import { EventSchema } from '../gen/hogwire/v1/event_pb'
import { FetchMode, InvocationStatus } from '../gen/hogwire/v1/test_pb'
import { InputsForm, formToInputs, initialValues, type FormValues } from '../inputs'
import { ErrorBanner, Field, errorsUnder, useDebounced } from '../ui'
import type { TabProps } from './destination'

const operators: [PropertyOperator, string][] = [
  [PropertyOperator.EXACT, 'equals'],
  [PropertyOperator.IS_NOT, 'does not equal'],
  [PropertyOperator.ICONTAINS, 'contains'],
  [PropertyOperator.NOT_ICONTAINS, 'does not contain'],
  [PropertyOperator.REGEX, 'matches regex'],
  [PropertyOperator.NOT_REGEX, 'does not match regex'],
  [PropertyOperator.GT, '>'],
  [PropertyOperator.GTE, '≥'],
  [PropertyOperator.LT, '<'],
  [PropertyOperator.LTE, '≤'],
  [PropertyOperator.IS_SET, 'is set'],
  [PropertyOperator.IS_NOT_SET, 'is not set'],
  [PropertyOperator.IS_DATE_BEFORE, 'is before (date)'],
  [PropertyOperator.IS_DATE_AFTER, 'is after (date)'],
]
const numeric = new Set([PropertyOperator.GT, PropertyOperator.GTE, PropertyOperator.LT, PropertyOperator.LTE])
const noValue = new Set([PropertyOperator.IS_SET, PropertyOperator.IS_NOT_SET])

/** A property filter row as typed. */
interface PropRow {
  key: string
  scope: PropertyScope
  operator: PropertyOperator
  value: string
}

function toRow(p: PropertyFilter): PropRow {
  const v = valueToJson(p.value)
  return { key: p.key, scope: p.scope, operator: p.operator || PropertyOperator.EXACT, value: v === undefined || v === null ? '' : Array.isArray(v) ? v.join(', ') : String(v) }
}

function fromRow(r: PropRow) {
  let value: JsonValue | undefined
  if (!noValue.has(r.operator)) value = numeric.has(r.operator) && r.value.trim() !== '' && Number.isFinite(Number(r.value)) ? Number(r.value) : r.value
  return { key: r.key.trim(), scope: r.scope, operator: r.operator, value: value === undefined ? undefined : jsonToValue(value) }
}

interface FilterDraft {
  events: string[]
  props: PropRow[]
  expression: string
}

function draftFilters(f?: Filters): FilterDraft {
  return { events: (f?.events ?? []).map((e) => e.event), props: (f?.properties ?? []).map(toRow), expression: f?.expression ?? '' }
}

function buildFilters(f: FilterDraft, original?: Filters): Filters {
  // Per-event property filters have no editor here; they are kept as stored.
  const keep = new Map((original?.events ?? []).map((e) => [e.event, e.properties]))
  return create(FiltersSchema, {
    events: f.events.filter((e) => e.trim() !== '').map((e) => ({ event: e.trim(), properties: keep.get(e.trim()) ?? [] })),
    properties: f.props.filter((p) => p.key.trim() !== '').map(fromRow),
    expression: f.expression.trim(),
  })
}

export function ConfigurationTab({ d, onSaved }: TabProps) {
  const schema = d.inputsSchema
  const [name, setName] = useState(d.displayName)
  const [description, setDescription] = useState(d.description)
  const [values, setValues] = useState<FormValues>(() => initialValues(schema, d.inputs, false))
  const [filters, setFilters] = useState<FilterDraft>(() => draftFilters(d.filters))
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [error, setError] = useState<unknown>(null)
  const [saved, setSaved] = useState(false)
  const [busy, setBusy] = useState(false)
  const secretSet = Object.fromEntries(Object.entries(d.inputs).map(([k, v]) => [k, v.secretSet]))

  const save = async (e: Event) => {
    e.preventDefault()
    const { inputs, errors: local } = formToInputs(schema, values)
    setErrors(Object.fromEntries(Object.entries(local).map(([k, v]) => ['destination.inputs.' + k, v])))
    setError(null)
    setSaved(false)
    if (Object.keys(local).length) return
    setBusy(true)
    try {
      const r = await api.destinations.updateDestination({
        destination: create(DestinationSchema, { name: d.name, etag: d.etag, displayName: name, description, inputs, filters: buildFilters(filters, d.filters) }),
        updateMask: { paths: ['display_name', 'description', 'inputs', 'filters'] },
      })
      onSaved(r.destination!)
      setValues(initialValues(schema, r.destination!.inputs, false))
      setSaved(true)
    } catch (err) {
      const fe = fieldErrors(err)
      setErrors(fe)
      if (Object.keys(fe).length === 0)
        setError(isCode(err, Code.Aborted) ? new Error('Someone else changed this destination since you opened it: reload the page to see their change.') : err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <form onSubmit={save} aria-label="Configuration" noValidate>
      <ErrorBanner error={error} />
      {Object.keys(errors).length > 0 && (
        <p class="banner error" role="alert">
          Not saved: check the fields marked below.
        </p>
      )}
      {saved && (
        <p class="banner ok" role="status">
          Saved.
        </p>
      )}
      <div class="grid2">
        <Field id="cfg-name" label="Name" required error={errors['destination.display_name']}>
          {(a) => <input {...a} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <Field id="cfg-description" label="Description" error={errors['destination.description']}>
          {(a) => <input {...a} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />}
        </Field>
      </div>
      <h2>Inputs</h2>
      <InputsForm idPrefix="cfg-input" schema={schema} values={values} secretSet={secretSet} errors={errorsUnder(errors, 'destination.inputs.')} onChange={(k, v) => setValues({ ...values, [k]: v })} />
      <h2>Filters</h2>
      <FiltersEditor f={filters} onChange={setFilters} errors={errorsUnder(errors, 'destination.filters')} />
      <MatchPreview project={d.name.split('/destinations/')[0]} filters={buildFilters(filters, d.filters)} />
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          Save configuration
        </button>
      </div>
    </form>
  )
}

function FiltersEditor(props: { f: FilterDraft; onChange: (f: FilterDraft) => void; errors: Record<string, string> }) {
  const { f } = props
  const set = (p: Partial<FilterDraft>) => props.onChange({ ...f, ...p })
  const errAt = (prefix: string) => Object.entries(props.errors).find(([k]) => k.startsWith(prefix))?.[1]
  return (
    <div class="filters">
      <fieldset>
        <legend>Events</legend>
        <p class="hint">The destination runs for any of these events; with none, for every event.</p>
        {f.events.map((ev, i) => (
          <div class="row" key={i}>
            <input aria-label={`Event ${i + 1}`} value={ev} placeholder="$pageview" onInput={(e) => set({ events: f.events.map((x, j) => (j === i ? e.currentTarget.value : x)) })} />
            <button type="button" class="quiet" aria-label={`Remove event ${i + 1}`} onClick={() => set({ events: f.events.filter((_, j) => j !== i) })}>
              Remove
            </button>
          </div>
        ))}
        {errAt('.events') && <p class="field-error">{errAt('.events')}</p>}
        <button type="button" class="quiet" onClick={() => set({ events: [...f.events, ''] })}>
          Add event
        </button>
      </fieldset>
      <fieldset>
        <legend>Properties</legend>
        <p class="hint">Every one of these must hold.</p>
        {f.props.map((p, i) => {
          const upd = (q: Partial<PropRow>) => set({ props: f.props.map((x, j) => (j === i ? { ...x, ...q } : x)) })
          const n = i + 1
          return (
            <div class="row prop" key={i}>
              <select aria-label={`Property ${n}: source`} value={p.scope} onChange={(e) => upd({ scope: Number(e.currentTarget.value) })}>
                <option value={PropertyScope.EVENT}>event</option>
                <option value={PropertyScope.PERSON}>person</option>
              </select>
              <input aria-label={`Property ${n}: key`} value={p.key} placeholder="$browser" onInput={(e) => upd({ key: e.currentTarget.value })} />
              <select aria-label={`Property ${n}: operator`} value={p.operator} onChange={(e) => upd({ operator: Number(e.currentTarget.value) })}>
                {operators.map(([op, label]) => (
                  <option value={op}>{label}</option>
                ))}
              </select>
              {!noValue.has(p.operator) && <input aria-label={`Property ${n}: value`} value={p.value} onInput={(e) => upd({ value: e.currentTarget.value })} />}
              <button type="button" class="quiet" aria-label={`Remove property ${n}`} onClick={() => set({ props: f.props.filter((_, j) => j !== i) })}>
                Remove
              </button>
              {errAt(`.properties[${i}]`) && <p class="field-error">{errAt(`.properties[${i}]`)}</p>}
            </div>
          )
        })}
        <button type="button" class="quiet" onClick={() => set({ props: [...f.props, { key: '', scope: PropertyScope.EVENT, operator: PropertyOperator.EXACT, value: '' }] })}>
          Add property filter
        </button>
      </fieldset>
      <Field id="cfg-expression" label="Hog expression" hint="Optional, e.g. properties.plan = 'pro' and person.properties.email like '%@example.com'" error={errAt('.expression')}>
        {(a) => <textarea {...a} class="code" rows={2} spellcheck={false} value={f.expression} onInput={(e) => set({ expression: e.currentTarget.value })} />}
      </Field>
    </div>
  )
}

/**
 * Whether the filters (as edited, unsaved) match a sample event: the server
 * runs a stand-in destination with only these filters through TestService.
 */
function MatchPreview(props: { project: string; filters: Filters }) {
  const [eventText, setEventText] = useState('')
  const [result, setResult] = useState<{ match?: boolean; text: string } | null>(null)
  const filtersJson = JSON.stringify(toJson(FiltersSchema, props.filters))
  const key = useDebounced(filtersJson + '\n' + eventText, 350)
  useEffect(() => {
    let live = true
    let event
    if (eventText.trim()) {
      try {
        event = fromJson(EventSchema, JSON.parse(eventText), { ignoreUnknownFields: false })
      } catch (e) {
        setResult({ text: 'The sample event is not valid: ' + (e as Error).message })
        return
      }
    }
    api.tests
      .test({
        target: {
          case: 'config',
          value: create(DestinationSchema, { name: props.project, displayName: 'filter preview', hog: 'return true', filters: clone(FiltersSchema, props.filters) }),
        },
        event,
        fetchMode: FetchMode.MOCK,
      })
      .then(
        (r) => {
          if (!live) return
          if (!eventText.trim() && r.event) setEventText(JSON.stringify(toJson(EventSchema, r.event, { useProtoFieldName: true }), null, 2))
          if (r.status === InvocationStatus.FILTERED) setResult({ match: false, text: 'Would not match this event.' })
          else if (r.status === InvocationStatus.SUCCEEDED) setResult({ match: true, text: 'Would match this event.' })
          else setResult({ match: false, text: 'The filter fails on this event: ' + r.error })
        },
        (err) => {
          if (!live) return
          const fe = Object.entries(fieldErrors(err))
          setResult({ text: fe.length ? fe.map(([k, v]) => `${k.replace('config.', '')}: ${v}`).join('; ') : errorText(err) })
        },
      )
    return () => {
      live = false
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key])
  return (
    <div class="preview card">
      <h3>Would it match?</h3>
      <p role="status" class={'match ' + (result?.match === true ? 'ok-text' : result?.match === false ? 'bad-text' : '')} data-testid="match-result">
        {result?.text ?? 'Checking…'}
      </p>
      <Field id="cfg-sample" label="Sample event (JSON)" hint="Edit it to try the filters on other events; they are checked as you type.">
        {(a) => <textarea {...a} class="code" rows={8} spellcheck={false} value={eventText} onInput={(e) => setEventText(e.currentTarget.value)} />}
      </Field>
    </div>
  )
}
