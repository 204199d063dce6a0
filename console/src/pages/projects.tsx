import { useState } from 'preact/hooks'
import { create } from '@bufbuild/protobuf'
import { api, fieldErrors, splitName } from '../api'
import { ProjectSchema } from '../gen/hogwire/v1/project_pb'
import { navigate } from '../router'
import { ErrorBanner, Field, Link, Loading, PageHeading, fmtTime, useAsync } from '../ui'

export function ProjectsPage() {
  const list = useAsync(() => api.projects.listProjects({ pageSize: 1000 }), [])
  return (
    <>
      <PageHeading>Projects</PageHeading>
      <p class="muted">A project owns destinations and the capture token its SDKs send events with.</p>
      <ErrorBanner error={list.error} />
      {list.loading && !list.data && <Loading what="projects" />}
      {list.data && list.data.projects.length === 0 && <p>No projects yet: create the first one below.</p>}
      {list.data && list.data.projects.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Projects</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">ID</th>
                <th scope="col">Capture token</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.data.projects.map((p) => {
                const id = splitName(p.name)[0]
                return (
                  <tr key={p.name}>
                    <td>
                      <Link to={`/projects/${id}`}>{p.displayName}</Link>
                    </td>
                    <td>
                      <code>{id}</code>
                    </td>
                    <td>
                      <CopyToken token={p.captureToken} label={`Copy the capture token of ${p.displayName}`} />
                    </td>
                    <td>{fmtTime(p.createTime)}</td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        </div>
      )}
      <NewProject onCreated={(id) => navigate(`/projects/${id}`)} />
    </>
  )
}

function CopyToken(props: { token: string; label: string }) {
  const [copied, setCopied] = useState(false)
  return (
    <span class="token">
      <code>{props.token}</code>
      <button
        type="button"
        class="quiet small"
        aria-label={props.label}
        onClick={() => navigator.clipboard?.writeText(props.token).then(() => setCopied(true), () => {})}
      >
        {copied ? 'Copied' : 'Copy'}
      </button>
    </span>
  )
}

function NewProject(props: { onCreated: (id: string) => void }) {
  const [name, setName] = useState('')
  const [id, setId] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [error, setError] = useState<unknown>(null)
  return (
    <form
      noValidate
      class="card"
      aria-labelledby="new-project"
      onSubmit={async (e) => {
        e.preventDefault()
        setErrors({})
        setError(null)
        try {
          const r = await api.projects.createProject({ projectId: id.trim(), project: create(ProjectSchema, { displayName: name.trim() }) })
          props.onCreated(splitName(r.project!.name)[0])
        } catch (err) {
          const fe = fieldErrors(err)
          setErrors(fe)
          if (Object.keys(fe).length === 0) setError(err)
        }
      }}
    >
      <h2 id="new-project">New project</h2>
      <ErrorBanner error={error} />
      <div class="grid2">
        <Field id="project-name" label="Name" required error={errors['project.display_name']}>
          {(a) => <input {...a} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <Field id="project-id" label="ID" hint="Lowercase letters, digits and hyphens; generated when empty." error={errors['project_id']}>
          {(a) => <input {...a} value={id} onInput={(e) => setId(e.currentTarget.value)} />}
        </Field>
      </div>
      <button type="submit" class="primary">
        Create project
      </button>
    </form>
  )
}
