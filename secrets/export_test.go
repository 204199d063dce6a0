package secrets

// IsSealed reports whether s has the form of a sealed value. It does not
// check that any key opens it.
func IsSealed(s string) bool {
	_, _, err := split(s)
	return err == nil
}
