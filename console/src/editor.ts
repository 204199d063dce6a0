// The CodeMirror 6 set-up of the console's Hog editor. Loaded with the
// Code and History tabs only.
import { EditorState, Compartment, type Extension } from '@codemirror/state'
import { EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection, highlightSpecialChars } from '@codemirror/view'
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands'
import { bracketMatching, foldGutter, foldKeymap, indentOnInput, syntaxHighlighting, HighlightStyle } from '@codemirror/language'
import { tags as t } from '@lezer/highlight'
import { closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete'
import { searchKeymap, highlightSelectionMatches } from '@codemirror/search'
import { linter, lintGutter, lintKeymap, type Diagnostic } from '@codemirror/lint'
import { unifiedMergeView } from '@codemirror/merge'
import { hog } from './hog/language'

// Colours with at least 4.5:1 contrast on white (WCAG AA), unlike
// CodeMirror's default style.
const hogHighlightStyle = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.definitionKeyword, t.operatorKeyword], color: '#8250df', fontWeight: '600' },
  { tag: [t.string, t.special(t.string)], color: '#0a3069' },
  { tag: [t.number, t.bool, t.null], color: '#0550ae' },
  { tag: [t.lineComment, t.blockComment], color: '#57606a', fontStyle: 'italic' },
  { tag: t.function(t.variableName), color: '#6639ba' },
  { tag: t.definition(t.variableName), color: '#953800' },
  { tag: t.propertyName, color: '#116329' },
  { tag: [t.compareOperator, t.arithmeticOperator, t.definitionOperator, t.operator], color: '#cf222e' },
  { tag: t.invalid, color: '#82071e' },
])

export { EditorView, EditorState, Compartment, unifiedMergeView }
export type { Diagnostic }

/**
 * The editor's extensions: Hog highlighting, and check(source) run as the
 * user types to give diagnostics. Tab indents; Escape then Tab leaves the
 * editor (CodeMirror's tab-focus mode), so the keyboard is never trapped.
 */
export function hogEditor(opts: { label: string; check?: (src: string) => Promise<Diagnostic[]>; readOnly?: boolean; onChange?: (src: string) => void }): Extension[] {
  const ext: Extension[] = [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    foldGutter(),
    drawSelection(),
    indentOnInput(),
    syntaxHighlighting(hogHighlightStyle),
    bracketMatching(),
    closeBrackets(),
    highlightActiveLine(),
    highlightSelectionMatches(),
    keymap.of([indentWithTab, ...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...foldKeymap, ...lintKeymap]),
    hog(),
    // Focusable even when read-only, so the keyboard can scroll it.
    EditorView.contentAttributes.of({ 'aria-label': opts.label, tabindex: '0' }),
    EditorState.tabSize.of(2),
  ]
  if (opts.readOnly) ext.push(EditorState.readOnly.of(true), EditorView.editable.of(false))
  if (opts.check) {
    const check = opts.check
    ext.push(lintGutter(), linter((view) => check(view.state.doc.toString()), { delay: 400 }))
  }
  if (opts.onChange) {
    const f = opts.onChange
    ext.push(EditorView.updateListener.of((u) => u.docChanged && f(u.state.doc.toString())))
  }
  return ext
}

/** Turns "line 3, column 7: msg" (the server's compile errors) into a diagnostic. */
export function compileDiagnostic(doc: EditorState['doc'], text: string): Diagnostic {
  const m = /^line (\d+), column (\d+): (.*)$/s.exec(text)
  if (!m) return { from: 0, to: Math.min(doc.length, doc.line(1).to), severity: 'error', message: text }
  const line = doc.line(Math.min(Math.max(1, Number(m[1])), doc.lines))
  const from = Math.min(line.to, line.from + Math.max(0, Number(m[2]) - 1))
  // Underline the word at the error, or one character.
  const rest = doc.sliceString(from, line.to)
  const word = /^[\w$]+/.exec(rest)?.[0].length ?? 1
  return { from, to: Math.min(line.to, from + word) || from, severity: 'error', message: m[3] }
}
