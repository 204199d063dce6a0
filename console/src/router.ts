// A small path router over the History API: routes live under the
// console's base path, and every navigation moves focus to the new page's
// heading, so that keyboard and screen-reader users land on it.
import { useEffect, useState } from 'preact/hooks'

const base = import.meta.env.BASE_URL.replace(/\/$/, '')
const listeners = new Set<() => void>()

export function currentPath(): string {
  const p = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : location.pathname
  return p || '/'
}

export function href(path: string): string {
  return base + path
}

export function navigate(path: string, replace = false) {
  if (replace) history.replaceState(null, '', href(path))
  else history.pushState(null, '', href(path))
  listeners.forEach((f) => f())
}

addEventListener('popstate', () => listeners.forEach((f) => f()))

export function usePath(): string {
  const [path, setPath] = useState(currentPath())
  useEffect(() => {
    const f = () => setPath(currentPath())
    listeners.add(f)
    return () => void listeners.delete(f)
  }, [])
  return path
}

/** Handles a click on an in-app link without reloading the page. */
export function linkClick(e: MouseEvent, path: string) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
  e.preventDefault()
  navigate(path)
}
