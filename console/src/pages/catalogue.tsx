import { useMemo, useState } from 'preact/hooks'
import { create } from '@bufbuild/protobuf'
import { api, fieldErrors, splitName } from '../api'
import { DestinationSchema } from '../gen/hogwire/v1/destination_pb'
import { TemplateStatus } from '../gen/hogwire/v1/template_pb'
import { InputsForm, formToInputs, initialValues, type FormValues } from '../inputs'
import { navigate } from '../router'
import { ErrorBanner, Field, Link, Loading, PageHeading, errorsUnder, useAsync } from '../ui'

export function CataloguePage(props: { project: string }) {
  const list = useAsync(() => api.templates.listTemplates({ pageSize: 1000 }), [])
  const [q, setQ] = useState('')
  const [category, setCategory] = useState('')
  const categories = useMemo(() => [...new Set((list.data?.templates ?? []).map((t) => t.category))].sort(), [list.data])
  const shown = (list.data?.templates ?? []).filter((t) => {
    const n = q.trim().toLowerCase()
    return (!category || t.category === category) && (!n || `${t.displayName} ${t.description} ${t.category}`.toLowerCase().includes(n))
  })
  return (
    <>
      <PageHeading>New destination</PageHeading>
      <p class="muted">Start from a template: its code, inputs and filters, which you can change afterwards.</p>
      <div class="toolbar">
        <div class="field inline">
          <label for="tpl-search">Search templates</label>
          <input id="tpl-search" type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </div>
      </div>
      <div class="chips" role="group" aria-label="Category">
        {['', ...categories].map((c) => (
          <button type="button" class="chip" aria-pressed={category === c} onClick={() => setCategory(c)}>
            {c || 'All'}
          </button>
        ))}
      </div>
      <ErrorBanner error={list.error} />
      {list.loading && <Loading what="templates" />}
      <p class="muted" role="status">
        {list.data ? `${shown.length} templates` : ''}
      </p>
      <ul class="cards">
        {shown.map((t) => {
          const id = splitName(t.name)[0]
          return (
            <li key={t.name} class="card template">
              <h2>
                <Link to={`/projects/${props.project}/new/${id}`}>{t.displayName}</Link>
              </h2>
              <p>{t.description}</p>
              <p class="small muted">
                {t.category}
                {t.status === TemplateStatus.BETA && <span class="badge warn">beta</span>}
                {t.status === TemplateStatus.DEPRECATED && <span class="badge bad">deprecated</span>}
              </p>
            </li>
          )
        })}
      </ul>
    </>
  )
}

export function CreatePage(props: { project: string; template: string }) {
  const tpl = useAsync(() => api.templates.getTemplate({ name: `templates/${props.template}` }), [props.template])
  const t = tpl.data?.template
  return (
    <>
      <PageHeading>New destination{t ? `: ${t.displayName}` : ''}</PageHeading>
      <p>
        <Link to={`/projects/${props.project}/new`}>← All templates</Link>
      </p>
      <ErrorBanner error={tpl.error} />
      {tpl.loading && <Loading what="the template" />}
      {t && <CreateForm key={t.name} project={props.project} template={props.template} t={t} />}
    </>
  )
}

function CreateForm(props: { project: string; template: string; t: NonNullable<Awaited<ReturnType<typeof api.templates.getTemplate>>['template']> }) {
  const { t } = props
  const [name, setName] = useState(t.displayName)
  const [id, setId] = useState('')
  const [enabled, setEnabled] = useState(true)
  const [values, setValues] = useState<FormValues>(() => initialValues(t.inputsSchema))
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  return (
    <form
      noValidate
      class="card"
      aria-label="Destination settings"
      onSubmit={async (e) => {
        e.preventDefault()
        const { inputs, errors: local } = formToInputs(t.inputsSchema, values)
        setErrors(Object.fromEntries(Object.entries(local).map(([k, v]) => ['destination.inputs.' + k, v])))
        setError(null)
        if (Object.keys(local).length) return
        setBusy(true)
        try {
          const r = await api.destinations.createDestination({
            parent: `projects/${props.project}`,
            destinationId: id.trim(),
            fromTemplate: t.name,
            destination: create(DestinationSchema, { displayName: name.trim(), enabled, inputs }),
          })
          navigate(`/projects/${props.project}/destinations/${splitName(r.destination!.name)[1]}`)
        } catch (err) {
          const fe = fieldErrors(err)
          setErrors(fe)
          if (Object.keys(fe).length === 0) setError(err)
        } finally {
          setBusy(false)
        }
      }}
    >
      <p>{t.description}</p>
      {t.docsUrl && (
        <p class="small">
          Follows <a href={t.docsUrl} rel="noreferrer noopener" target="_blank">the vendor's API documentation</a>.
        </p>
      )}
      <ErrorBanner error={error} />
      {Object.keys(errors).length > 0 && (
        <p class="banner error" role="alert">
          Check the fields marked below.
        </p>
      )}
      <div class="grid2">
        <Field id="dest-name" label="Name" required error={errors['destination.display_name']}>
          {(a) => <input {...a} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <Field id="dest-id" label="ID" hint="Unique across projects; generated when empty." error={errors['destination_id']}>
          {(a) => <input {...a} value={id} onInput={(e) => setId(e.currentTarget.value)} />}
        </Field>
      </div>
      <h2>Inputs</h2>
      <InputsForm idPrefix="input" schema={t.inputsSchema} values={values} errors={errorsUnder(errors, 'destination.inputs.')} onChange={(k, v) => setValues({ ...values, [k]: v })} />
      <div class="field check">
        <input type="checkbox" id="dest-enabled" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
        <label for="dest-enabled">Enabled: run it for matching events as soon as it is created</label>
      </div>
      <button type="submit" class="primary" disabled={busy}>
        Create destination
      </button>
    </form>
  )
}
