// Shared pieces of the console's pages.
import type { ComponentChildren } from 'preact'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { timestampDate, type Duration, type Timestamp } from '@bufbuild/protobuf/wkt'
import { href, linkClick, navigate } from './router'
import { errorText } from './api'
import { HealthState, type DestinationHealth } from './gen/hogwire/v1/destination_pb'
import { LogLevel, type LogEntry } from './gen/hogwire/v1/log_pb'

export function Link(props: { to: string; class?: string; children: ComponentChildren; 'aria-current'?: 'page' }) {
  return (
    <a href={href(props.to)} class={props.class} aria-current={props['aria-current']} onClick={(e) => linkClick(e as MouseEvent, props.to)}>
      {props.children}
    </a>
  )
}

/** The page's h1; it takes focus when the page opens (after navigation). */
export function PageHeading(props: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null)
  useEffect(() => {
    if (document.activeElement === document.body || document.activeElement?.closest('nav, [data-nav]')) ref.current?.focus({ preventScroll: true })
  }, [])
  return (
    <h1 tabIndex={-1} ref={ref}>
      {props.children}
    </h1>
  )
}

export function ErrorBanner(props: { error: unknown }) {
  if (!props.error) return null
  return (
    <p class="banner error" role="alert">
      {errorText(props.error)}
    </p>
  )
}

export function Loading(props: { what?: string }) {
  return (
    <p class="muted" role="status">
      Loading{props.what ? ' ' + props.what : ''}…
    </p>
  )
}

export interface Async<T> {
  data?: T
  error?: unknown
  loading: boolean
  reload: () => void
}

/** Runs f when deps change; the latest call wins. */
export function useAsync<T>(f: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true })
  const [tick, setTick] = useState(0)
  useEffect(() => {
    let live = true
    setState((s) => ({ ...s, loading: true }))
    f().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState({ error, loading: false }),
    )
    return () => {
      live = false
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick])
  const reload = useCallback(() => setTick((t) => t + 1), [])
  return { ...state, reload }
}

/** Calls f with the latest value after it has stopped changing for ms. */
export function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value)
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms)
    return () => clearTimeout(t)
  }, [value, ms])
  return v
}

const healthText: Record<number, [string, string]> = {
  [HealthState.UNSPECIFIED]: ['Unknown', 'unknown'],
  [HealthState.HEALTHY]: ['Healthy', 'ok'],
  [HealthState.DEGRADED]: ['Degraded', 'warn'],
  [HealthState.DISABLED_TEMPORARILY]: ['Quarantined', 'bad'],
  [HealthState.DISABLED_INDEFINITELY]: ['Disabled by health', 'bad'],
}

export function healthLabel(h?: DestinationHealth): string {
  return healthText[h?.state ?? 0][0]
}

export function HealthBadge(props: { health?: DestinationHealth; enabled: boolean }) {
  if (!props.enabled) return <span class="badge off">Disabled</span>
  const [text, cls] = healthText[props.health?.state ?? 0]
  return (
    <span class={'badge ' + cls} title={props.health?.reason || undefined}>
      {text}
    </span>
  )
}

export function fmtTime(ts?: Timestamp): string {
  if (!ts) return ''
  return timestampDate(ts).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' })
}

/** "12.3 ms", "1.52 s". */
export function fmtDuration(d?: Duration): string {
  const ms = Number(d?.seconds ?? 0n) * 1000 + (d?.nanos ?? 0) / 1e6
  return ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`
}

/** One log entry, as the Logs tab, the test result and an invocation show it. */
export function LogLine(props: { entry: LogEntry; children?: ComponentChildren }) {
  const l = props.entry
  return (
    <li class={'log ' + LogLevel[l.level].toLowerCase()}>
      <span class="time">{fmtTime(l.time)}</span> <span class="level">{LogLevel[l.level]}</span> <span class="msg">{l.message}</span>
      {props.children}
    </li>
  )
}

export function fmtNumber(n: number): string {
  return n.toLocaleString(undefined, { maximumFractionDigits: 1 })
}

/** A line chart of a few series in a small SVG, with a text alternative. */
export function Sparkline(props: { series: { values: number[]; class: string }[]; label: string; width?: number; height?: number }) {
  const w = props.width ?? 120, h = props.height ?? 28
  const max = Math.max(1, ...props.series.flatMap((s) => s.values))
  return (
    <svg class="sparkline" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={props.label}>
      {props.series.map((s) => {
        const n = Math.max(1, s.values.length - 1)
        const pts = s.values.map((v, i) => `${((i / n) * (w - 2) + 1).toFixed(1)},${(h - 1 - (v / max) * (h - 2)).toFixed(1)}`).join(' ')
        return <polyline class={s.class} points={pts} fill="none" />
      })}
    </svg>
  )
}

export interface TabDef {
  id: string
  label: string
}

/**
 * Tabs that are pages: each has a path; the arrow keys, Home and End move
 * between them (the WAI-ARIA tabs pattern with automatic activation).
 */
export function Tabs(props: { tabs: TabDef[]; current: string; path: (id: string) => string; label: string }) {
  const refs = useRef<(HTMLButtonElement | null)[]>([])
  const go = (i: number) => {
    const t = props.tabs[(i + props.tabs.length) % props.tabs.length]
    navigate(props.path(t.id), true)
    setTimeout(() => refs.current[props.tabs.indexOf(t)]?.focus())
  }
  const idx = props.tabs.findIndex((t) => t.id === props.current)
  return (
    <div role="tablist" aria-label={props.label} class="tabs" data-nav>
      {props.tabs.map((t, i) => (
        <button
          type="button"
          role="tab"
          id={'tab-' + t.id}
          aria-selected={t.id === props.current}
          aria-controls="tabpanel"
          tabIndex={t.id === props.current ? 0 : -1}
          ref={(el) => {
            refs.current[i] = el
          }}
          onClick={() => navigate(props.path(t.id))}
          onKeyDown={(e) => {
            const k = e.key
            if (k === 'ArrowRight') go(idx + 1)
            else if (k === 'ArrowLeft') go(idx - 1)
            else if (k === 'Home') go(0)
            else if (k === 'End') go(props.tabs.length - 1)
            else return
            e.preventDefault()
          }}
        >
          {t.label}
        </button>
      ))}
    </div>
  )
}

/** A labelled form control with its error. */
export function Field(props: { id: string; label: string; hint?: string; error?: string; required?: boolean; children: (a: FieldAttrs) => ComponentChildren }) {
  const described = [props.hint ? props.id + '-hint' : '', props.error ? props.id + '-error' : ''].filter(Boolean).join(' ') || undefined
  return (
    <div class={'field' + (props.error ? ' invalid' : '')}>
      <label for={props.id}>
        {props.label}
        {props.required && <span aria-hidden="true"> *</span>}
      </label>
      {props.children({ id: props.id, 'aria-describedby': described, 'aria-invalid': props.error ? true : undefined, required: props.required })}
      {props.hint && (
        <p class="hint" id={props.id + '-hint'}>
          {props.hint}
        </p>
      )}
      {props.error && (
        <p class="field-error" id={props.id + '-error'}>
          {props.error}
        </p>
      )}
    </div>
  )
}

export interface FieldAttrs {
  id: string
  'aria-describedby'?: string
  'aria-invalid'?: boolean
  required?: boolean
}

/** Errors whose field starts with prefix, keyed by the rest of the path. */
export function errorsUnder(errors: Record<string, string>, prefix: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(errors)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v
  return out
}

// Pre is preformatted text in a box that scrolls past its maximum height;
// it is focusable so keyboard users can scroll it too.
export function Pre(props: { class?: string; children: ComponentChildren }) {
  return (
    <pre class={props.class} tabIndex={0}>
      {props.children}
    </pre>
  )
}
