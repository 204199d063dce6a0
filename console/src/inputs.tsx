// A destination's inputs as a form, rendered from its inputs schema.
// Secret inputs are write-only: the form never shows a stored value, and
// leaving one empty keeps it.
import type { JsonValue } from '@bufbuild/protobuf'
import { create } from '@bufbuild/protobuf'
import { InputType, InputValueSchema, type InputSchema, type InputValue } from './gen/hogwire/v1/destination_pb'
import { jsonToValue, valueToJson } from './api'
import { Field } from './ui'

/** What the user has typed: text for text-like and JSON inputs, a bool, or dictionary rows. */
export type FormValue = string | boolean | [string, string][]

export type FormValues = Record<string, FormValue>

/** The form's starting values: stored values, else the schema's defaults. */
export function initialValues(schema: InputSchema[], inputs: Record<string, InputValue> = {}, useDefaults = true): FormValues {
  const out: FormValues = {}
  for (const s of schema) {
    const stored = inputs[s.key]
    let v: JsonValue | undefined = stored?.value ? valueToJson(stored.value) : undefined
    if (v === undefined && useDefaults && s.default) v = valueToJson(s.default)
    if (s.secret) {
      out[s.key] = ''
      continue
    }
    out[s.key] = toForm(s, v)
  }
  return out
}

function toForm(s: InputSchema, v: JsonValue | undefined): FormValue {
  switch (s.type) {
    case InputType.BOOLEAN:
      return v === true
    case InputType.DICTIONARY:
      return v && typeof v === 'object' && !Array.isArray(v) ? Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)]) : []
    case InputType.JSON:
      return v === undefined || v === null ? '' : JSON.stringify(v, null, 2)
    case InputType.NUMBER:
      return v === undefined || v === null ? '' : String(v)
  }
  return v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v)
}

/**
 * The inputs map to send: every input with a value; secrets only when a new
 * value was typed. Errors are keyed by input key.
 */
export function formToInputs(schema: InputSchema[], values: FormValues): { inputs: Record<string, InputValue>; errors: Record<string, string> } {
  const inputs: Record<string, InputValue> = {}
  const errors: Record<string, string> = {}
  for (const s of schema) {
    const fv = values[s.key]
    let j: JsonValue | undefined
    switch (s.type) {
      case InputType.BOOLEAN:
        j = fv === true
        break
      case InputType.DICTIONARY: {
        const rows = (fv as [string, string][]) ?? []
        if (rows.length) j = Object.fromEntries(rows.filter(([k]) => k.trim() !== ''))
        break
      }
      case InputType.JSON: {
        const t = ((fv as string) ?? '').trim()
        if (t) {
          try {
            j = JSON.parse(t)
          } catch (e) {
            errors[s.key] = 'is not valid JSON: ' + (e as Error).message
          }
        }
        break
      }
      case InputType.NUMBER: {
        const t = ((fv as string) ?? '').trim()
        if (t) {
          const n = Number(t)
          if (Number.isFinite(n)) j = n
          else errors[s.key] = 'must be a number'
        }
        break
      }
      default: {
        const t = (fv as string) ?? ''
        if (t !== '') j = t
      }
    }
    if (j !== undefined) inputs[s.key] = create(InputValueSchema, { value: jsonToValue(j) })
  }
  return { inputs, errors }
}

export function InputsForm(props: {
  idPrefix: string
  schema: InputSchema[]
  values: FormValues
  secretSet?: Record<string, boolean>
  errors: Record<string, string>
  onChange: (key: string, v: FormValue) => void
}) {
  if (props.schema.length === 0) return <p class="muted">This destination has no inputs.</p>
  return (
    <div class="inputs">
      {props.schema.map((s) => (
        <InputField key={s.key} {...props} s={s} />
      ))}
    </div>
  )
}

function InputField(props: {
  idPrefix: string
  s: InputSchema
  values: FormValues
  secretSet?: Record<string, boolean>
  errors: Record<string, string>
  onChange: (key: string, v: FormValue) => void
}) {
  const { s } = props
  const id = `${props.idPrefix}-${s.key}`
  const v = props.values[s.key]
  const set = (x: FormValue) => props.onChange(s.key, x)
  const stored = props.secretSet?.[s.key]
  const hint = [s.description, s.secret ? (stored ? 'A value is stored; it is never shown. Type to replace it.' : 'Secret: stored encrypted, never shown again.') : '']
    .filter(Boolean)
    .join(' ')
  const label = s.label || s.key
  if (s.type === InputType.BOOLEAN) {
    return (
      <div class={'field check' + (props.errors[s.key] ? ' invalid' : '')}>
        <input type="checkbox" id={id} checked={v === true} onChange={(e) => set(e.currentTarget.checked)} aria-describedby={hint ? id + '-hint' : undefined} />
        <label for={id}>{label}</label>
        {hint && <p class="hint" id={id + '-hint'}>{hint}</p>}
        {props.errors[s.key] && <p class="field-error">{props.errors[s.key]}</p>}
      </div>
    )
  }
  if (s.type === InputType.DICTIONARY) {
    const rows = (v as [string, string][]) ?? []
    const update = (i: number, col: 0 | 1, text: string) => set(rows.map((r, j) => (j === i ? ((col === 0 ? [text, r[1]] : [r[0], text]) as [string, string]) : r)))
    return (
      <fieldset class={'field dict' + (props.errors[s.key] ? ' invalid' : '')} aria-describedby={hint ? id + '-hint' : undefined}>
        <legend>{label}</legend>
        {hint && <p class="hint" id={id + '-hint'}>{hint}</p>}
        {rows.map((r, i) => (
          <div class="row" key={i}>
            <input aria-label={`${label}: key ${i + 1}`} value={r[0]} onInput={(e) => update(i, 0, e.currentTarget.value)} />
            <input aria-label={`${label}: value ${i + 1}`} value={r[1]} onInput={(e) => update(i, 1, e.currentTarget.value)} />
            <button type="button" class="quiet" aria-label={`Remove ${label} entry ${i + 1}`} onClick={() => set(rows.filter((_, j) => j !== i))}>
              Remove
            </button>
          </div>
        ))}
        <button type="button" class="quiet" onClick={() => set([...rows, ['', '']])}>
          Add entry
        </button>
        {props.errors[s.key] && <p class="field-error">{props.errors[s.key]}</p>}
      </fieldset>
    )
  }
  return (
    <Field id={id} label={label} hint={hint || undefined} error={props.errors[s.key]} required={s.required && !(s.secret && stored)}>
      {(a) => {
        switch (s.type) {
          case InputType.CHOICE:
            return (
              <select {...a} value={v as string} onChange={(e) => set(e.currentTarget.value)}>
                {!s.required && <option value="">—</option>}
                {s.choices.map((c) => (
                  <option value={c.value}>{c.label || c.value}</option>
                ))}
              </select>
            )
          case InputType.JSON:
            return <textarea {...a} class="code" rows={6} spellcheck={false} value={v as string} onInput={(e) => set(e.currentTarget.value)} />
          case InputType.NUMBER:
            return <input {...a} type="number" inputMode="decimal" value={v as string} onInput={(e) => set(e.currentTarget.value)} />
        }
        if (s.secret)
          return (
            <input
              {...a}
              type="password"
              autocomplete="new-password"
              placeholder={stored ? '•••••••• (stored)' : undefined}
              value={v as string}
              onInput={(e) => set(e.currentTarget.value)}
            />
          )
        return (
          <input
            {...a}
            type="text"
            inputMode={s.type === InputType.EMAIL ? 'email' : undefined}
            autocomplete="off"
            value={v as string}
            onInput={(e) => set(e.currentTarget.value)}
          />
        )
      }}
    </Field>
  )
}
