package vm

// RootOps returns the opcodes of p's linked root chunk, fused ones
// included, for tests that check what Link fuses.
func RootOps(p *Program) []uint8 {
	ops := make([]uint8, len(p.root.code))
	for i, in := range p.root.code {
		ops[i] = in.op
	}
	return ops
}

// OpGlobalCompare is the fused constant-path-comparison opcode.
const OpGlobalCompare = opGlobalCompare

// OpGlobalCall and OpGlobalCallCompare are the fused call opcodes.
const (
	OpGlobalCall        = opGlobalCall
	OpGlobalCallCompare = opGlobalCallCompare
)
