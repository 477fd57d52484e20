// Command hiqlite is the command line of hiqlite: a guided demo, a node
// run as a process, an SQL shell, a status report and development
// certificates.
//
//	hiqlite demo [--dir DIR]                 a 3-node cluster on loopback, step by step
//	hiqlite serve --dsn DSN [--http ADDR]    run a node, with health and status over HTTP
//	hiqlite shell --dsn DSN                  an SQL shell on a node
//	hiqlite status --dsn DSN | --http ADDR   print a node's id, leader, applied index, members
//	hiqlite backup --dsn DSN --to DEST       take a backup (a directory or s3://bucket/prefix); also backup list|verify SRC
//	hiqlite restore --from SRC --dir DIR     make a data dir from a backup that boots a new cluster with its data
//	hiqlite cert --dir DIR [--nodes N,...]   make a development CA and node certificates for TLS
//	hiqlite bench [--json FILE] [--quick]    measure a 3-node loopback cluster beside plain SQLite and bare Raft
//	hiqlite version                          print the module version and VCS revision (also --version)
//
// serve runs until SIGINT or SIGTERM, then stops its node cleanly. With
// --http (default 127.0.0.1:8080; empty turns it off) it answers
// GET /healthz (200 while the node has no fault), GET /readyz (200 once the
// node is ready: leader known, caught up; ?timeout=DURATION, default 1s),
// GET /status (JSON), POST /snapshot (take a snapshot now) and
// POST /backup?to=DEST (take a backup now). With
// --http-token-file every endpoint but /healthz and /readyz requires that
// bearer token; without one, /status hides the data directory and
// POST /snapshot and /backup are allowed only on a loopback --http. --http-tls-cert and
// --http-tls-key serve HTTPS, re-reading renewed files. status --dsn
// opens the node in its own process, which fails while another process runs
// it; status --http asks a running serve (--http-token-file, --http-ca).
// shell, status and backup also take a remote DSN,
// hiqlite://HOST:PORT[,...]?_secret=..., which attaches to a running
// cluster as a remote client, opening no node; backup then has the member
// take the backup and writes it to DEST on this side.
//
// Run "hiqlite help" for the details. The exit status is 0 on success, 1
// when a command fails and 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if len(os.Args) > 1 && os.Args[1] == "shell" {
		// The shell handles SIGINT itself: Ctrl-C cancels the running
		// statement, not the shell.
		sigs = sigs[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	defer stop()
	go func() {
		// After the first signal, a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand. run gets the arguments after the
// subcommand's name.
type command struct {
	name    string
	args    string // argument synopsis
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands lists the subcommands in the order usage shows them.
var commands = []command{
	{"demo", "[--dir DIR]", "walk through a 3-node cluster on 127.0.0.1: writes, reads, failover (a temporary directory unless --dir)", cmdDemo},
	{"serve", "--dsn DSN [--http ADDR]", "run the node of DSN until interrupted, with /healthz, /readyz, /status, /snapshot, /backup, /leave and the dashboard on HTTP(S)", cmdServe},
	{"shell", "--dsn DSN", "an SQL shell: statements end with ';', .help lists the dot commands", cmdShell},
	{"status", "--dsn DSN | --http ADDR", "print a node's id, leader, applied index and members: open it here, or ask a running serve", cmdStatus},
	{"backup", "--dsn DSN --to DEST | list SRC | verify SRC", "take a backup of a node, here or through a remote DSN (to a directory or s3://bucket/prefix), list the backups of SRC, or check one whole", cmdBackup},
	{"restore", "--from SRC --dir DATA_DIR", "make DATA_DIR from a backup: a node started on it forms a new cluster with exactly that data", cmdRestore},
	{"cert", "--dir DIR [--nodes N,...]", "make a development CA and node certificates for mutual TLS (_tls_*) and HTTPS", cmdCert},
	{"bench", "[--json FILE] [--quick]", "measure a 3-node cluster on 127.0.0.1 beside plain SQLite and bare Raft, against hiqlite's performance targets", cmdBench},
	{"version", "", "print hiqlite's module version, the VCS revision it was built from, and the Go, SQLite and Raft versions (also --version)", cmdVersion},
	{"help", "", "print this help", nil},
}

// usageError is a mistake on the command line: its message (if any; a flag
// set prints its own) goes to stderr and the exit status is 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// run runs the command line args (without the program name) and returns
// the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands {
		if c.name != name || c.run == nil {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout, stderr)
		var ue *usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK // the flag set printed the subcommand's help
		case errors.As(err, &ue):
			if ue.err.Error() != "" {
				fmt.Fprintf(stderr, "hiqlite %s: %v\n", name, ue.err)
			}
			return exitUsage
		default:
			fmt.Fprintf(stderr, "hiqlite %s: %v\n", name, err)
			return exitFail
		}
	}
	fmt.Fprintf(stderr, "hiqlite: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `hiqlite: an embedded SQLite database made highly available over Raft.

Usage:

	hiqlite <command> [arguments]

Commands:

`)
	for _, c := range commands {
		syn := strings.TrimSpace(c.name + " " + c.args)
		fmt.Fprintf(w, "\t%-32s %s\n", syn, c.summary)
	}
	fmt.Fprint(w, `
DSN is a data directory with optional parameters, as sql.Open("hiqlite", DSN)
takes it: DATA_DIR[?param=value&...]. shell, status and backup also take a
remote client's DSN, hiqlite://HOST:PORT[,HOST:PORT...]?_secret=..., which
attaches to a running cluster's members without opening a node here (backup:
a member takes it, and it is written to --to on this side). See
"go doc github.com/hiqlite/hiqlite".

Run "hiqlite <command> -h" for the flags of a command.
`)
}

// newFlagSet returns a flag set for subcommand name that reports errors
// instead of exiting, printing them and its usage to stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hiqlite "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hiqlite %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs and refuses positional arguments. A parse
// error has already been printed by fs, so it becomes a silent usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{errors.New("")}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Errorf("unexpected argument %q (flags come as --name value)", fs.Arg(0))}
	}
	return nil
}
