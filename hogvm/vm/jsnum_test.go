package vm_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/hogwire/hogwire/hogvm/vm"
)

// jsNumber is Number.prototype.toString, written plainly: the digits and
// exponent of the shortest representation, placed as ECMAScript says.
func jsNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e18 {
		return strconv.FormatInt(int64(f), 10)
	}
	switch {
	case f != f:
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	k, n := len(digits), x+1
	switch {
	case k <= n && n <= 21:
		return sign + digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return sign + digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return sign + "0." + strings.Repeat("0", -n) + digits
	}
	out := sign + digits[:1]
	if k > 1 {
		out += "." + digits[1:]
	}
	if n-1 >= 0 {
		out += "e+"
	} else {
		out += "e"
	}
	return out + strconv.Itoa(n-1)
}

// Numbers print as JavaScript prints them, whatever their size.
func TestNumberToString(t *testing.T) {
	nums := []float64{0.1, -0.5, 1714737600.123, 1e21, 1.5e21, 1e-7, 1.25e-7, 123e-20, 0.000001, -0.000001234, 1e300, 5e-324,
		math.MaxFloat64, 1e18 + 0.5, 123456789012345680000, math.NaN(), math.Inf(1), math.Inf(-1), 42, -7}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		nums = append(nums, math.Float64frombits(r.Uint64()), r.Float64()*math.Pow(10, float64(r.IntN(60)-30)))
	}
	for _, f := range nums {
		got := vm.FormatOutput(vm.Number(f))
		if want := jsNumber(f); got != want {
			t.Fatalf("%v: %q, want %q", f, got, want)
		}
	}
}
