import { defineConfig } from 'vite'

// The build is committed (dist/, embedded by console.go) and CI checks it
// is fresh, so it must be deterministic: no source maps (they hold paths),
// content-hashed names only.
export default defineConfig({
  base: '/console/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 800,
  },
  server: {
    // `npm run dev` against a running `hogwire dev`.
    proxy: {
      '/console/api': 'http://127.0.0.1:8080',
      '/console/session': 'http://127.0.0.1:8080',
    },
  },
})
