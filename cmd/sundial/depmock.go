package main

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/enrollment/ade/depmock"
)

func newDEPMockCmd(getenv func(string) string) *cobra.Command {
	var listen, caOut, tokenFor, tokenOut, tokensFile, prefix string
	var seed int
	cmd := &cobra.Command{
		Use:   "depmock",
		Short: "Run a mock of Apple's DEP API (Apple Business Manager) with a seeded fleet, for tests, load runs and demos",
		Long: `depmock serves the DEP API endpoints Sundial uses (session, account, devices
fetch and sync with cursors and pages, profile define, assign and remove) over
TLS, with --seed Macs assigned to one MDM server. Its TLS certificate is made
at start; --ca-out writes it for "sundial server --dep-ca FILE".

To connect a server: "sundial dep keypair NAME --base-url https://ADDR --out
cert.pem", then POST cert.pem to https://ADDR/mock/server-token (the mock's
stand-in for ABM's Download Token) and "sundial dep token upload NAME FILE".
--token-for and --token-out write a token at start instead. POST
/mock/inject?error=token_expired|cursor_expired|rate_limit makes the running
mock fail as Apple's service does. --tokens keeps
the mock's OAuth credentials in a file so that a restarted mock accepts the
same token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd, getenv); err != nil {
				return usageError{err}
			}
			if (tokenFor == "") != (tokenOut == "") {
				return usageError{errors.New("--token-for and --token-out go together")}
			}
			var opts []depmock.Option
			if tokensFile != "" {
				if b, err := os.ReadFile(tokensFile); err == nil {
					var t depmock.Tokens
					if err := json.Unmarshal(b, &t); err != nil {
						return usageError{err}
					}
					opts = append(opts, depmock.WithTokens(t))
				} else if !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			m := depmock.New(opts...)
			if tokensFile != "" {
				b, _ := json.Marshal(m.Tokens())
				if err := writePrivateFile(tokensFile, b); err != nil {
					return err
				}
			}
			m.Seed(prefix, seed)
			if tokenFor != "" {
				certs, err := loadPEMCerts(tokenFor)
				if err != nil {
					return usageError{err}
				}
				p7m, err := m.ServerToken(certs[0])
				if err != nil {
					return err
				}
				if err := os.WriteFile(tokenOut, p7m, 0o600); err != nil {
					return err
				}
			}
			cert, err := selfSignedTLS([]string{"localhost", "127.0.0.1"})
			if err != nil {
				return err
			}
			if caOut != "" {
				if err := os.WriteFile(caOut, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
					return err
				}
			}
			log, err := newLogger("info", "text", cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			log.Info("dep mock listening", "addr", listen, "devices", seed, "ca_out", caOut, "token_out", tokenOut)
			return m.ListenAndServe(cmd.Context(), listen, cert)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8444", "address to listen on")
	f.StringVar(&caOut, "ca-out", "", "write the mock's TLS certificate (PEM) here")
	f.IntVar(&seed, "seed", 100, "number of Macs assigned to the mock's MDM server")
	f.StringVar(&prefix, "serial-prefix", "C02MOCK", "serial number prefix of the seeded Macs")
	f.StringVar(&tokenFor, "token-for", "", "certificate (PEM) from `sundial dep keypair` to make a server token for")
	f.StringVar(&tokenOut, "token-out", "", "write the server token (.p7m) here")
	f.StringVar(&tokensFile, "tokens", "", "keep the mock's OAuth credentials in this file (reused when it exists)")
	return cmd
}
