// Command gen writes packaging/azaion.yaml (the .deb's configuration file)
// from the daemon's defaults: `go run ./daemon/internal/confdoc/gen` from the
// repository root, or `make config`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/azaion/edge/daemon/internal/confdoc"
	"github.com/azaion/edge/internal/atomicfile"
)

func main() {
	root := flag.String("root", ".", "repository root")
	out := flag.String("o", "packaging/azaion.yaml", "file to write")
	flag.Parse()
	b, err := confdoc.Render(*root)
	if err == nil {
		err = atomicfile.Write(filepath.Clean(*out), b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "confdoc:", err)
		os.Exit(1)
	}
}
