// The console's client of hogwire's gRPC API, over the Connect protocol
// (transcoded into gRPC by the server), generated from api/hogwire/v1.
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect'
import { createConnectTransport } from '@connectrpc/connect-web'
import { BinaryReader } from '@bufbuild/protobuf/wire'
import { fromJson, toJson, type JsonValue } from '@bufbuild/protobuf'
import { ValueSchema, type Value } from '@bufbuild/protobuf/wkt'
import { ProjectService } from './gen/hogwire/v1/project_pb'
import { DestinationService } from './gen/hogwire/v1/destination_pb'
import { TemplateService } from './gen/hogwire/v1/template_pb'
import { TestService } from './gen/hogwire/v1/test_pb'
import { LogService } from './gen/hogwire/v1/log_pb'
import { MetricsService } from './gen/hogwire/v1/metrics_pb'
import { InvocationService } from './gen/hogwire/v1/invocation_pb'
import { PersonService } from './gen/hogwire/v1/person_pb'

let unauthenticated: () => void = () => {}

/** Sets what to do when a call says the session is gone. */
export function onUnauthenticated(f: () => void) {
  unauthenticated = f
}

const signOutOn401: Interceptor = (next) => async (req) => {
  try {
    return await next(req)
  } catch (e) {
    if (e instanceof ConnectError && e.code === Code.Unauthenticated) unauthenticated()
    throw e
  }
}

const transport = createConnectTransport({
  baseUrl: new URL('api', new URL(import.meta.env.BASE_URL, location.origin)).href,
  interceptors: [signOutOn401],
})

export const api = {
  projects: createClient(ProjectService, transport),
  destinations: createClient(DestinationService, transport),
  templates: createClient(TemplateService, transport),
  tests: createClient(TestService, transport),
  logs: createClient(LogService, transport),
  metrics: createClient(MetricsService, transport),
  invocations: createClient(InvocationService, transport),
  persons: createClient(PersonService, transport),
}

/** Session: sign in with the admin token; the server sets an HttpOnly cookie. */
export async function signIn(token: string): Promise<string | null> {
  const r = await fetch(import.meta.env.BASE_URL + 'session', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token }),
  })
  if (r.ok) return null
  const body = await r.json().catch(() => null)
  return body?.error?.message ?? `sign-in failed (HTTP ${r.status})`
}

export async function signOut() {
  await fetch(import.meta.env.BASE_URL + 'session', { method: 'DELETE' })
}

export async function hasSession(): Promise<boolean> {
  const r = await fetch(import.meta.env.BASE_URL + 'session')
  if (!r.ok) throw new Error(`HTTP ${r.status}`)
  return (await r.json()).signed_in === true
}

/**
 * The field violations of an INVALID_ARGUMENT error (google.rpc.BadRequest),
 * by field path, e.g. {"destination.inputs.url": "is required"}.
 */
export function fieldErrors(err: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (!(err instanceof ConnectError)) return out
  for (const d of err.details) {
    if (!('type' in d) || d.type !== 'google.rpc.BadRequest') continue
    const r = new BinaryReader(d.value)
    while (r.pos < r.len) {
      const [no, wt] = r.tag()
      if (no !== 1) {
        r.skip(wt)
        continue
      }
      const v = new BinaryReader(r.bytes())
      let field = '', desc = ''
      while (v.pos < v.len) {
        const [fno, fwt] = v.tag()
        if (fno === 1) field = v.string()
        else if (fno === 2) desc = v.string()
        else v.skip(fwt)
      }
      out[field] = desc
    }
  }
  return out
}

/** A one-line description of any error. */
export function errorText(err: unknown): string {
  if (err instanceof ConnectError) return err.rawMessage || err.message
  if (err instanceof Error) return err.message
  return String(err)
}

export function isCode(err: unknown, code: Code): boolean {
  return err instanceof ConnectError && err.code === code
}

export { Code }

export function valueToJson(v: Value | undefined): JsonValue | undefined {
  return v ? toJson(ValueSchema, v) : undefined
}

export function jsonToValue(j: JsonValue): Value {
  return fromJson(ValueSchema, j)
}

/** "projects/shop/destinations/hook" → ["shop", "hook"]. */
export function splitName(name: string): string[] {
  return name.split('/').filter((_, i) => i % 2 === 1)
}
