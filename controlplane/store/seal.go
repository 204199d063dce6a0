package store

import (
	"encoding/json"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	hogwirev1 "github.com/hogwire/hogwire/api/hogwire/v1"
	"github.com/hogwire/hogwire/inputs"
)

// Sealer encrypts secret input values at rest. aad binds a sealed value to
// its place (destination and input), so it cannot be moved elsewhere.
type Sealer interface {
	Seal(plaintext, aad []byte) (string, error)
	Open(sealed string, aad []byte) ([]byte, error)
}

// sealedInput is what a secret input's stored value decrypts to.
type sealedInput struct {
	Value    json.RawMessage `json:"value"`
	Bytecode json.RawMessage `json:"bytecode,omitempty"`
}

func aad(destination, key string) []byte { return []byte(destination + "\x00inputs\x00" + key) }

// Seal encodes d for etcd with every secret input's value and compiled
// templates encrypted into one string.
func (s *Store) Seal(d *hogwirev1.Destination) ([]byte, error) {
	out := proto.CloneOf(d)
	out.Health, out.Etag, out.Revision = nil, "", 0
	for key, in := range out.Inputs {
		if !in.SecretSet || in.Value == nil {
			continue
		}
		// The JSON forms keep the value's key order.
		val, _, err := inputs.Of(in)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encoding input %s: %v", key, err)
		}
		si := sealedInput{Value: json.RawMessage(val.JSON())}
		if c, ok, err := inputs.CompiledOf(in); err != nil {
			return nil, status.Errorf(codes.Internal, "encoding input %s: %v", key, err)
		} else if ok {
			si.Bytecode = json.RawMessage(c.JSON())
		}
		plain, _ := json.Marshal(si)
		sealed, err := s.Sealer.Seal(plain, aad(d.Name, key))
		if err != nil {
			return nil, status.Errorf(codes.Internal, "sealing input %s: %v", key, err)
		}
		in.Value, in.Bytecode, in.ValueJson, in.BytecodeJson = structpb.NewStringValue(sealed), nil, "", ""
	}
	b, err := proto.Marshal(out)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encoding destination: %v", err)
	}
	return b, nil
}

// Unseal decrypts the secret inputs of a stored destination in place.
func (s *Store) Unseal(d *hogwirev1.Destination) error {
	for key, in := range d.Inputs {
		if !in.SecretSet || in.Value == nil {
			continue
		}
		plain, err := s.Sealer.Open(in.Value.GetStringValue(), aad(d.Name, key))
		if err != nil {
			return status.Errorf(codes.DataLoss, "secret input %s of %s cannot be decrypted (is the secrets key right?): %v", key, d.Name, err)
		}
		var si sealedInput
		if err := json.Unmarshal(plain, &si); err != nil {
			return status.Errorf(codes.DataLoss, "secret input %s of %s: %v", key, d.Name, err)
		}
		val, err := inputs.Parse(string(si.Value))
		if err != nil {
			return status.Errorf(codes.DataLoss, "secret input %s of %s: %v", key, d.Name, err)
		}
		inputs.SetValue(in, val)
		inputs.SetCompiled(in, nil)
		if len(si.Bytecode) > 0 {
			c, err := inputs.Parse(string(si.Bytecode))
			if err != nil {
				return status.Errorf(codes.DataLoss, "secret input %s of %s: %v", key, d.Name, err)
			}
			inputs.SetCompiled(in, &c)
		}
	}
	return nil
}
