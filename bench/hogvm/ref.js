// Times Hog bytecode files on PostHog's reference VM (npm @posthog/hogvm)
// for bench/hogvm: for each file argument it prints "<ns per run> <file>".
// Usage: HOGWIRE_REFVM_DIR=… node ref.js RUNS FILE.hoge…
'use strict'
const fs = require('fs')
const path = require('path')
const { exec } = require(path.join(process.env.HOGWIRE_REFVM_DIR, 'node_modules', '@posthog', 'hogvm'))

// RE2-style leading inline flags become RegExp flags.
function regexp(pattern) {
    const m = /^\(\?([ims]+)\)/.exec(pattern)
    return m ? new RegExp(pattern.slice(m[0].length), m[1]) : new RegExp(pattern)
}
const options = {
    external: {
        regex: {
            match: (re, s) => regexp(re).test(s),
            extract: (re, s) => {
                const m = regexp(re).exec(s)
                return m ? (m[1] !== undefined ? m[1] : m[0]) : ''
            },
        },
        crypto: require('crypto'),
    },
}

const runs = Number(process.argv[2])
const log = console.log
console.log = () => {}
for (const file of process.argv.slice(3)) {
    const code = JSON.parse(fs.readFileSync(file, 'utf8'))
    // Warm up the JIT as the Go side warms its caches.
    for (let i = 0; i < Math.max(1, runs / 10); i++) exec(code, options)
    const start = process.hrtime.bigint()
    for (let i = 0; i < runs; i++) exec(code, options)
    const ns = Number(process.hrtime.bigint() - start) / runs
    log(`${ns.toFixed(0)} ${file}`)
}
