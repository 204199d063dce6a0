package stl

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hogwire/hogwire/hogvm/vm"
)

// decodeBase64Lenient decodes like Node's Buffer.from(s, 'base64'): both
// alphabets, padding optional, anything else skipped.
func decodeBase64Lenient(s string) []byte {
	var out []byte
	var acc uint32
	bits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var v byte
		switch {
		case c >= 'A' && c <= 'Z':
			v = c - 'A'
		case c >= 'a' && c <= 'z':
			v = c - 'a' + 26
		case c >= '0' && c <= '9':
			v = c - '0' + 52
		case c == '+' || c == '-':
			v = 62
		case c == '/' || c == '_':
			v = 63
		case c == '=':
			i = len(s)
			continue
		default:
			continue
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	return out
}

// utf8Lossy is Buffer.toString(): invalid sequences become U+FFFD.
func utf8Lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		sb.WriteRune(r) // utf8.RuneError for each invalid byte
		b = b[n:]
	}
	return sb.String()
}

const uriUnreserved = "-_.!~*'()"

func encodeURIComponent(s string) string {
	var sb strings.Builder
	const hexd = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strings.IndexByte(uriUnreserved, c) >= 0 {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hexd[c>>4])
		sb.WriteByte(hexd[c&15])
	}
	return sb.String()
}

func decodeURIComponent(s string) (string, bool) {
	if !strings.Contains(s, "%") {
		return s, true
	}
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		out = append(out, byte(b))
		i += 2
	}
	if !utf8.Valid(out) {
		return "", false
	}
	return string(out), true
}

func encodeDigest(sum []byte, enc string) (string, error) {
	switch enc {
	case "", "hex":
		return hex.EncodeToString(sum), nil
	case "base64":
		return base64.StdEncoding.EncodeToString(sum), nil
	case "base64url":
		return base64.RawURLEncoding.EncodeToString(sum), nil
	case "binary", "latin1":
		r := make([]rune, len(sum))
		for i, b := range sum {
			r[i] = rune(b)
		}
		return string(r), nil
	}
	return "", rtErr("Unknown digest encoding: " + enc)
}

func (l *builder) hashFn(name string, newHash func() hash.Hash, withEncoding bool) {
	max := 1
	if withEncoding {
		max = 2
	}
	l.def(name, 1, max, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		if a[0].Kind() == vm.KindNull {
			return vm.Null, nil
		}
		if a[0].Kind() != vm.KindString {
			return vm.Null, typeError(name, a[0])
		}
		h := newHash()
		h.Write([]byte(a[0].AsString()))
		enc := ""
		if withEncoding && arg(a, 1).Kind() != vm.KindNull {
			enc = vm.JSString(a[1])
		}
		s, err := encodeDigest(h.Sum(nil), enc)
		return vm.String(s), err
	})
}

func (l *builder) hmacChainFn(name string, newHash func() hash.Hash, withEncoding bool) {
	max := 1
	if withEncoding {
		max = 2
	}
	l.def(name, 1, max, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		elems, ok := elemsOf(a[0])
		if !ok || len(elems) < 2 {
			return vm.Null, rtErr("Data array must contain at least two elements.")
		}
		mac := hmac.New(newHash, []byte(vm.JSString(elems[0])))
		mac.Write([]byte(vm.JSString(elems[1])))
		for _, e := range elems[2:] {
			mac = hmac.New(newHash, mac.Sum(nil))
			mac.Write([]byte(vm.JSString(e)))
		}
		enc := ""
		if withEncoding && arg(a, 1).Kind() != vm.KindNull {
			enc = vm.JSString(a[1])
		}
		s, err := encodeDigest(mac.Sum(nil), enc)
		return vm.String(s), err
	})
}

// ipBytes parses an address with the strict rules of PostHog's
// isIPAddressInRange: canonical dotted quads, full or ::-compressed IPv6.
func ipBytes(ip string, v4 bool) []byte {
	if v4 {
		parts := strings.Split(ip, ".")
		if len(parts) != 4 {
			return nil
		}
		b := make([]byte, 4)
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != p {
				return nil
			}
			b[i] = byte(n)
		}
		return b
	}
	var segs []string
	if strings.Contains(ip, "::") {
		if strings.Count(ip, "::") > 1 {
			return nil
		}
		pre, post, _ := strings.Cut(ip, "::")
		var ps, qs []string
		if pre != "" {
			ps = strings.Split(pre, ":")
		}
		if post != "" {
			qs = strings.Split(post, ":")
		}
		if len(ps)+len(qs) > 7 {
			return nil
		}
		segs = append(segs, ps...)
		for i := 0; i < 8-len(ps)-len(qs); i++ {
			segs = append(segs, "0")
		}
		segs = append(segs, qs...)
	} else {
		segs = strings.Split(ip, ":")
		if len(segs) != 8 {
			return nil
		}
	}
	b := make([]byte, 16)
	for i, s := range segs {
		if s == "" {
			return nil
		}
		// parseInt(s, 16): the leading hex digits count, the rest is ignored.
		n, err := strconv.ParseUint(hexPrefix(s), 16, 32)
		if err != nil || n > 0xffff {
			return nil
		}
		b[2*i], b[2*i+1] = byte(n>>8), byte(n)
	}
	return b
}

func hexPrefix(s string) string {
	i := 0
	for i < len(s) && strings.IndexByte("0123456789abcdefABCDEF", s[i]) >= 0 {
		i++
	}
	return s[:i]
}

func ipInRange(address, prefix string) bool {
	if address == "" || prefix == "" {
		return false
	}
	parts := strings.Split(prefix, "/")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return false
	}
	net, mask := parts[0], parts[1]
	cidrF := vm.ToNumber(vm.String(mask))
	if cidrF != cidrF || cidrF < 0 {
		return false
	}
	v4 := strings.Contains(address, ".") && strings.Contains(net, ".")
	v6 := !v4 && strings.Contains(address, ":") && strings.Contains(net, ":")
	if !v4 && !v6 || (v4 && cidrF > 32) || (v6 && cidrF > 128) {
		return false
	}
	a, n := ipBytes(address, v4), ipBytes(net, v4)
	if a == nil || n == nil {
		return false
	}
	cidr := int(cidrF)
	full := cidr >> 3
	for i := 0; i < full; i++ {
		if a[i] != n[i] {
			return false
		}
	}
	if bits := cidr & 7; bits != 0 && full < len(a) {
		m := byte(0xff << (8 - bits))
		if a[full]&m != n[full]&m {
			return false
		}
	}
	return true
}

func (l *builder) registerEncoding() {
	l.def("base64Encode", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		if a[0].Kind() != vm.KindString {
			return vm.Null, typeError("base64Encode", a[0])
		}
		return vm.String(base64.StdEncoding.EncodeToString([]byte(a[0].AsString()))), nil
	})
	l.def("base64Decode", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		if a[0].Kind() != vm.KindString {
			return vm.Null, typeError("base64Decode", a[0])
		}
		return vm.String(utf8Lossy(decodeBase64Lenient(a[0].AsString()))), nil
	})
	l.def("tryBase64Decode", 1, 1, pure(func(a []vm.Value) vm.Value {
		if a[0].Kind() != vm.KindString {
			return vm.String("")
		}
		return vm.String(utf8Lossy(decodeBase64Lenient(a[0].AsString())))
	}))
	l.def("encodeURLComponent", 1, 1, pure(func(a []vm.Value) vm.Value { return vm.String(encodeURIComponent(vm.JSString(a[0]))) }))
	l.def("decodeURLComponent", 1, 1, func(_ vm.Env, a []vm.Value) (vm.Value, error) {
		s, ok := decodeURIComponent(vm.JSString(a[0]))
		if !ok {
			return vm.Null, rtErr("URIError: URI malformed")
		}
		return vm.String(s), nil
	})
	l.def("tryDecodeURLComponent", 1, 1, pure(func(a []vm.Value) vm.Value {
		s, ok := decodeURIComponent(vm.JSString(a[0]))
		if !ok {
			return vm.Null
		}
		return vm.String(s)
	}))
	l.hashFn("md5Hex", md5.New, false)
	l.hashFn("md5", md5.New, true)
	l.hashFn("sha1Hex", sha1.New, false)
	l.hashFn("sha1", sha1.New, true)
	l.hashFn("sha256Hex", sha256.New, false)
	l.hashFn("sha256", sha256.New, true)
	l.hmacChainFn("sha1HmacChainHex", sha1.New, false)
	l.hmacChainFn("sha1HmacChain", sha1.New, true)
	l.hmacChainFn("sha256HmacChainHex", sha256.New, false)
	l.hmacChainFn("sha256HmacChain", sha256.New, true)
	l.def("isIPAddressInRange", 2, 2, pure(func(a []vm.Value) vm.Value {
		if a[0].Kind() != vm.KindString || a[1].Kind() != vm.KindString {
			return vm.Bool(false)
		}
		return vm.Bool(ipInRange(a[0].AsString(), a[1].AsString()))
	}))
}
