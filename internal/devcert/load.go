package devcert

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadCA reads a CA written by WriteCA and WriteCAKey (or any CA
// certificate with an ECDSA key in SEC 1 or PKCS #8 PEM), so that it can
// issue more certificates. It checks that the certificate is a CA and that
// the key is its own; errors name the file at fault, never the key's bytes.
func LoadCA(certPath, keyPath string) (*CA, error) {
	certDER, err := readPEM(certPath, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("devcert: %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("devcert: %s is not a CA certificate", certPath)
	}
	keyDER, err := readPEM(keyPath, "")
	if err != nil {
		return nil, err
	}
	key, err := parseECKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("devcert: %s: %w", keyPath, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("devcert: the key in %s does not belong to the certificate in %s", keyPath, certPath)
	}
	return &CA{Cert: cert, Key: key, DER: certDER}, nil
}

// readPEM returns the bytes of the first PEM block of path, which must be
// of type typ unless typ is empty.
func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err) // names the path
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("devcert: %s holds no PEM block", path)
	}
	if typ != "" && block.Type != typ {
		return nil, fmt.Errorf("devcert: %s holds a %q PEM block, want %q", path, block.Type, typ)
	}
	return block.Bytes, nil
}

func parseECKey(der []byte) (*ecdsa.PrivateKey, error) {
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("not an ECDSA private key in SEC 1 or PKCS #8 form")
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T private key, want ECDSA", k)
	}
	return ec, nil
}
