// Parses Hog programs with PostHog's own parser (npm @posthog/hogql-parser,
// MIT, the C++ ANTLR parser compiled to WebAssembly) for the parser's
// differential tests (refparser_test.go).
//
// Usage: node parse.js FILE...
// For each file it writes FILE.ast: the syntax tree in the canonical form
// refparser_test.go also renders ours in, or "error" when PostHog's parser
// rejects the input. A FILE ending in .tpl is parsed as a template string
// (PostHog's "full template string", as destination inputs are), any other
// as a program. The parser is loaded from $HOGWIRE_REFVM_DIR (see
// ../../../compiler/testdata/refvm/install.sh).
'use strict'
const fs = require('fs')
const path = require('path')

const hex = (s) => Buffer.from(String(s), 'utf8').toString('hex')

function constant(v) {
    if (v === null || v === undefined) {
        return 'null'
    }
    if (typeof v === 'string') {
        return 's' + hex(v)
    }
    if (typeof v === 'number') {
        return 'n' + JSON.stringify(v)
    }
    if (typeof v === 'boolean') {
        return String(v)
    }
    throw new Error('unsupported constant ' + JSON.stringify(v))
}

const list = (...parts) => '(' + parts.join(' ') + ')'
const opt = (n) => (n === null || n === undefined ? 'none' : canon(n))

// forClause renders a for-loop initializer or increment, which PostHog's
// tree holds as a bare expression, a declaration or an assignment.
function forClause(n) {
    if (n === null || n === undefined) {
        return 'none'
    }
    if (n.node === 'VariableDeclaration' || n.node === 'VariableAssignment') {
        return canon(n)
    }
    return canon(n)
}

function lambdaBody(n) {
    // PostHog compiles x -> {a} (a placeholder) as the block {a}.
    if (n.node === 'Placeholder') {
        return list('block', list('expr', canon(n.expr)))
    }
    return canon(n)
}

function canon(n) {
    switch (n.node) {
        case 'Program':
            return list('program', ...n.declarations.map(canon))
        case 'Block':
            return list('block', ...n.declarations.map(canon))
        case 'ExprStatement':
            return n.expr === null || n.expr === undefined ? list('block') : list('expr', canon(n.expr))
        case 'VariableDeclaration':
            return list('let', hex(n.name), opt(n.expr))
        case 'VariableAssignment':
            return list('assign', canon(n.left), canon(n.right))
        case 'ReturnStatement':
            return list('return', opt(n.expr))
        case 'ThrowStatement':
            return list('throw', opt(n.expr))
        case 'IfStatement':
            return list('if', canon(n.expr), canon(n.then), opt(n.else_))
        case 'WhileStatement':
            return list('while', canon(n.expr), opt(n.body))
        case 'ForStatement':
            return list('for', forClause(n.initializer), opt(n.condition), forClause(n.increment), canon(n.body))
        case 'ForInStatement':
            return list('forin', n.keyVar ? hex(n.keyVar) : 'none', hex(n.valueVar), canon(n.expr), canon(n.body))
        case 'Function':
            return list('fun', hex(n.name), list(...n.params.map(hex)), canon(n.body))
        case 'TryCatchStatement':
            return list(
                'try',
                canon(n.try_stmt),
                ...n.catches.map(([v, t, b]) => list('catch', v ? hex(v) : 'none', t ? hex(t) : 'none', canon(b))),
                opt(n.finally_stmt)
            )
        case 'Constant':
            return constant(n.value)
        case 'Field':
            return list('field', ...n.chain.map(hex))
        case 'ArrayAccess':
            return list(n.nullish ? 'get?' : 'get', canon(n.array), canon(n.property))
        case 'TupleAccess':
            return list(n.nullish ? 'tget?' : 'tget', canon(n.tuple), String(n.index))
        case 'Call': {
            if (n.params !== null && n.params !== undefined) {
                return list('exprcall', list('call', hex(n.name), ...n.params.map(canon)), ...n.args.map(canon))
            }
            return list('call', hex(n.name), ...n.args.map(canon))
        }
        case 'ExprCall':
            return list('exprcall', canon(n.expr), ...n.args.map(canon))
        case 'And':
            return list('and', ...n.exprs.map(canon))
        case 'Or':
            return list('or', ...n.exprs.map(canon))
        case 'Not':
            return list('not', canon(n.expr))
        case 'CompareOperation':
            return list('cmp', JSON.stringify(n.op), canon(n.left), canon(n.right))
        case 'ArithmeticOperation':
            return list('arith', JSON.stringify(n.op), canon(n.left), canon(n.right))
        case 'BetweenExpr':
            return list('between', String(!!n.negated), canon(n.expr), canon(n.low), canon(n.high))
        case 'Lambda':
            return list('lambda', list(...n.args.map(hex)), lambdaBody(n.expr))
        case 'Placeholder':
            return list('placeholder', canon(n.expr))
        case 'Dict':
            return list('dict', ...n.items.map(([k, v]) => list(canon(k), canon(v))))
        case 'Array':
            return list('array', ...n.exprs.map(canon))
        case 'Tuple':
            return list('tuple', ...n.exprs.map(canon))
    }
    throw new Error('unsupported node ' + n.node)
}

async function main() {
    const dir = process.env.HOGWIRE_REFVM_DIR
    if (!dir) {
        throw new Error('HOGWIRE_REFVM_DIR is not set')
    }
    const mod = require(path.join(dir, 'node_modules', '@posthog', 'hogql-parser', 'dist', 'index.cjs'))
    const parser = await (mod.createHogQLParser || mod.default)()
    for (const file of process.argv.slice(2)) {
        let out
        try {
            const text = fs.readFileSync(file, 'utf8')
            const res = JSON.parse(
                file.endsWith('.tpl')
                    ? parser.parseFullTemplateString("F'" + text, true)
                    : parser.parseProgram(text, true)
            )
            out = res.error ? 'error' : canon(res)
        } catch (e) {
            out = 'unsupported: ' + (e && e.message ? e.message : e)
        }
        fs.writeFileSync(file + '.ast', out)
    }
}

main().catch((e) => {
    console.error(e)
    process.exit(1)
})
