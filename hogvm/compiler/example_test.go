package compiler_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/hogwire/hogwire/hogvm/bytecode"
	"github.com/hogwire/hogwire/hogvm/compiler"
)

func ExampleCompile() {
	prog, err := compiler.Compile(`
		let res := fetch(inputs.url, {'method': 'POST', 'body': event})
		if (res.status >= 400) {
			throw Error(f'failed with {res.status}')
		}
	`, compiler.Options{Functions: []string{"fetch"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(prog.Code) > 0)
	// Output: true
}

func ExampleCompileExpr() {
	prog, err := compiler.CompileExpr(`event = '$pageview' and properties.$browser = 'Chrome'`, compiler.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := json.Marshal(prog)
	fmt.Println(string(out))
	// Output: ["_H",1,32,"$pageview",32,"event",1,1,11,32,"Chrome",32,"$browser",32,"properties",1,2,11,3,2,38]
}

func ExampleCompileTemplate() {
	prog, err := compiler.CompileTemplate(`Hello {person.properties.name}!`, compiler.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	os.Stdout.Write(bytecode.Format(prog))
	// Output: ["_H", 1, 32, "Hello ", 32, "name", 32, "properties", 32, "person", 1, 3, 32, "!", 2, "concat", 3, 38]
}

func ExampleError() {
	_, err := compiler.Compile("let x := 1\nprint(x\n}", compiler.Options{})
	var cerr *compiler.Error
	if errors.As(err, &cerr) {
		fmt.Printf("%d:%d %s\n", cerr.Line, cerr.Column, cerr.Msg)
	}
	// Output: 3:1 expected ')' after arguments, got '}'
}
