package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/enrollment/ade/abm"
)

// newDEPCmd is `sundial dep`: the connection to Apple Business Manager.
func newDEPCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	dep := &cobra.Command{Use: "dep", Short: "Connect to Apple Business Manager (Automated Device Enrollment)"}

	var baseURL, certOut string
	keypair := &cobra.Command{
		Use:   "keypair NAME",
		Short: "Make the keypair of an ABM MDM server and print the certificate to upload to ABM",
		Long: `keypair makes the RSA keypair of the ABM MDM server NAME (once; later calls
print the same certificate). Upload the certificate in Apple Business Manager
(Preferences > your MDM server > Upload Public Key), then download the server
token and give it to "sundial dep token upload NAME FILE". The private key
never leaves the server and is kept sealed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			pem, err := c.DEPKeypair(cmd.Context(), args[0], baseURL)
			if err != nil {
				return err
			}
			if certOut != "" {
				if err := os.WriteFile(certOut, []byte(pem), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: upload it to Apple Business Manager\n", certOut)
				return nil
			}
			fmt.Fprint(cmd.OutOrStdout(), pem)
			return nil
		},
	}
	keypair.Flags().StringVar(&baseURL, "base-url", "", "DEP API URL for this server (default Apple's; set it to `sundial depmock`'s for tests and demos)")
	keypair.Flags().StringVar(&certOut, "out", "", "write the certificate (PEM) to this file instead of standard output")

	token := &cobra.Command{Use: "token", Short: "Upload the server token from Apple Business Manager"}
	upload := &cobra.Command{
		Use:   "upload NAME FILE",
		Short: "Decrypt and store the server token (.p7m) of an ABM MDM server",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(args[1])
			if err != nil {
				return usageError{err}
			}
			if len(b) > abm.MaxTokenFile {
				return usageError{fmt.Errorf("%s is larger than a server token (%d bytes)", args[1], abm.MaxTokenFile)}
			}
			info, err := c.DEPUploadToken(cmd.Context(), args[0], b)
			if err != nil {
				return err
			}
			return printDEPServers(cmd, cf, []api.DEPServerInfo{*info})
		},
	}
	token.AddCommand(upload)

	show := &cobra.Command{
		Use:   "show",
		Short: "Show the ABM MDM servers: account, token expiry, last sync",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			l, err := c.DEPServers(cmd.Context())
			if err != nil {
				return err
			}
			return printDEPServers(cmd, cf, l)
		},
	}

	sync := &cobra.Command{
		Use:   "sync NAME",
		Short: "Sync devices from Apple Business Manager now (the scheduler leader also does it every few minutes)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			res, err := c.DEPSync(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d pages: %d added, %d modified, %d deleted, %d assigned a profile\n",
				res.Pages, res.Added, res.Modified, res.Deleted, res.Assigned)
			return nil
		},
	}

	var limit int
	devices := &cobra.Command{
		Use:   "devices",
		Short: "List the Macs ABM assigned to Sundial, their group and profile result",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			var all []any
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			if cf.output != "json" {
				fmt.Fprintln(tw, "SERIAL\tMODEL\tOS\tSERVER\tGROUP\tPROFILE STATUS\tASSIGN RESULT\tASSIGNED\tENROLLED AS")
			}
			after, n := "", 0
			for {
				page, err := c.DEPDevices(cmd.Context(), after, min(1000, max(limit-n, 1)))
				if err != nil {
					return err
				}
				for _, d := range page.Devices {
					if cf.output == "json" {
						all = append(all, d)
						continue
					}
					group := d.Group
					if group == "" {
						group = "default"
					}
					assigned := ""
					if !d.DeviceAssignedDate.IsZero() {
						assigned = d.DeviceAssignedDate.Local().Format(time.DateOnly)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Serial, d.Model, d.OS, d.Server, group,
						dash(d.ProfileStatus), dash(d.AssignResult), dash(assigned), dash(d.EnrollmentID))
				}
				n += len(page.Devices)
				if page.Next == "" || (limit > 0 && n >= limit) {
					break
				}
				after = page.Next
			}
			if cf.output == "json" {
				if all == nil {
					all = []any{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"devices": all})
			}
			return tw.Flush()
		},
	}
	devices.Flags().IntVar(&limit, "limit", 0, "list at most this many (0: all)")

	move := &cobra.Command{
		Use:   "move SERIAL GROUP",
		Short: "Put an ABM serial in a group and assign it that group's ADE profile",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			d, err := c.DEPMoveSerial(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is in group %s; ABM answered %s\n", d.Serial, args[1], dash(d.AssignResult))
			return nil
		},
	}
	dep.AddCommand(keypair, token, show, sync, devices, move)
	return dep
}

func printDEPServers(cmd *cobra.Command, cf *clientFlags, l []api.DEPServerInfo) error {
	if cf.output == "json" {
		if l == nil {
			l = []api.DEPServerInfo{}
		}
		return writeJSON(cmd.OutOrStdout(), map[string]any{"servers": l})
	}
	if len(l) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "no ABM server: start with `sundial dep keypair NAME`")
		return nil
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tABM SERVER\tORG\tTOKEN EXPIRES\tLAST SYNC\tPROBLEM")
	for _, s := range l {
		expiry := "no token"
		if s.HasToken {
			expiry = fmt.Sprintf("%s (%d days)", s.TokenExpiry.Local().Format(time.DateOnly), s.TokenExpiresInDays)
		}
		last := "never"
		if !s.LastSyncAt.IsZero() {
			last = s.LastSyncAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, dash(s.ServerName), dash(s.OrgName), expiry, last, dash(s.LastError))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
