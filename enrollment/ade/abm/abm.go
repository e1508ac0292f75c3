// Package abm connects Sundial to Apple Business Manager through the DEP
// API, on github.com/micromdm/nanodep: its godep client (OAuth 1 session
// handling included) and tokenpki, behind Sundial's own storage. It keeps
// each ABM MDM server's keypair and server token, syncs the devices ABM
// assigned (fetch, then cursor sync, page by page), defines an ADE profile
// per group and assigns every new device to its group's profile.
package abm

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	depclient "github.com/micromdm/nanodep/client"
	"github.com/micromdm/nanodep/godep"
	"github.com/micromdm/nanodep/tokenpki"

	"github.com/sundial-mdm/sundial/storage"
)

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Sealer encrypts secrets at rest (the keypair's key, the OAuth tokens).
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// Store is what the ABM connection keeps.
type Store interface {
	storage.DEPServerStore
	storage.ADEStore
	storage.ADEUpdater
}

// Errors callers map to exit codes and API statuses.
var (
	// ErrBadToken: the server token file does not decrypt with the
	// server's key or does not hold OAuth tokens.
	ErrBadToken = errors.New("server token does not decrypt with this server's key")
	// ErrNoKeypair: no keypair yet (run `sundial dep keypair` first).
	ErrNoKeypair = errors.New("no keypair for this server")
	// ErrNoToken: no server token uploaded yet.
	ErrNoToken = errors.New("no server token for this server")
)

// MaxTokenFile caps a server token file (a real one is about 4 KiB).
const MaxTokenFile = 64 << 10

// Connector is Sundial's connection to its ABM MDM servers.
type Connector struct {
	store  Store
	sealer Sealer
	clock  Clock
	dep    *godep.Client

	mu       sync.Mutex
	settings ProfileSettings
}

// New returns a Connector. hc carries TLS trust (Apple's, or the mock's);
// nil means http.DefaultClient.
func New(store Store, sealer Sealer, clk Clock, hc *http.Client) *Connector {
	if store == nil || sealer == nil || clk == nil {
		panic("abm.New: nil argument")
	}
	c := &Connector{store: store, sealer: sealer, clock: clk}
	opts := []godep.Option{godep.WithUserAgent("sundial/1")}
	if hc != nil {
		opts = append(opts, godep.WithClient(hc))
	}
	c.dep = godep.NewClient(depStorage{c}, opts...)
	return c
}

// depStorage gives nanodep the tokens and base URL of a server name, read
// from Sundial's storage and unsealed on the way.
type depStorage struct{ c *Connector }

// RetrieveAuthTokens implements nanodep's client.AuthTokensRetriever.
func (s depStorage) RetrieveAuthTokens(ctx context.Context, name string) (*depclient.OAuth1Tokens, error) {
	srv, err := s.c.store.DEPServer(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(srv.SealedTokens) == 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrNoToken)
	}
	b, err := s.c.sealer.Open(srv.SealedTokens)
	if err != nil {
		return nil, fmt.Errorf("open server token of %s: %w", name, err)
	}
	t := new(depclient.OAuth1Tokens)
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("decode server token of %s: %w", name, err)
	}
	return t, nil
}

// RetrieveConfig implements nanodep's client.ConfigRetriever: nil (Apple's
// URL) unless the server has a base URL of its own.
func (s depStorage) RetrieveConfig(ctx context.Context, name string) (*depclient.Config, error) {
	srv, err := s.c.store.DEPServer(ctx, name)
	if err != nil {
		return nil, err
	}
	if srv.BaseURL == "" {
		return nil, nil
	}
	return &depclient.Config{BaseURL: srv.BaseURL}, nil
}

// Keypair makes (or returns the existing) keypair of server name and
// returns the certificate to upload to ABM, PEM-encoded. The key is kept
// sealed. baseURL ("" for Apple) is recorded for a new server.
func (c *Connector) Keypair(ctx context.Context, name, baseURL string) ([]byte, error) {
	srv, err := c.store.DEPServer(ctx, name)
	switch {
	case err == nil && len(srv.CertPEM) > 0:
		return srv.CertPEM, nil
	case errors.Is(err, storage.ErrNotFound):
		srv = &storage.DEPServer{Name: name, BaseURL: baseURL}
	case err != nil:
		return nil, err
	}
	// tokenpki makes a self-signed RSA 2048 certificate, as ABM expects.
	key, cert, err := tokenpki.SelfSignedRSAKeypair("sundial-"+name, 365)
	if err != nil {
		return nil, fmt.Errorf("generate keypair: %w", err)
	}
	sealed, err := c.sealer.Seal(x509.MarshalPKCS1PrivateKey(key))
	if err != nil {
		return nil, err
	}
	srv.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	srv.SealedKey, srv.UpdatedAt = sealed, c.clock.Now()
	if err := c.store.PutDEPServer(ctx, srv); err != nil {
		return nil, err
	}
	return srv.CertPEM, nil
}

// UploadToken decrypts a server token file (.p7m) with server name's key
// and stores its OAuth tokens sealed. A wrong key or a corrupt file gives
// ErrBadToken and stores nothing.
func (c *Connector) UploadToken(ctx context.Context, name string, p7m []byte) (*storage.DEPServer, error) {
	if len(p7m) > MaxTokenFile {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrBadToken, MaxTokenFile)
	}
	srv, err := c.store.DEPServer(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(srv.CertPEM) == 0 || len(srv.SealedKey) == 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrNoKeypair)
	}
	block, _ := pem.Decode(srv.CertPEM)
	if block == nil {
		return nil, errors.New("stored certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	keyDER, err := c.sealer.Open(srv.SealedKey)
	if err != nil {
		return nil, fmt.Errorf("open key: %w", err)
	}
	key, err := x509.ParsePKCS1PrivateKey(keyDER)
	if err != nil {
		return nil, err
	}
	tokJSON, err := decrypt(p7m, cert, key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	var tok depclient.OAuth1Tokens
	if err := json.Unmarshal(tokJSON, &tok); err != nil || !tok.Valid() {
		return nil, fmt.Errorf("%w: no OAuth tokens in the decrypted file", ErrBadToken)
	}
	clean, _ := json.Marshal(tok)
	sealed, err := c.sealer.Seal(clean)
	if err != nil {
		return nil, err
	}
	now := c.clock.Now()
	srv.SealedTokens, srv.TokenExpiry, srv.TokenAt, srv.UpdatedAt = sealed, tok.AccessTokenExpiry, now, now
	if err := c.store.PutDEPServer(ctx, srv); err != nil {
		return nil, err
	}
	return srv, nil
}

// decrypt calls tokenpki and turns a panic on hostile input into an error.
func decrypt(p7m []byte, cert *x509.Certificate, key *rsa.PrivateKey) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("malformed token file: %v", r)
		}
	}()
	return tokenpki.DecryptTokenJSON(p7m, cert, key)
}

// RefreshAccount reads the server's account details from ABM and stores them.
func (c *Connector) RefreshAccount(ctx context.Context, name string) (*storage.DEPServer, error) {
	acc, err := c.dep.AccountDetail(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("abm account of %s: %w", name, err)
	}
	srv, err := c.store.DEPServer(ctx, name)
	if err != nil {
		return nil, err
	}
	srv.ServerName, srv.ServerUUID = deref(acc.ServerName), deref(acc.ServerUuid)
	srv.OrgName, srv.AdminID = deref(acc.OrgName), deref(acc.AdminId)
	srv.UpdatedAt = c.clock.Now()
	return srv, c.store.PutDEPServer(ctx, srv)
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return
}
