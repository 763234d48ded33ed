//go:build !linux

package ingest

func spreadSubfolders(dir string) {}
