package hiqlite

import (
	"context"
	"errors"

	"github.com/hiqlite/hiqlite/internal/wire"
)

// ext runs an extension call of a remote client.
func (s *clientSession) ext(ctx context.Context, req *wire.ClientRequest) (*wire.ClientResult, error) {
	return nil, errors.New("hiqlite: extensions are not reachable through a remote client yet")
}
