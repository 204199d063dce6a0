import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import './style.css'
import { hasSession, onUnauthenticated, signIn, signOut } from './api'
import { navigate, usePath } from './router'
import { Link, PageHeading } from './ui'
import { ProjectsPage } from './pages/projects'
import { DestinationsPage } from './pages/destinations'
import { CataloguePage, CreatePage } from './pages/catalogue'
import { DestinationPage } from './pages/destination'

function App() {
  const [session, setSession] = useState<boolean | null>(null)
  useEffect(() => {
    onUnauthenticated(() => setSession(false))
    hasSession().then(setSession, () => setSession(false))
  }, [])
  useEffect(() => {
    // For the load-time figure the browser test reports.
    if (session !== null && performance.getEntriesByName('hogwire:ready').length === 0) performance.mark('hogwire:ready')
  }, [session])
  if (session === null) return null
  if (!session) return <SignIn onDone={() => setSession(true)} />
  return <Shell onSignOut={() => signOut().then(() => setSession(false))} />
}

function SignIn(props: { onDone: () => void }) {
  const [token, setToken] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  return (
    <main class="signin" id="main">
      <form
        onSubmit={async (e) => {
          e.preventDefault()
          setBusy(true)
          const err = await signIn(token).catch((e) => String(e))
          setBusy(false)
          if (err) setError(err)
          else props.onDone()
        }}
      >
        <PageHeading>Sign in to hogwire</PageHeading>
        <p class="muted">
          Use the admin token: <code>hogwire dev</code> prints it and keeps it in <code>.hogwire/admin.token</code>.
        </p>
        <div class={'field' + (error ? ' invalid' : '')}>
          <label for="token">Admin token</label>
          <input
            id="token"
            type="password"
            autocomplete="current-password"
            required
            value={token}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? 'token-error' : undefined}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
          {error && (
            <p class="field-error" id="token-error" role="alert">
              {error}
            </p>
          )}
        </div>
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  )
}

function Shell(props: { onSignOut: () => void }) {
  const path = usePath()
  const parts = path.split('/').filter(Boolean)
  let page
  let project: string | undefined
  if (parts[0] === 'projects' && parts[1]) {
    project = decodeURIComponent(parts[1])
    if (parts.length === 2) page = <DestinationsPage project={project} />
    else if (parts[2] === 'new' && parts.length === 3) page = <CataloguePage project={project} />
    else if (parts[2] === 'new' && parts[3]) page = <CreatePage project={project} template={decodeURIComponent(parts[3])} />
    else if (parts[2] === 'destinations' && parts[3]) page = <DestinationPage project={project} id={decodeURIComponent(parts[3])} tab={parts[4] ?? 'configuration'} sub={parts[5] && decodeURIComponent(parts[5])} />
  } else if (parts.length === 0 || (parts[0] === 'projects' && parts.length === 1)) {
    page = <ProjectsPage />
  }
  useEffect(() => {
    if (parts.length === 0) navigate('/projects', true)
  }, [path])
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top" data-nav>
        <Link to="/projects" class="brand">
          hogwire
        </Link>
        <nav aria-label="Main">
          <Link to="/projects" aria-current={!project ? 'page' : undefined}>
            Projects
          </Link>
          {project && (
            <Link to={`/projects/${project}`} aria-current={parts.length === 2 ? 'page' : undefined}>
              Destinations
            </Link>
          )}
        </nav>
        <button type="button" class="quiet" onClick={props.onSignOut}>
          Sign out
        </button>
      </header>
      <main id="main" key={parts.slice(0, 4).join('/')}>
        {page ?? (
          <>
            <PageHeading>Not found</PageHeading>
            <p>
              There is no page at <code>{path}</code>. <Link to="/projects">Go to the projects.</Link>
            </p>
          </>
        )}
      </main>
    </>
  )
}

render(<App />, document.getElementById('app')!)
