// Command azaion is the one user-facing binary of Azaion Edge: `azaion serve`
// runs the daemon; the other subcommands are clients and tools that talk to a
// running daemon or work on local files. Each subcommand lives in its own file
// and registers itself with register.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/azaion/edge/sdk/version"
)

// command is one subcommand. Name may hold spaces for nested commands
// ("models pull"); the longest registered prefix of the arguments wins.
type command struct {
	Name    string
	Summary string
	// Run gets the arguments after the command name. It returns errUsage
	// (possibly wrapped) for bad usage, which exits 2.
	Run func(ctx context.Context, args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.Name]; dup {
		panic("azaion: duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

// errUsage marks an error as a usage error (exit status 2).
var errUsage = errors.New("usage")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		return 0
	}
	if args[0] == "--version" {
		fmt.Fprintln(stdout, "azaion", version.Version)
		return 0
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		fmt.Fprintf(stderr, "azaion: unknown command %q\n\n", strings.Join(args, " "))
		printUsage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.Run(ctx, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "azaion %s: %v\n", cmd.Name, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func lookup(args []string) (*command, []string) {
	for n := len(args); n > 0; n-- {
		if c, ok := commands[strings.Join(args[:n], " ")]; ok {
			return c, args[n:]
		}
	}
	return nil, nil
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "azaion %s: YOLO object detection daemon and tools\n\nUsage: azaion COMMAND [flags]\n\nCommands:\n", version.Version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-24s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(w, "\nRun 'azaion COMMAND -h' for a command's flags.")
}

// newFlags returns a FlagSet for a subcommand that reports errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("azaion "+name, flag.ContinueOnError)
	return fs
}

// parseFlags parses args and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}
