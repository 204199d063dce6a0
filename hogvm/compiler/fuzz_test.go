package compiler_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/compiler"
)

// FuzzCompile checks that no input makes the compiler panic or hang, and
// that everything it produces is well formed: valid JSON, and every jump
// lands on an instruction.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.hog")
	for _, name := range files {
		if src, err := os.ReadFile(name); err == nil {
			f.Add(string(src))
		}
	}
	for _, s := range []string{"", "x between 1 and 2", "print(1, x between a and b)", "try {} catch (x: T) {}", "{a}"} {
		f.Add(s)
	}
	opts := compiler.Options{AllowUnknownFunctions: true}
	f.Fuzz(func(t *testing.T, src string) {
		for _, compile := range []func(string, compiler.Options) (*bytecode.Program, error){
			compiler.Compile, compiler.CompileExpr, compiler.CompileTemplate,
		} {
			p, err := compile(src, opts)
			if err != nil {
				continue
			}
			data, err := json.Marshal(p)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			if !json.Valid(data) {
				t.Fatalf("invalid JSON: %s", data)
			}
			_ = bytecode.Format(p)
			if err := checkJumps(p.Code); err != nil {
				t.Fatalf("%v\nsource: %q\ncode: %v", err, src, p.Code)
			}
		}
	})
}

func TestCheckJumpsOnTestPrograms(t *testing.T) {
	files, _ := filepath.Glob("testdata/*/*.hog")
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := compiler.Compile(string(src), compiler.Options{Functions: []string{"fetch"}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := checkJumps(p.Code); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// operandCount is the number of inline operands of each opcode (CLOSURE
// has 1 + 2n).
var operandCount = map[bytecode.Op]int{
	bytecode.GetGlobal: 1, bytecode.CallGlobal: 2, bytecode.And: 1, bytecode.Or: 1,
	bytecode.String: 1, bytecode.Integer: 1, bytecode.Float: 1, bytecode.GetLocal: 1,
	bytecode.SetLocal: 1, bytecode.Jump: 1, bytecode.JumpIfFalse: 1, bytecode.DeclareFn: 3,
	bytecode.Dict: 1, bytecode.Array: 1, bytecode.Tuple: 1, bytecode.JumpIfStackNotNull: 1,
	bytecode.Try: 1, bytecode.Callable: 4, bytecode.Closure: 1, bytecode.CallLocal: 1,
	bytecode.GetUpvalue: 1, bytecode.SetUpvalue: 1,
}

type jumpError struct {
	at, target int
}

func (e jumpError) Error() string {
	return "jump at element " + itoa(e.at) + " lands on element " + itoa(e.target) + ", not on an instruction"
}

func itoa(i int) string { return strconv.Itoa(i) }

// checkJumps decodes the instruction stream and checks that every relative
// jump (and every CALLABLE body) ends on an instruction boundary.
func checkJumps(code []any) error {
	starts := map[int]bool{len(code): true}
	type jump struct{ at, target int }
	var jumps []jump
	for i := 0; i < len(code); {
		starts[i] = true
		opv, ok := code[i].(int64)
		if !ok {
			return jumpError{i, i}
		}
		op := bytecode.Op(opv)
		n := operandCount[op]
		if op == bytecode.Closure && i+1 < len(code) {
			cnt, _ := code[i+1].(int64)
			n += 2 * int(cnt)
		}
		if i+n >= len(code) {
			return jumpError{i, i + n}
		}
		switch op {
		case bytecode.Jump, bytecode.JumpIfFalse, bytecode.JumpIfStackNotNull:
			off, _ := code[i+1].(int64)
			jumps = append(jumps, jump{i, i + 2 + int(off)})
		case bytecode.Try:
			// The reference VM computes the catch address from the
			// operand's position: TRY at i, catch at i + 1 + off.
			off, _ := code[i+1].(int64)
			jumps = append(jumps, jump{i, i + 1 + int(off)})
		case bytecode.Callable:
			body, _ := code[i+4].(int64)
			jumps = append(jumps, jump{i, i + 5 + int(body)})
		}
		i += 1 + n
	}
	for _, j := range jumps {
		if !starts[j.target] {
			return jumpError(j)
		}
	}
	return nil
}
