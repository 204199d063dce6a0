package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/executor"
	"github.com/hogwire/hogwire/filters"
	"github.com/hogwire/hogwire/hogvm/compiler"
)

// The whole flow: a destination as the control plane stores it (compiled),
// prepared once; an event's globals built once; one invocation.
func Example() {
	// What the control plane sends: the program, the filters and the
	// templated input, each compiled to bytecode.
	prog, _ := compiler.Compile(`
let res := fetch(inputs.url, {'body': {'event': event.event, 'email': person.properties.email}})
print('status', res.status)`, compiler.Options{Functions: []string{"fetch", "postHogCapture"}})
	progJSON, _ := json.Marshal(prog)
	f := &hogwirev1.Filters{Events: []*hogwirev1.EventFilter{{Event: "signed_up"}}}
	f.Bytecode, _ = filters.Compile(f)
	url, _ := compiler.CompileTemplate("https://hooks.example.com/{project.id}", compiler.Options{})
	urlJSON, _ := json.Marshal(url)
	urlBytecode := &structpb.Value{}
	_ = urlBytecode.UnmarshalJSON(urlJSON)

	dest, err := executor.Prepare(&hogwirev1.Destination{
		Name:         "projects/acme/destinations/signups",
		DisplayName:  "Sign-ups webhook",
		Bytecode:     progJSON,
		Filters:      f,
		InputsSchema: []*hogwirev1.InputSchema{{Key: "url", Type: hogwirev1.InputType_INPUT_TYPE_STRING}},
		Inputs: map[string]*hogwirev1.InputValue{"url": {
			Value:    structpb.NewStringValue("https://hooks.example.com/{project.id}"),
			Bytecode: urlBytecode,
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	g := executor.NewEvent(&hogwirev1.Event{
		Uuid:       "0190f7f0-0000-7000-8000-000000000001",
		Event:      "signed_up",
		DistinctId: "user-1",
		Timestamp:  timestamppb.New(time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC)),
		Set:        &structpb.Struct{Fields: map[string]*structpb.Value{"email": structpb.NewStringValue("max@acme.example")}},
	}, &hogwirev1.Project{Name: "projects/acme", DisplayName: "Acme"}, executor.Source{URL: "https://hogwire.example.com"})

	res := dest.Invoke(context.Background(), g, executor.Options{Fetcher: executor.MockFetcher{}})
	fmt.Println(res.Status)
	req := res.Fetches[0].Request
	fmt.Println(req.Method, req.URL, flat(req.Header), string(req.Body))
	fmt.Println(res.Logs[0].Message)
	// Output:
	// succeeded
	// POST https://hooks.example.com/acme map[Content-Type:application/json] {"event":"signed_up","email":"max@acme.example"}
	// status, 200
}
