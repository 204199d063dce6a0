package vm

import (
	"errors"
	"strings"
)

// Sentinel errors for the run limits. A *LimitError matches its sentinel
// with errors.Is.
var (
	ErrTimeout         = errors.New("hog: execution timed out")
	ErrMemoryLimit     = errors.New("hog: memory limit exceeded")
	ErrStepLimit       = errors.New("hog: step limit exceeded")
	ErrCallDepth       = errors.New("hog: call stack too deep")
	ErrTooManyArgs     = errors.New("hog: too many arguments")
	ErrAsyncStepLimit  = errors.New("hog: too many async steps")
	ErrSizeLimit       = errors.New("hog: value too large")
	ErrInvalidBytecode = errors.New("hog: invalid bytecode")
	// ErrInternal marks a recovered panic: a VM bug or a panicking host
	// function.
	ErrInternal = errors.New("hog: internal error")
)

// LimitError reports that a run exceeded one of its limits.
type LimitError struct {
	Limit error  // one of the Err* sentinels above
	Msg   string // PostHog's wording, e.g. "Execution timed out after 5 seconds. Performed 123 ops."
}

func (e *LimitError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrTimeout) and friends work.
func (e *LimitError) Is(target error) bool { return target == e.Limit }

// Unwrap returns the sentinel.
func (e *LimitError) Unwrap() error { return e.Limit }

// RuntimeError is an error raised by the VM or a native function (bad
// operands, arity, invalid JSON, …). Hog code cannot catch these.
type RuntimeError struct {
	Msg string
	Err error // underlying error, e.g. from a host function; may be nil
}

func (e *RuntimeError) Error() string { return e.Msg }

// Unwrap returns the underlying error, if any.
func (e *RuntimeError) Unwrap() error { return e.Err }

// ThrownError is a Hog error value thrown with `throw` and not caught.
type ThrownError struct {
	Type    string
	Message string
	Payload Value // null when absent
}

// Error renders the error like PostHog: Type('message').
func (e *ThrownError) Error() string {
	return e.Type + "('" + strings.ReplaceAll(e.Message, "'", `\'`) + "')"
}

func rtErr(msg string) error { return &RuntimeError{Msg: msg} }
