package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/mdm/push/apnsmock"
)

func newPushCertCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	pc := &cobra.Command{Use: "pushcert", Short: "Show or replace the MDM push certificate"}
	var certFile, keyFile, p12File, passwordEnv string
	set := &cobra.Command{
		Use:   "set",
		Short: "Upload a new MDM push certificate (PEM certificate and key, or PKCS#12)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			var req api.PushCertRequest
			switch {
			case p12File != "" && certFile == "":
				der, err := os.ReadFile(p12File)
				if err != nil {
					return usageError{err}
				}
				req.PKCS12 = base64.StdEncoding.EncodeToString(der)
				req.Password = getenv(passwordEnv)
			case certFile != "" && keyFile != "" && p12File == "":
				cp, err := os.ReadFile(certFile)
				if err != nil {
					return usageError{err}
				}
				kp, err := os.ReadFile(keyFile)
				if err != nil {
					return usageError{err}
				}
				req.CertPEM, req.KeyPEM = string(cp), string(kp)
			default:
				return usageError{errors.New("give --cert and --key, or --p12 (password in $" + passwordEnv + ")")}
			}
			info, err := c.SetPushCert(cmd.Context(), req)
			if err != nil {
				return err
			}
			if err := printPushCert(cmd, cf, info); err != nil {
				return err
			}
			return warnOtherTopics(cmd, c, info.Topic)
		},
	}
	set.Flags().StringVar(&certFile, "cert", "", "certificate PEM file")
	set.Flags().StringVar(&keyFile, "key", "", "private key PEM file")
	set.Flags().StringVar(&p12File, "p12", "", "PKCS#12 file")
	set.Flags().StringVar(&passwordEnv, "password-env", "SUNDIAL_PUSH_P12_PASSWORD", "environment variable holding the PKCS#12 password")
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the push certificate's topic and expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			info, err := c.PushCert(cmd.Context())
			if err != nil {
				return err
			}
			return printPushCert(cmd, cf, info)
		},
	}
	pc.AddCommand(set, show)
	return pc
}

func printPushCert(cmd *cobra.Command, cf *clientFlags, info *api.PushCertInfo) error {
	if cf.output == "json" {
		return writeJSON(cmd.OutOrStdout(), info)
	}
	w := cmd.OutOrStdout()
	if !info.Configured {
		fmt.Fprintln(w, "no push certificate configured")
		return nil
	}
	fmt.Fprintf(w, "topic:      %s\nnot after:  %s (%d days)\n", info.Topic, info.NotAfter.Local().Format(time.DateTime), info.ExpiresInDays)
	if info.Problem != "" {
		fmt.Fprintf(w, "problem:    %s\n", info.Problem)
	}
	return nil
}

func newDevicesPushCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "push (DEVICE-ID... | --group GROUP)",
		Short: "Send an APNs push to devices now",
		Args: func(cmd *cobra.Command, args []string) error {
			if (group == "") == (len(args) == 0) {
				return usageError{errors.New("give device IDs or --group, not both")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			var ids []string
			if group != "" {
				if ids, err = groupDevices(cmd, c, group); err != nil {
					return err
				}
				if len(ids) == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "group %s has no devices: nothing pushed\n", group)
					return nil
				}
			} else if ids, err = resolveDevices(cmd, c, args); err != nil {
				return err
			}
			bar := newProgress(cmd.ErrOrStderr())
			all := []api.PushResult{}
			batch := newBatch(cmd, len(ids))
			for i, id := range ids {
				res, err := c.Push(cmd.Context(), id)
				if len(ids) > 1 {
					bar.update("push", i+1, len(ids))
				}
				if err == nil {
					err = pushFailure(res)
				}
				if err != nil {
					batch.fail(id, err)
				}
				all = append(all, res...)
			}
			if len(ids) > 1 {
				bar.done()
			}
			failed := batch.err("pushed")
			if cf.output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), map[string]any{"results": all}); err != nil {
					return err
				}
			} else {
				for _, r := range all {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\n", r.EnrollmentID, r.Outcome, r.Reason)
				}
			}
			return failed
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "push every device of this group")
	return cmd
}

// pushFailure is nil when APNs accepted every push of a device, and
// otherwise says why not, with what to do about it.
func pushFailure(res []api.PushResult) error {
	for _, r := range res {
		if r.Outcome == "ok" {
			continue
		}
		msg := fmt.Sprintf("push %s", r.Outcome)
		if r.Reason != "" {
			msg += " " + r.Reason
		}
		switch r.Reason {
		case "NoCertificate":
			msg += ": no MDM push certificate is configured (sundial pushcert set)"
		case "TopicMismatch":
			msg += ": the Mac enrolled with another push topic (before this push certificate was set); it must re-enroll to be woken"
		}
		return errors.New(msg)
	}
	return nil
}

// warnOtherTopics tells the admin how many enrolled Macs use a push topic
// other than the new certificate's: APNs refuses to wake them with it, and
// only re-enrolling moves them to the new topic.
func warnOtherTopics(cmd *cobra.Command, c *api.Client, topic string) error {
	n, after := 0, ""
	for {
		page, err := c.Devices(cmd.Context(), after, 1000)
		if err != nil {
			return err
		}
		for _, d := range page.Devices {
			if d.Topic != "" && d.Topic != topic && d.CheckedOutAt.IsZero() {
				n++
			}
		}
		if page.Next == "" || len(page.Devices) == 0 {
			break
		}
		after = page.Next
	}
	if n > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d enrolled %s the push topic of an earlier certificate (or the placeholder used before one was set): they cannot be woken with this certificate and must re-enroll\n", n, plural(n, "Mac uses", "Macs use"))
	}
	return nil
}

func newAPNsMockCmd(getenv func(string) string) *cobra.Command {
	var listen, caOut string
	cmd := &cobra.Command{
		Use:   "apnsmock",
		Short: "Run a mock APNs provider API (HTTP/2, TLS) for tests, load runs and demos",
		Long: `apnsmock serves POST /3/device/{token} like APNs. Its TLS certificate is
generated at start; --ca-out writes it so that "sundial server --apns-url
https://ADDR --apns-ca FILE" trusts it. Any client certificate is accepted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd, getenv); err != nil {
				return usageError{err}
			}
			cert, err := selfSignedTLS([]string{"localhost", "127.0.0.1"})
			if err != nil {
				return err
			}
			if caOut != "" {
				pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
				if err := os.WriteFile(caOut, pemBytes, 0o644); err != nil {
					return err
				}
			}
			log, err := newLogger("info", "text", cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			log.Info("apns mock listening", "addr", listen, "ca_out", caOut)
			return apnsmock.ListenAndServe(cmd.Context(), listen, cert, nil, log)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:2197", "address to listen on")
	cmd.Flags().StringVar(&caOut, "ca-out", "", "write the mock's TLS certificate (PEM) here")
	return cmd
}

// selfSignedTLS makes a short-lived self-signed ECDSA server certificate.
func selfSignedTLS(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "sundial apns mock"},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := parseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
