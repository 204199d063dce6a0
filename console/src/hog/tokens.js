// External tokenizer for Hog's template strings, f'…{expr}…': an embedded
// expression may hold strings and template strings of its own, braces
// included, so the end is found by tracking nesting.
import { ExternalTokenizer } from '@lezer/lr'
import { TemplateString } from './parser.terms.js'

const quote = 39, backslash = 92, lbrace = 123, rbrace = 125, f = 102, F = 70

export const templateString = new ExternalTokenizer((input) => {
  if ((input.next !== f && input.next !== F) || input.peek(1) !== quote) return
  input.advance(2)
  // Each entry is what the innermost open construct is: a template's text
  // ('t'), an embedded expression ('e'), or a plain string inside one ('s').
  const stack = ['t']
  while (input.next >= 0) {
    const top = stack[stack.length - 1]
    const c = input.next
    if (top === 'e') {
      if (c === rbrace) stack.pop()
      else if (c === lbrace) stack.push('e')
      else if ((c === f || c === F) && input.peek(1) === quote) { input.advance(); stack.push('t') }
      else if (c === quote) stack.push('s')
      input.advance()
      continue
    }
    if (c === backslash) { input.advance(2); continue }
    if (c === quote) {
      if (input.peek(1) === quote) { input.advance(2); continue }
      input.advance()
      stack.pop()
      if (stack.length === 0) { input.acceptToken(TemplateString); return }
      continue
    }
    if (c === lbrace && top === 't') stack.push('e')
    input.advance()
  }
  // Unterminated: highlight to the end all the same.
  input.acceptToken(TemplateString)
})
