package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/storage/bolt"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// This file is the CLI's one place for exit codes and error messages:
// keepPromises adapts every command in the tree (whichever file adds it),
// exitCodeFor maps an error to the documented exit code, and explain turns
// an error into the line printed on standard error.

// usageError marks errors in how the command was called (exit 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// runError marks an error returned by a command's own RunE. Every other
// error cobra returns (argument counts, required flags, unknown commands)
// is about how the command was called: exit 2.
type runError struct{ error }

func (e runError) Unwrap() error { return e.error }

// failedError is a failure already reported on standard error (one line per
// device of a bulk operation): run prints only its summary. Code is the exit
// code; 0 means exitError.
type failedError struct {
	msg  string
	code int
}

func (e *failedError) Error() string { return e.msg }

// apiFieldAnnotation names, on a flag, the admin API field it sets, so that
// the server's messages can name the flag instead.
const apiFieldAnnotation = "sundial-api-field"

// setAPIField records that flag name of cmd fills API field field.
func setAPIField(cmd *cobra.Command, name, field string) {
	if err := cmd.Flags().SetAnnotation(name, apiFieldAnnotation, []string{field}); err != nil {
		panic(err) // a programming error: the flag does not exist
	}
}

// keepPromises walks the finished command tree: a group command given an
// unknown subcommand is a usage error (cobra prints its help and succeeds),
// wrong argument counts are usage errors that show the usage line, and
// errors from a command's own code are marked so exitCodeFor can tell them
// from cobra's.
func keepPromises(c *cobra.Command) {
	for _, sub := range c.Commands() {
		keepPromises(sub)
	}
	if c.Run == nil && c.RunE == nil && c.HasSubCommands() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if cmd.SuggestionsMinimumDistance <= 0 {
				cmd.SuggestionsMinimumDistance = 2
			}
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageError{fmt.Errorf("%s (run %q for the list)", msg, cmd.CommandPath()+" --help")}
		}
	}
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			err := args(cmd, a)
			if err == nil || errors.As(err, new(usageError)) {
				return err
			}
			return usageError{fmt.Errorf("%w (usage: %s)", err, cmd.UseLine())}
		}
	}
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if err := run(cmd, args); err != nil {
				return runError{err}
			}
			return nil
		}
	}
}

func exitCodeFor(err error) int {
	var ue usageError
	var ae *api.Error
	var fe *failedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &fe) && fe.code != 0:
		return fe.code
	case errors.As(err, &ue):
		return exitUsage
	case !errors.As(err, new(runError)):
		return exitUsage // cobra's own: arguments, required flags
	case errors.As(err, &ae) && ae.Code == api.CodeNotFound, errors.Is(err, fs.ErrNotExist):
		return exitNotFound
	case errors.As(err, &ae) && (ae.Code == api.CodeUnauthorized || ae.Code == api.CodeForbidden):
		return exitAuth
	case errors.As(err, &ae) && ae.Code == api.CodeInvalid:
		return exitUsage
	case errors.Is(err, bolt.ErrLocked):
		return exitError
	}
	return exitError
}

// explain is the message printed for err after cmd ran: API field names
// become the flags that set them, and a connection failure says where the
// CLI tried to connect and what to check.
func explain(cmd *cobra.Command, err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		msg := ae.Code + ": " + renameFields(cmd, ae.Message)
		if ae.Code == api.CodeUnauthorized && !strings.Contains(ae.Message, "--data-dir") {
			msg += "\n(the CLI takes its key from --api-key, SUNDIAL_API_KEY or the admin-api-key file in --data-dir)"
		}
		return msg
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		var ce x509.UnknownAuthorityError
		var he x509.HostnameError
		var oe *net.OpError
		switch {
		case errors.As(err, &ce), errors.As(err, &he):
			return fmt.Sprintf("cannot verify the server's TLS certificate at %s: %v\n(give its CA with --ca-file, or point --data-dir at the server's data directory, which holds ca.pem)", hostOf(ue.URL), ue.Err)
		case errors.As(err, &oe):
			return fmt.Sprintf("cannot reach Sundial at %s: %v\n(is the server running? set --url or SUNDIAL_URL)", hostOf(ue.URL), oe.Err)
		}
		return fmt.Sprintf("request to %s failed: %v", hostOf(ue.URL), ue.Err)
	}
	return err.Error()
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

// renameFields replaces whole-word API field names in msg with the flags
// of cmd annotated with them.
func renameFields(cmd *cobra.Command, msg string) string {
	if cmd == nil {
		return msg
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		for _, field := range f.Annotations[apiFieldAnnotation] {
			re := regexp.MustCompile(`\b` + regexp.QuoteMeta(field) + `\b`)
			msg = re.ReplaceAllString(msg, "--"+f.Name)
		}
	})
	return msg
}

// plural picks the singular or plural form for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
