package bytecode

// Version is the bytecode version this package reads and writes.
const Version = 1

// Program is one compiled Hog program: the elements that follow the
// ["_H", version] header.
//
// Each element of Code is an int64 (an opcode or an integer operand), a
// float64, a string or a bool, exactly as it appears in the JSON form.
// Positions and jump offsets count elements of Code.
type Program struct {
	Version int
	Code    []any
}
