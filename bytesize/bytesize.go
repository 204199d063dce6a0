// Package bytesize reads and writes byte counts the way people write
// them ("20MiB", "1MB", "1048576"), as flag values for pflag and the
// standard flag package.
package bytesize

import (
	"fmt"

	"github.com/dustin/go-humanize"
)

// Max is the largest size a flag accepts.
const Max = 1 << 50

// Format writes n the way it was most likely given: "20 MiB", "1.0 MB".
// Zero is "0", which flag packages take for an unset default.
func Format(n int64) string {
	switch {
	case n == 0:
		return "0"
	case n%1024 == 0:
		return humanize.IBytes(uint64(n))
	}
	return humanize.Bytes(uint64(n))
}

// Parse reads a size between 1 byte and Max.
func Parse(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, err
	}
	if n == 0 || n > Max {
		return 0, fmt.Errorf("%s is not a size between 1 byte and 1 PiB", s)
	}
	return int64(n), nil
}

// Int64 is a flag value of bytes held in an int64.
type Int64 int64

func (b *Int64) String() string { return Format(int64(*b)) }

// Type names the value in pflag's usage lines.
func (*Int64) Type() string { return "size" }

func (b *Int64) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	*b = Int64(n)
	return nil
}

// Int is a flag value of bytes held in an int.
type Int int

func (b *Int) String() string { return Format(int64(*b)) }

// Type names the value in pflag's usage lines.
func (*Int) Type() string { return "size" }

func (b *Int) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	if n > 1<<31-1 {
		return fmt.Errorf("%s is too large", s)
	}
	*b = Int(n)
	return nil
}
