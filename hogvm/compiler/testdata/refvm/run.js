// Runs compiled Hog programs on PostHog's reference VM (npm @posthog/hogvm)
// for the compiler's conformance tests.
//
// Usage: node run.js PROGRAM.json...
// For each program it writes what the program printed to PROGRAM.json.out,
// its result (printed as Hog prints values) to PROGRAM.json.result, and a
// VM error, if any, to PROGRAM.json.err. Globals are read from
// PROGRAM.json.globals when that file exists. The VM is loaded from
// $HOGWIRE_REFVM_DIR (see install.sh).
'use strict'
const fs = require('fs')
const path = require('path')
const util = require('util')

const dir = process.env.HOGWIRE_REFVM_DIR
if (!dir) {
    throw new Error('HOGWIRE_REFVM_DIR is not set')
}
const { exec, printHogValue } = require(path.join(dir, 'node_modules', '@posthog', 'hogvm'))

// The reference CLI uses RE2, which takes inline flags such as (?i); JS
// RegExp does not, so leading inline flags become RegExp flags.
function toRegExp(pattern) {
    let flags = ''
    let m
    while ((m = /^\(\?([ism]+)\)/.exec(pattern)) !== null) {
        for (const f of m[1]) {
            if (!flags.includes(f)) {
                flags += f
            }
        }
        pattern = pattern.slice(m[0].length)
    }
    return new RegExp(pattern, flags)
}

const options = {
    external: {
        regex: {
            match: (regex, value) => toRegExp(regex).test(value),
            extract: (regex, value) => {
                const m = toRegExp(regex).exec(value)
                if (!m) {
                    return ''
                }
                return m[1] !== undefined ? m[1] : m[0]
            },
        },
        crypto: require('crypto'),
    },
}

for (const file of process.argv.slice(2)) {
    const lines = []
    const original = console.log
    console.log = (...args) => lines.push(util.format(...args))
    let error = ''
    let result = ''
    const globalsFile = file + '.globals'
    const opts = fs.existsSync(globalsFile)
        ? { ...options, globals: JSON.parse(fs.readFileSync(globalsFile, 'utf8')) }
        : options
    try {
        const res = exec(JSON.parse(fs.readFileSync(file, 'utf8')), opts)
        if (res && res.finished) {
            result = printHogValue(res.result)
        }
        if (res && res.error) {
            error = String(res.error && res.error.message ? res.error.message : res.error)
        }
    } catch (e) {
        error = String(e && e.message ? e.message : e)
    } finally {
        console.log = original
    }
    fs.writeFileSync(file + '.out', lines.map((l) => l + '\n').join(''))
    fs.writeFileSync(file + '.err', error)
    fs.writeFileSync(file + '.result', result)
}
