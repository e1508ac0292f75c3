package enrollment

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"

	"github.com/sundial-mdm/sundial/certs"
)

func init() {
	// smallstep/scep builds CertRep replies (Success, Fail) with the pkcs7
	// package defaults, which are SHA-1 and DES-CBC. We announce SHA-256 and
	// AES in GetCACaps, so answer with them. This runs at init, before any
	// goroutine can use the package, because ContentEncryptionAlgorithm is a
	// plain variable.
	pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES128CBC
	if err := pkcs7.SetDefaultDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256); err != nil {
		panic("enrollment: set pkcs7 default digest: " + err.Error())
	}
}

// MaxSCEPMessageSize caps a PKIOperation message (the POST body, or the decoded
// "message" query parameter of a GET). A real request is 2.5 KiB with a
// 2048-bit key and under 5 KiB with a 4096-bit one. The cap is tight because
// the BER-to-DER step of github.com/smallstep/pkcs7 is quadratic on some
// inputs: 64 KiB of crafted BER costs about half a second of CPU, 16 KiB about
// a sixteenth of that.
const MaxSCEPMessageSize = 16 << 10

// RSA key sizes accepted from devices. MaxRSAKeyBits bounds the cost of
// verifying a signature made with a client-chosen key: an RSA verification
// grows with the square of the modulus size, and a 64 KiB message could
// otherwise carry a key that takes seconds to check.
const (
	MinRSAKeyBits = 2048
	MaxRSAKeyBits = 8192
)

// SCEP media types.
const (
	ContentTypeCACert   = "application/x-x509-ca-cert"
	ContentTypeCARACert = "application/x-x509-ca-ra-cert"
	ContentTypePKI      = "application/x-pki-message"
)

// SCEPCapabilities is the GetCACaps answer, one capability per line.
var SCEPCapabilities = []string{"POSTPKIOperation", "SHA-256", "AES", "SCEPStandard"}

// IdentityIssuer issues a device identity certificate for a checked request.
// The SCEP handler has already verified the CSR signature, the key and the
// challenge; the issuer decides the subject, validity and extensions.
type IdentityIssuer interface {
	IssueCheckedIdentity(csr *certs.CheckedCSR, now time.Time) (*x509.Certificate, error)
}

// SCEPHandler answers SCEP requests on [PathSCEP]: GetCACaps, GetCACert and
// PKIOperation (by POST and by GET). Requests are decrypted and replies signed
// with the RA key, which must be RSA. The RA may be the CA itself when the CA
// key is RSA.
type SCEPHandler struct {
	ra         *x509.Certificate
	raKey      crypto.Signer
	challenges ChallengeVerifier
	issuer     IdentityIssuer
	clock      Clock

	bound       BoundChallengeVerifier // WithBoundChallenges
	boundIssuer BoundIdentityIssuer
	logger      *slog.Logger

	// GetCACaps and GetCACert answers, with their Content-Length, built
	// once: devices ask for both at every enrolment.
	capsBody   string
	capsLen    string
	caCertBody []byte
	caCertLen  string
	caCertType string
}

// SCEPOption configures a [SCEPHandler].
type SCEPOption func(*SCEPHandler)

// WithSCEPLogger sets the logger. The default discards.
func WithSCEPLogger(logger *slog.Logger) SCEPOption {
	return func(h *SCEPHandler) {
		if logger != nil {
			h.logger = logger
		}
	}
}

// NewSCEPHandler returns a SCEP handler. ca is the CA that issues device
// identities; ra (with raKey, an RSA key that also implements
// crypto.Decrypter) decrypts requests and signs replies and may equal ca. ra
// must be signed by ca when they differ. All arguments are required.
func NewSCEPHandler(ca, ra *x509.Certificate, raKey crypto.Signer, challenges ChallengeVerifier, issuer IdentityIssuer, clock Clock, opts ...SCEPOption) (*SCEPHandler, error) {
	if ca == nil || ra == nil || raKey == nil || challenges == nil || issuer == nil || clock == nil {
		return nil, errors.New("new scep handler: nil argument")
	}
	pub, ok := raKey.Public().(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("new scep handler: ra key is %T, want rsa", raKey.Public())
	}
	if _, ok := raKey.(crypto.Decrypter); !ok {
		return nil, errors.New("new scep handler: ra key cannot decrypt")
	}
	if !pub.Equal(ra.PublicKey) {
		return nil, errors.New("new scep handler: ra key does not match ra certificate")
	}
	h := &SCEPHandler{
		ra:         ra,
		raKey:      raKey,
		challenges: challenges,
		issuer:     issuer,
		clock:      clock,
		logger:     slog.New(slog.DiscardHandler),
	}
	if ra.Equal(ca) {
		h.caCertBody, h.caCertType = ca.Raw, ContentTypeCACert
	} else {
		if err := ra.CheckSignatureFrom(ca); err != nil {
			return nil, fmt.Errorf("new scep handler: ra certificate not signed by ca: %w", err)
		}
		deg, err := scep.DegenerateCertificates(caCertAnswer(ca, ra))
		if err != nil {
			return nil, fmt.Errorf("new scep handler: encode ca chain: %w", err)
		}
		h.caCertBody, h.caCertType = deg, ContentTypeCARACert
	}
	h.caCertLen = strconv.Itoa(len(h.caCertBody))
	h.capsBody = strings.Join(SCEPCapabilities, "\n") + "\n"
	h.capsLen = strconv.Itoa(len(h.capsBody))
	for _, opt := range opts {
		opt(h)
	}
	return h, nil
}

// caCertAnswer lists the certificates of the GetCACert answer for a CA with a
// separate RA: the RA, then the CA if its key is RSA. Some SCEP clients
// encrypt the request to every certificate of the answer and support only
// RSA recipients, so a CA with another key (Sundial's is ECDSA P-256) is
// left out. A device does not need it from SCEP: the enrollment profile
// installs the CA as a trust anchor (com.apple.security.root) and sets no
// CAFingerprint.
func caCertAnswer(ca, ra *x509.Certificate) []*x509.Certificate {
	if _, ok := ca.PublicKey.(*rsa.PublicKey); ok {
		return []*x509.Certificate{ra, ca}
	}
	return []*x509.Certificate{ra}
}

// ServeHTTP implements http.Handler.
func (h *SCEPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	op := r.URL.Query().Get("operation")
	if h.logger.Enabled(r.Context(), slog.LevelDebug) {
		h.logger.LogAttrs(r.Context(), slog.LevelDebug, "scep request",
			slog.String("scep_operation", safeLogValue(op)), slog.String("method", r.Method))
	}
	switch {
	case op == "GetCACaps" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", h.capsLen)
		_, _ = io.WriteString(w, h.capsBody)
	case op == "GetCACert" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", h.caCertType)
		w.Header().Set("Content-Length", h.caCertLen)
		_, _ = w.Write(h.caCertBody)
	case op == "PKIOperation":
		msg, err := readPKIMessage(w, r)
		if err != nil {
			h.badRequest(w, r, err)
			return
		}
		h.pkiOperation(w, r, msg)
	case op == "":
		h.badRequest(w, r, errors.New("missing operation"))
	default:
		h.badRequest(w, r, fmt.Errorf("unsupported operation %q with %s", safeLogValue(op), r.Method))
	}
}

// badRequest answers 400 with a short reason; the reason never holds secrets.
func (h *SCEPHandler) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	h.logger.LogAttrs(r.Context(), slog.LevelWarn, "scep bad request",
		slog.String("err", err.Error()), slog.String("remote_addr", r.RemoteAddr))
	http.Error(w, "bad scep request: "+err.Error(), http.StatusBadRequest)
}

// readPKIMessage returns the DER message of a PKIOperation: the POST body, or
// the base64 "message" query parameter of a GET.
func readPKIMessage(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method == http.MethodPost {
		body, err := readAllSized(http.MaxBytesReader(w, r.Body, MaxSCEPMessageSize), r.ContentLength)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, fmt.Errorf("message larger than %d bytes", MaxSCEPMessageSize)
			}
			return nil, errors.New("read message body")
		}
		if len(body) == 0 {
			return nil, errors.New("empty message")
		}
		return body, nil
	}
	enc := r.URL.Query().Get("message")
	if enc == "" {
		return nil, errors.New("missing message parameter")
	}
	if len(enc) > base64.StdEncoding.EncodedLen(MaxSCEPMessageSize) {
		return nil, fmt.Errorf("message larger than %d bytes", MaxSCEPMessageSize)
	}
	// An unescaped '+' in a query string arrives as a space.
	enc = strings.ReplaceAll(enc, " ", "+")
	msg, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(enc, "="))
	if err != nil {
		return nil, errors.New("message parameter is not base64")
	}
	if len(msg) == 0 {
		return nil, errors.New("empty message")
	}
	return msg, nil
}

// readAllSized is io.ReadAll into a buffer sized for the declared length
// (negative when unknown), so a body of the declared size is read into one
// allocation instead of a growing series. A wrong declaration only costs
// growth as in io.ReadAll; the reader must bound the body.
func readAllSized(r io.Reader, declared int64) ([]byte, error) {
	size := 512
	if declared > 0 {
		// One spare byte so that reading the end needs no growth.
		size = int(min(declared, MaxSCEPMessageSize)) + 1
	}
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// pkiOperation handles one PKCSReq: decrypt, check, issue, reply.
func (h *SCEPHandler) pkiOperation(w http.ResponseWriter, r *http.Request, der []byte) {
	ctx := r.Context()
	if err := checkMessageKeys(der); err != nil {
		h.badRequest(w, r, err)
		return
	}
	msg, err := scep.ParsePKIMessage(der)
	if err != nil {
		h.badRequest(w, r, errors.New("malformed pki message"))
		return
	}
	log := pkiLog{l: h.logger, msg: msg, remote: r.RemoteAddr}
	switch msg.MessageType {
	case scep.PKCSReq:
	case scep.CertRep:
		h.badRequest(w, r, errors.New("a CertRep is not a request"))
		return
	default:
		// RenewalReq and UpdateReq: a Mac re-enrolls through a new profile instead.
		h.fail(ctx, w, log, msg, scep.BadRequest, "unsupported message type")
		return
	}
	if err := msg.DecryptPKIEnvelope(h.ra, h.raKey); err != nil {
		h.fail(ctx, w, log, msg, scep.BadRequest, "cannot decrypt request or parse csr")
		return
	}
	csr, err := checkCSR(msg.CSRReqMessage.CSR)
	if err != nil {
		h.fail(ctx, w, log, msg, scep.BadRequest, err.Error())
		return
	}
	now := h.clock.Now()
	cert, ok, err := h.verifyAndIssue(ctx, msg.CSRReqMessage.ChallengePassword, csr, now)
	if err != nil {
		log.log(ctx, slog.LevelError, "scep challenge check or issuance failed", slog.Any("err", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !ok {
		h.fail(ctx, w, log, msg, scep.BadRequest, "wrong, used or expired challenge")
		return
	}
	rep, err := msg.Success(h.ra, h.raKey, cert)
	if err != nil {
		log.log(ctx, slog.LevelError, "scep build certrep failed", slog.Any("err", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if log.enabled(ctx, slog.LevelInfo) {
		log.log(ctx, slog.LevelInfo, "scep identity issued",
			slog.String("serial", cert.SerialNumber.Text(16)),
			slog.String("subject", cert.Subject.String()),
			slog.Time("not_after", cert.NotAfter))
	}
	writePKI(w, rep.Raw)
}

// fail answers a failure CertRep, which SCEP sends with status 200.
func (h *SCEPHandler) fail(ctx context.Context, w http.ResponseWriter, log pkiLog, msg *scep.PKIMessage, info scep.FailInfo, reason string) {
	log.log(ctx, slog.LevelWarn, "scep request refused", slog.String("reason", reason))
	rep, err := msg.Fail(h.ra, h.raKey, info)
	if err != nil {
		log.log(ctx, slog.LevelError, "scep build failure certrep failed", slog.Any("err", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writePKI(w, rep.Raw)
}

// pkiLog logs for one PKIOperation with its transaction ID, message type
// and client address. Logger.With would format those for every request,
// though a successful one writes at most an Info record; here they are
// added only to records the logger writes.
type pkiLog struct {
	l      *slog.Logger
	msg    *scep.PKIMessage
	remote string
}

func (p pkiLog) enabled(ctx context.Context, level slog.Level) bool { return p.l.Enabled(ctx, level) }

func (p pkiLog) log(ctx context.Context, level slog.Level, text string, attrs ...slog.Attr) {
	if !p.l.Enabled(ctx, level) {
		return
	}
	all := make([]slog.Attr, 0, 3+len(attrs))
	all = append(all,
		slog.String("scep_transaction_id", safeLogValue(string(p.msg.TransactionID))),
		slog.String("scep_message_type", safeLogValue(string(p.msg.MessageType))),
		slog.String("remote_addr", p.remote))
	p.l.LogAttrs(ctx, level, text, append(all, attrs...)...)
}

func writePKI(w http.ResponseWriter, der []byte) {
	w.Header().Set("Content-Type", ContentTypePKI)
	w.Header().Set("Content-Length", strconv.Itoa(len(der)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(der)
}

// checkCSR checks the request's key strength, then its self-signature
// (certs.CheckCSR, whose result the issuer takes without verifying again).
func checkCSR(csr *x509.CertificateRequest) (*certs.CheckedCSR, error) {
	switch pub := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < MinRSAKeyBits || n > MaxRSAKeyBits {
			return nil, fmt.Errorf("rsa key of %d bits, want %d to %d", n, MinRSAKeyBits, MaxRSAKeyBits)
		}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384() && pub.Curve != elliptic.P521() {
			return nil, errors.New("unsupported ecdsa curve")
		}
	default:
		return nil, fmt.Errorf("unsupported key type %T", csr.PublicKey)
	}
	checked, err := certs.CheckCSR(csr)
	if err != nil {
		return nil, errors.New("csr signature does not verify")
	}
	return checked, nil
}

// safeLogValue trims a client-supplied string for logging.
func safeLogValue(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
