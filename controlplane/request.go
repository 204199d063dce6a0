package controlplane

import (
	"crypto/rand"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// maskPaths returns the fields an update changes. With no mask, every
// allowed field that msg sets is implied (AIP-134); "*" means every allowed
// field. A path "a.b" is accepted when "a" is a map field that is allowed.
func maskPaths(mask *fieldmaskpb.FieldMask, msg proto.Message, allowed []string) ([]string, error) {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	if len(mask.GetPaths()) == 0 {
		var out []string
		fields := msg.ProtoReflect().Descriptor().Fields()
		for _, a := range allowed {
			if fd := fields.ByName(protoreflect.Name(a)); fd != nil && msg.ProtoReflect().Has(fd) {
				out = append(out, a)
			}
		}
		return out, nil
	}
	var out []string
	var v violations
	for _, p := range mask.GetPaths() {
		if p == "*" {
			return allowed, nil
		}
		head, _, sub := strings.Cut(p, ".")
		fd := msg.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(head))
		switch {
		case ok[p]:
		case sub && ok[head] && fd != nil && fd.IsMap():
		default:
			v.add("update_mask", "%q is not a field that can be updated (allowed: %s)", p, strings.Join(allowed, ", "))
			continue
		}
		out = append(out, p)
	}
	return out, v.err()
}

// newID returns a random id with the given one-letter prefix: a letter then
// 12 characters of lowercase base32, valid per AIP-122.
func newID(prefix string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("controlplane: crypto/rand: " + err.Error())
	}
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return prefix + string(b[:])
}
