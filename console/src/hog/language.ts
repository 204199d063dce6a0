import { LRLanguage, LanguageSupport, foldNodeProp, foldInside, indentNodeProp, continuedIndent, delimitedIndent } from '@codemirror/language'
import { parser } from './parser.js'

// Hog for CodeMirror: the Lezer grammar in hog.grammar (compiled to
// parser.js by `npm run lezer`), with folding and indentation.
export const hogLanguage = LRLanguage.define({
  name: 'hog',
  parser: parser.configure({
    props: [
      indentNodeProp.add({
        Block: delimitedIndent({ closing: '}' }),
        DictExpression: delimitedIndent({ closing: '}' }),
        ArrayExpression: delimitedIndent({ closing: ']' }),
        ArgList: delimitedIndent({ closing: ')' }),
        'IfStatement WhileStatement ForStatement ForInStatement': continuedIndent({ except: /^\s*\{/ }),
      }),
      foldNodeProp.add({ 'Block DictExpression ArrayExpression': foldInside, BlockComment: (n) => ({ from: n.from + 2, to: n.to - 2 }) }),
    ],
  }),
  languageData: {
    commentTokens: { line: '//', block: { open: '/*', close: '*/' } },
    closeBrackets: { brackets: ['(', '[', '{', "'"] },
  },
})

export function hog(): LanguageSupport {
  return new LanguageSupport(hogLanguage)
}
