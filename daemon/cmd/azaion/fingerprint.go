package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/azaion/edge/daemon/internal/fingerprint"
)

func init() {
	register(&command{Name: "fingerprint", Summary: "print this machine's hardware hash (--explain: its fields)", Run: runFingerprint})
}

func runFingerprint(ctx context.Context, args []string) error {
	fs := newFlags("fingerprint")
	explain := fs.Bool("explain", false, "print the fields and the canonical string that is hashed")
	asJSON := fs.Bool("json", false, "print the fingerprint as JSON")
	root := fs.String("root", "/", "filesystem root holding /proc and /sys (for testing)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("unexpected arguments %q", fs.Args())
	}
	f := fingerprint.Collect(fingerprint.Options{Root: *root})
	switch {
	case *asJSON:
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(f)
	case *explain:
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FIELD\tVALUE\tNOTE")
		for _, fl := range f.Fields {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", fl.Name, fl.Value, fl.Note)
		}
		tw.Flush()
		fmt.Printf("\ncanonical string (SHA-256 of it is the hardware hash):\n%s\nhardware hash: %s\n", f.Canonical, f.Hash)
	default:
		fmt.Println(f.Hash)
	}
	return nil
}
