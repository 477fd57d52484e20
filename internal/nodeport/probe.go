package nodeport

import "context"

// Probe dials addr's RPC stream, completes the handshakes (TLS, when the
// port has it, and HMAC) and hangs up. A nil error means a node at addr
// holds the cluster secret and, with TLS, a certificate this node trusts
// for that address, and trusts this node's.
func (m *Mux) Probe(ctx context.Context, addr string) error {
	c, err := m.DialRPC(ctx, addr)
	if err != nil {
		return err
	}
	return c.Close()
}
