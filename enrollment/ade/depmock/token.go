package depmock

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"

	"github.com/smallstep/pkcs7"
)

// ServerToken returns the server token file ("…_Token_….p7m") that ABM
// would hand out for the mock's MDM server, encrypted to cert (the
// certificate the MDM server uploaded): an S/MIME enveloped-data message
// whose content is the tokens' JSON between BEGIN/END MESSAGE lines.
func (m *Mock) ServerToken(cert *x509.Certificate) ([]byte, error) {
	tokens, err := json.Marshal(m.Tokens())
	if err != nil {
		return nil, err
	}
	inner := "Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		"-----BEGIN MESSAGE-----\r\n" + string(tokens) + "\r\n-----END MESSAGE-----\r\n"
	enveloped, err := pkcs7.Encrypt([]byte(inner), []*x509.Certificate{cert})
	if err != nil {
		return nil, fmt.Errorf("encrypt server token: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("Content-Type: application/pkcs7-mime; name=\"smime.p7m\"; smime-type=enveloped-data\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"smime.p7m\"\r\n")
	b.WriteString("Content-Description: S/MIME Encrypted Message\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(enveloped)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes(), nil
}

// serverToken answers POST /mock/server-token (not an Apple endpoint): the
// body is a certificate (PEM) from `sundial dep keypair`, the answer the
// server token ABM would let an admin download for it.
func (m *Mock) serverToken(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeBody(w, http.StatusBadRequest, "cannot read body")
		return
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		writeBody(w, http.StatusBadRequest, "body is not a PEM certificate")
		return
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		writeBody(w, http.StatusBadRequest, "body is not a PEM certificate")
		return
	}
	tok, err := m.ServerToken(cert)
	if err != nil {
		writeBody(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/pkcs7-mime")
	w.Write(tok)
}
