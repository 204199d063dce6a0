// Package hogvm is hogwire's implementation of Hog, PostHog's language for
// destinations, filters and input templates, compatible with PostHog's
// bytecode. It is layered like a small compiler toolchain, one package per
// job:
//
//   - lexer: Hog source to tokens;
//   - parser and ast: tokens to a syntax tree, with positions for errors;
//   - compiler: the tree to bytecode in PostHog's format (["_H", 1, …]), for
//     programs (compiler.Compile), expressions such as filters
//     (compiler.CompileExpr) and template strings such as
//     'Hi {event.properties.name}' (compiler.CompileTemplate);
//   - bytecode: the opcodes and the JSON and .hoge forms of a program;
//   - vm: links bytecode once and runs it, with the standard library, async
//     host functions (fetch) that pause and resume, and limits.
//
// A typical embedding compiles at save time and runs many times:
//
//	p, err := compiler.Compile(src, compiler.Options{Functions: []string{"fetch"}})
//	prog, err := vm.Link(p, stl.Library())
//	m := vm.New(vm.Options{AsyncFunctions: []string{"fetch"}, Print: logLine})
//	res, err := m.Run(ctx, prog, globals)
//
// The tests of this package run every corpus program through our compiler
// and our VM and compare the output with the expected .stdout; when PostHog's
// reference VM is installed (hogvm/compiler/testdata/refvm/install.sh, which
// CI runs) they also run our bytecode on it and require identical output.
package hogvm
