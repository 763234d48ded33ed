//go:build !linux

package modelstore

// exchange swaps two existing paths (no atomic exchange here: see
// exchangeByRenames).
func exchange(a, b string) error { return exchangeByRenames(a, b) }
